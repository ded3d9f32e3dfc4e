"""Buffers for bytes on the hot paths."""

from __future__ import annotations

import ctypes

__all__ = ["HEAP_BUFFER_MAX", "uninitialized"]

# malloc's mmap threshold in the gateway (gateway/server.py): a buffer under it is reused from
# the heap, one of it or over is a fresh mapping, page-faulted and zeroed by the kernel each time
HEAP_BUFFER_MAX = 4 * 1024 * 1024

_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
_new_bytearray.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
_new_bytearray.restype = ctypes.py_object


def uninitialized(size: int) -> bytearray:
    """A bytearray whose bytes are not zeroed first (zeroing cost 7% of a filesystem GET's CPU):
    the caller must overwrite every byte it lets anyone read."""
    return _new_bytearray(None, size)
