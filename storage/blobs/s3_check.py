"""The S3 driver's startup check: the bucket exists (created if missing) and the store honours
the configured server-side encryption, proven by a round trip, before any blob is written.

A misconfigured store is refused at startup with an error that says why (S3StoreError), never
found out at the first push; and blobs are never stored unencrypted because a store ignored SSE.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..errors import StorageUnavailable
from .base import BlobDriver, SocketStretch
from .s3_parts import md5_base64
from .s3_requests import S3Bucket, error_code

__all__ = ["S3StoreError", "check_store"]


class S3StoreError(RuntimeError):
    """The configured S3 store cannot work as asked (raised at startup, says why)."""


async def check_store(s3: S3Bucket, driver: BlobDriver) -> None:
    """Raise S3StoreError unless `driver` can store blobs in `s3`'s bucket as configured."""
    where = f"bucket {s3.name!r}"
    try:
        await _ensure_bucket(s3)
        await _probe(s3, driver)
    except NoCredentialsError:
        raise S3StoreError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
        ) from None
    except StorageUnavailable as exc:
        raise S3StoreError(f"S3 store unreachable ({where}): {exc.__cause__ or exc}") from None
    except (ClientError, BotoCoreError, OSError) as exc:
        raise S3StoreError(f"S3 store check failed ({where}, sse {s3.sse.mode}): {exc}") from None


async def _ensure_bucket(s3: S3Bucket) -> None:
    try:
        with s3.guard(s3.name):
            await s3.client.head_bucket(Bucket=s3.name)
        return
    except FileNotFoundError:
        pass
    try:
        with s3.guard(s3.name):
            await s3.client.create_bucket(Bucket=s3.name, **_location_constraint(s3.client))
    except ClientError as exc:
        if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        with s3.guard(s3.name):  # someone else's bucket answers 403 here
            await s3.client.head_bucket(Bucket=s3.name)


def _location_constraint(client: Any) -> dict[str, Any]:
    region = client.meta.region_name
    if not region or region == "us-east-1":
        return {}
    return {"CreateBucketConfiguration": {"LocationConstraint": region}}


async def _probe(s3: S3Bucket, driver: BlobDriver) -> None:
    """Write, read back (through the driver's read) and delete one object with the SSE settings
    every blob will use."""
    key = f"_probe/{uuid.uuid4().hex}"
    payload = b"ocigate probe " + secrets.token_bytes(16)
    with s3.guard(key):
        response = await s3.client.put_object(
            Bucket=s3.name, Key=key, Body=payload, ContentMD5=md5_base64(payload), **s3.sse.write
        )
    try:
        if not s3.sse.honoured(response):
            raise S3StoreError(
                f"the S3 store ignored server-side encryption {s3.sse.mode!r}: "
                "blobs would be stored unencrypted"
            )
        returned = bytearray()
        async for chunk in driver.read(key, 0, len(payload)):
            assert not isinstance(chunk, SocketStretch)  # the probe is far below TAKE_OVER_MIN
            returned += chunk
        if returned != payload:
            raise S3StoreError("the S3 store returned other bytes than it was given")
        if s3.sse.mode == "sse-c" and await _readable_without_key(s3, key):
            raise S3StoreError("the S3 store serves SSE-C objects without their key")
    finally:
        await driver.delete(key)


async def _readable_without_key(s3: S3Bucket, key: str) -> bool:
    try:
        with s3.guard(key):
            response = await s3.client.get_object(Bucket=s3.name, Key=key)
    except ClientError:
        return False
    response["Body"].close()
    return True
