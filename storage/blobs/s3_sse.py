"""The S3 driver's server-side encryption: the request parameters each S3 call carries for the
configured mode, and the SSE-C key kept out of reprs, messages and botocore's debug logs.

On their own because the key is a secret: what touches it is here, in one place to review.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import S3Config

__all__ = ["REDACT", "Sse", "customer_key"]


@dataclass(frozen=True, repr=False)
class Sse:
    """Request parameters for the configured server-side encryption. The SSE-C key lives only
    here (and in botocore's request): never in reprs, messages or logs."""

    mode: str
    write: dict[str, Any] = field(default_factory=dict)  # PutObject, CreateMultipartUpload
    request: dict[str, Any] = field(default_factory=dict)  # UploadPart, GetObject, HeadObject
    copy_source: dict[str, Any] = field(default_factory=dict)  # UploadPartCopy's source
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Sse({self.mode!r})"

    @classmethod
    def from_config(cls, config: S3Config) -> Sse:
        mode = config.sse
        if mode == "none":
            return cls(mode)
        if mode == "AES256":
            return cls(mode, write={"ServerSideEncryption": "AES256"})
        if mode == "aws:kms":
            write = {"ServerSideEncryption": "aws:kms"}
            if config.sse_kms_key_id:
                write["SSEKMSKeyId"] = config.sse_kms_key_id
            return cls(mode, write=write)
        if mode == "sse-c":
            text = config.sse_c_key.get_secret_value() if config.sse_c_key else None
            key = customer_key(text, config.sse_c_key_file)
            request = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
            copy_source = {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}
            b64 = base64.b64encode(key).decode()
            return cls(mode, request, request, copy_source, (b64, repr(key)[2:-1]))
        raise ValueError(f"unknown server-side encryption {mode!r}")

    def honoured(self, response: dict[str, Any]) -> bool:
        """Whether a PutObject response shows the store applied this encryption."""
        if self.mode == "sse-c":
            return response.get("SSECustomerAlgorithm") == "AES256"
        if self.mode in ("AES256", "aws:kms"):
            return response.get("ServerSideEncryption") == self.mode
        return True


class _Redactor(logging.Filter):
    """Blanks SSE-C keys out of botocore's debug logs (it logs request headers and signing)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def watch(self, secret_forms: tuple[str, ...]) -> None:
        if not secret_forms:
            return
        self._secrets.update(secret_forms)
        # a logger filter sees only records logged at that very logger: attach to all of them
        # (botocore's modules, and so their loggers, are loaded once a client exists)
        names = [
            name
            for name in logging.root.manager.loggerDict
            if name.split(".")[0] in ("botocore", "aiobotocore")
        ]
        for name in {"botocore", "aiobotocore", *names}:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "<redacted>")
            record.msg, record.args = message, ()
        return True


REDACT = _Redactor()


def customer_key(value: str | None, path: Path | None) -> bytes:
    """The 32-byte SSE-C key from its base64 text, or a file holding that text (or raw bytes)."""
    if value is None and path is not None:
        raw = path.read_bytes()
        if len(raw) == 32:
            return raw
        value = raw.decode("ascii", errors="replace").strip()
    if value is None:
        raise ValueError("sse-c needs a customer key or a file holding one")
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:  # the message never shows the key
        raise ValueError("the SSE-C key must be base64 of 32 bytes")
    return key
