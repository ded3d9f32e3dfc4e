"""Secrets: generation and hashing (scrypt from the standard library).

Only hashes are stored. scrypt with N=2^14, r=8 costs about 16 MiB and a few tens of ms per
check here; the gateway checks a password once and then caches the verified result briefly
(`auth/service.py`), so no hash is computed per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def new_secret() -> str:
    """256 bits of entropy, URL-safe (usable as a password in docker login)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
