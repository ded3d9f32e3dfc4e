"""Resumable SHA-256 whose state can be saved between requests.

An upload arrives in many requests, possibly on different replicas, and the digest must be
computed over all of it without re-reading what was stored. CPython's hashlib objects cannot
be serialized, and `rehash` does not build against OpenSSL 3. OpenSSL 3's libcrypto still
exports the low-level `SHA256_Init/Update/Final` API whose `SHA256_CTX` is a plain struct, so
its bytes are the whole state: copy them out to save, copy them in to resume. Throughput is
close to hashlib's (both call the same assembly), see docs/design.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

_SHA256_CTX_SIZE = 112  # sizeof(SHA256_CTX): 8 x u32 state, 2 x u32 length, 16 x u32 data, 2 x u32


def _load_libcrypto() -> ctypes.CDLL:
    path = ctypes.util.find_library("crypto")
    if path is None:
        raise RuntimeError("libcrypto (OpenSSL) not found: install libssl3")
    lib = ctypes.CDLL(path)
    for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
        getattr(lib, name).restype = ctypes.c_int
    lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    return lib


_lib = _load_libcrypto()


class ResumableSha256:
    """A SHA-256 computation that can be frozen to bytes and thawed elsewhere."""

    __slots__ = ("_ctx",)
    algorithm = "sha256"

    def __init__(self, state: bytes | None = None) -> None:
        self._ctx = ctypes.create_string_buffer(_SHA256_CTX_SIZE)
        if state is None:
            _lib.SHA256_Init(self._ctx)
        elif len(state) == _SHA256_CTX_SIZE:
            ctypes.memmove(self._ctx, state, _SHA256_CTX_SIZE)
        else:
            raise ValueError("invalid SHA-256 state")

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        if isinstance(chunk, bytes):
            _lib.SHA256_Update(self._ctx, chunk, len(chunk))
        else:
            data = bytes(chunk)
            _lib.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        ctx_copy = ctypes.create_string_buffer(self._ctx.raw, _SHA256_CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        _lib.SHA256_Final(out, ctx_copy)
        return out.raw.hex()


def _self_test() -> None:
    probe = ResumableSha256()
    probe.update(b"ocigate")
    resumed = ResumableSha256(probe.state())
    resumed.update(b" resumes")
    if resumed.hexdigest() != hashlib.sha256(b"ocigate resumes").hexdigest():
        raise RuntimeError("libcrypto SHA256_CTX layout differs from the one assumed")


_self_test()
