"""A store failure, raised in each follower of a flight on its own."""

from __future__ import annotations

import copy


def fresh(exc: BaseException) -> BaseException:
    """An exception like `exc` for one follower: raising one object in many tasks would chain
    their tracebacks and contexts into each other."""
    try:
        clone = copy.copy(exc)
    except Exception:
        clone = OSError(f"the store's read failed: {exc!r}")
    clone.__cause__ = exc
    clone.__traceback__ = None
    return clone
