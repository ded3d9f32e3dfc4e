"""Buffers for bytes on the hot paths."""

from __future__ import annotations

import ctypes

__all__ = ["address_of", "uninitialized"]

_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
_new_bytearray.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
_new_bytearray.restype = ctypes.py_object


def uninitialized(size: int) -> bytearray:
    """A bytearray whose bytes are not zeroed first (zeroing cost 7% of a filesystem GET's CPU):
    the caller must overwrite every byte it lets anyone read."""
    buffer: bytearray = _new_bytearray(None, size)  # restype py_object: the bytearray itself
    return buffer


class _PyBuffer(ctypes.Structure):  # Py_buffer, include/pybuffer.h
    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


def address_of(buffer: object) -> int:
    """The address of an object's memory, read-only buffers (e.g. mmap.PROT_READ) included:
    valid while the object lives, unresized (a mapping until it is closed)."""
    view = _PyBuffer()
    ctypes.pythonapi.PyObject_GetBuffer(ctypes.py_object(buffer), ctypes.byref(view), 0)  # PyBUF_SIMPLE
    try:
        return int(view.buf or 0)
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(view))
