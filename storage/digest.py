"""Content digests (`algorithm:encoded`) as values.

OCI image-spec descriptor rules: the algorithm is `[a-z0-9]+([+._-][a-z0-9]+)*`, the encoded
part `[a-zA-Z0-9=_-]+`; for the registered algorithms the encoded part is lowercase hex of a
fixed length. Anything else is rejected before it reaches a path, a query or a log line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import DigestInvalid

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST_RE.fullmatch(text)
        if match is None:
            raise DigestInvalid(text, message="invalid digest format")
        algorithm, encoded = match.groups()
        length = _HEX_LENGTHS.get(algorithm)
        if length is None:
            raise DigestInvalid(text, message=f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != length or not _is_lower_hex(encoded):
            raise DigestInvalid(text, message=f"invalid {algorithm} digest")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, content: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, content).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def looks_like_digest(reference: str) -> bool:
    """A manifest reference is a digest when it has a colon (tags never do)."""
    return ":" in reference


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
