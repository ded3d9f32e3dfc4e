"""`X-Request-Id`: the client's (or a proxy's) when it is a plain token, else one made here;
returned on every response and written on the request's access line, so that one request can
be followed from a client's error through the load balancer to our logs.

errors.py's middleware, which every routed request passes, assigns it and puts it on the
response; a handler that sends its response itself (blobs.py) adds it to its headers. (An
`on_response_prepare` signal would cover both, at 4% of a manifest GET's instructions.)

# SECURITY: a client's id goes into a response header and the logs: only up to 128 of
# [A-Za-z0-9._:-] are taken (no CR/LF, quotes or spaces), anything else is replaced.
"""

from __future__ import annotations

import itertools
import os
import re

from aiohttp import web

__all__ = ["HEADER", "assign_request_id", "request_id"]

HEADER = "X-Request-Id"
_KEY = "ocigate.request_id"
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# made ids: random per process, then a count (unique across replicas and workers, and cheap)
_PREFIX = os.urandom(6).hex() + "-"
_SEQUENCE = itertools.count(1)


def assign_request_id(request: web.BaseRequest) -> str:
    """Once per request, before anything reads it."""
    given = request.headers.get(HEADER)
    assigned = request[_KEY] = (
        given if given is not None and _VALID.fullmatch(given) else f"{_PREFIX}{next(_SEQUENCE)}"
    )
    return assigned


def request_id(request: web.BaseRequest) -> str:
    known: str | None = request.get(_KEY)
    return known if known is not None else assign_request_id(request)


def _reseed() -> None:
    """A forked worker must not make the ids its parent or its siblings make."""
    global _PREFIX, _SEQUENCE
    _PREFIX = os.urandom(6).hex() + "-"
    _SEQUENCE = itertools.count(1)


os.register_at_fork(after_in_child=_reseed)
