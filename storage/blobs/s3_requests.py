"""One request to the S3 store: what every call carries (the client, the bucket, the SSE
parameters) and the guard it runs in, which turns S3 failures into the domain's and keeps a
circuit breaker, so that while the store is down requests get their 503 at once.

Shared by the driver's parts (s3.py: reads, deletes, listing; s3_uploads.py; s3_check.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import BlobUploadInvalid, StorageUnavailable
from ..health import StoreHealth
from .s3_sse import Sse

__all__ = ["BREAKER_COOLDOWN", "BREAKER_FAILURES", "Breaker", "S3Bucket", "error_code", "translate"]

# consecutive failed requests (each after its retries) that open the circuit breaker: among
# hundreds of concurrent reads, two slow connects in a row paused every read of the process
BREAKER_FAILURES = 5
BREAKER_COOLDOWN = 3.0  # seconds requests fail at once before one probes the store again
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "RequestTimeout",
}
_CONCURRENT = {"NoSuchKey", "NoSuchUpload", "InvalidPart", "InvalidPartOrder"}


class S3Bucket:
    """The bucket the driver works in, through `client`, with the configured encryption; the
    store's state goes to `health`."""

    def __init__(self, client: Any, name: str, sse: Sse, health: StoreHealth) -> None:
        self.client = client
        self.name = name
        self.sse = sse
        self.health = health
        self._breaker = Breaker(BREAKER_FAILURES, BREAKER_COOLDOWN)

    @contextlib.contextmanager
    def guard(self, what: str, *, concurrent: bool = False, answered: bool = False) -> Iterator[None]:
        """One request to the store: failures translated (translate), and through the circuit
        breaker, so that while the store is down requests get their 503 at once instead of
        each waiting out timeouts and retries.

        With `answered`, the store has already answered this request (a body being read): a
        failure now (a body that stalls or ends early) fails that read alone and is no sign that
        new requests would fail, so it does not count towards opening the breaker, and an open
        breaker does not cut a body that is still flowing. Only its successes are recorded."""
        if not answered:
            self._breaker.check()
        available: bool | None = True  # None: nothing learnt (the caller gave up waiting)
        try:
            with translate(what, concurrent=concurrent):
                yield
        except StorageUnavailable as exc:
            available = False
            if not answered:
                self.health.failed(exc.__cause__ or exc.message)
            raise
        except asyncio.CancelledError:
            # not an answer: counted as one, clients giving up on a hung store would keep
            # resetting the failure count and the breaker would never open
            available = None
            raise
        finally:
            if available is not None and (available or not answered):
                self._breaker.record(available)
        self.health.answered()

    async def head(self, key: str) -> int:
        """The stored size of an object (HeadObject); FileNotFoundError if it is not there."""
        with self.guard(key):
            response = await self.client.head_object(Bucket=self.name, Key=key, **self.sse.request)
        return int(response["ContentLength"])


class Breaker:
    """Counts consecutive failed requests; from `failures` on, requests fail at once for
    `cooldown` seconds, after which one request at a time is let through to probe the store."""

    def __init__(self, failures: int, cooldown: float) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._failures = 0
        self._open_until = 0.0

    def check(self) -> None:
        if self._failures < self._threshold:
            return
        now = time.monotonic()
        if now < self._open_until:
            raise StorageUnavailable(message="S3 store failing: requests paused for a few seconds")
        self._open_until = now + self._cooldown  # this request probes; the others still fail fast

    def record(self, available: bool) -> None:
        if available:
            self._failures = 0
            return
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = time.monotonic() + self._cooldown


@contextlib.contextmanager
def translate(what: str, *, concurrent: bool = False) -> Iterator[None]:
    """S3 failures as the domain's: a missing object is FileNotFoundError, a store that is down
    or throttling after botocore's retries is StorageUnavailable (503). With `concurrent`, a
    staging object or part that vanished means another request changed the upload."""
    try:
        yield
    except ClientError as exc:
        code, status = error_code(exc), _status(exc)
        if status >= 500 or status == 429 or code in _THROTTLED:
            raise StorageUnavailable(message=f"S3 store answered {status} {code}") from exc
        if concurrent and code in _CONCURRENT:
            raise BlobUploadInvalid(message="upload staging changed concurrently; retry the upload") from exc
        if code in ("NoSuchKey", "NoSuchUpload", "404", "NotFound"):
            raise FileNotFoundError(f"no S3 object {what}") from exc
        raise
    except (BotoConnectionError, HTTPClientError, aiohttp.ClientError, TimeoutError) as exc:
        raise StorageUnavailable(message=f"S3 store unreachable: {type(exc).__name__}") from exc


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
