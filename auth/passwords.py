"""Secrets: generation and hashing (scrypt from the standard library), and where hashes run.

Only hashes are stored. scrypt with N=2^14, r=8 costs about 16 MiB and a few tens of ms per
check here; the gateway checks a password once and then caches the verified result briefly
(`auth/service.py`), so no hash is computed per request.

Checks run on a small thread pool of their own (`PasswordChecker`): scrypt releases the GIL,
so a pool of half the CPUs bounds the cores that logins (and guesses) can take, and pulls,
whose file reads use the event loop's default pool, never queue behind them. An unknown user
costs a check against a dummy hash, so that the time of an answer says nothing about which
usernames exist.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import cache

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


@cache
def _dummy_hash() -> str:
    """A hash with today's parameters that no password matches (made once per process)."""
    return hash_password(new_secret())


def default_threads(workers: int = 1) -> int:
    """Half the CPUs this process may run on, shared among the workers; at least one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // (2 * max(workers, 1)))


class PasswordChecker:
    """Password checks on a bounded pool of their own, counted (`/metrics`)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(threads, 1)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ocigate-password")
        self.checks = 0  # every check, dummy ones included
        self._pool.submit(_dummy_hash)  # made now, so the first unknown user costs no more

    async def verify(self, password: str, stored: str | None) -> bool:
        """Whether `password` matches `stored`; None (no such user or token) costs the same
        and is False."""
        self.checks += 1
        loop = asyncio.get_running_loop()
        if stored is None:
            await loop.run_in_executor(self._pool, _verify_dummy, password)
            return False
        return await loop.run_in_executor(self._pool, verify_password, password, stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _verify_dummy(password: str) -> None:
    verify_password(password, _dummy_hash())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
