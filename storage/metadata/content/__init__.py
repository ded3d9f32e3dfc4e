"""The content aggregate: repositories and what they hold, one module per part as in CNCF
Distribution (blobs and their links, manifests and referrers, tags), over one SQL engine.

Shaped for garbage collection to come next: manifest → blob references belong in
`manifests.py` (written in the manifest's transaction), the collector's queries of what no
link or reference holds in `blobs.py`."""

from __future__ import annotations

from .blobs import SqlBlobs
from .manifests import SqlManifests
from .repositories import SqlRepositories
from .tags import SqlTags

__all__ = ["SqlContent"]


class SqlContent(SqlRepositories, SqlBlobs, SqlManifests, SqlTags):
    """All of the content aggregate on one engine (`contracts.ContentStore`)."""
