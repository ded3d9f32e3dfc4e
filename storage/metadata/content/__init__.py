"""The content aggregate: repositories and what they hold, one module per part as in CNCF
Distribution (blobs and their links, manifests and referrers, tags), over one SQL engine.

A manifest's references to its blobs and child manifests are written in its own transaction
(`manifests.py`), with foreign keys that the garbage collector's deletes
(`../collection.py`) cannot get past."""

from __future__ import annotations

from .blobs import SqlBlobs
from .manifests import SqlManifests
from .repositories import SqlRepositories
from .tags import SqlTags

__all__ = ["SqlContent"]


class SqlContent(SqlRepositories, SqlBlobs, SqlManifests, SqlTags):
    """All of the content aggregate on one engine (`contracts.ContentStore`)."""
