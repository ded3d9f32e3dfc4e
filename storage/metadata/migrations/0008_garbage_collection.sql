-- Online garbage collection (storage/collector.py). Every reference the collector must respect
-- is a row with a foreign key, so that a race between a push and a collection ends in a
-- constraint failure (the push answers MANIFEST_BLOB_UNKNOWN, or the collector skips the row)
-- and never in a stored manifest whose blobs are gone.

-- Raised by every push of the manifest (with or without a tag): the collector deletes a
-- manifest only if this is still the value it read, so a push that lands meanwhile keeps it.
ALTER TABLE manifests ADD COLUMN pushed_at BIGINT NOT NULL DEFAULT 0;
UPDATE manifests SET pushed_at = created_at;
-- 1 once the manifest's references below are written (at push; older manifests are indexed
-- by the collector before it removes anything from their registry)
ALTER TABLE manifests ADD COLUMN refs_indexed INTEGER NOT NULL DEFAULT 0;

-- The blobs (config, layers) a manifest needs: a link referenced here cannot be deleted, and a
-- manifest whose link is gone cannot be written.
CREATE TABLE manifest_blobs (
    repository_id    BIGINT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    blob_digest      TEXT NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, blob_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
        ON DELETE CASCADE,
    FOREIGN KEY (repository_id, blob_digest) REFERENCES blob_links (repository_id, digest)
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (repository_id, blob_digest);

-- The manifests an index lists: the same rule one level up.
CREATE TABLE manifest_children (
    repository_id  BIGINT NOT NULL,
    parent_digest  TEXT NOT NULL,
    child_digest   TEXT NOT NULL,
    PRIMARY KEY (repository_id, parent_digest, child_digest),
    FOREIGN KEY (repository_id, parent_digest) REFERENCES manifests (repository_id, digest)
        ON DELETE CASCADE,
    FOREIGN KEY (repository_id, child_digest) REFERENCES manifests (repository_id, digest)
);
CREATE INDEX manifest_children_by_child ON manifest_children (repository_id, child_digest);

-- The global sweep looks for blobs no repository links.
CREATE INDEX blob_links_by_digest ON blob_links (digest);

-- Locations of blobs whose rows are deleted and whose bytes are not yet: a crash between the
-- two leaves the location here for the next run, never bytes gone under a row.
CREATE TABLE blob_deletions (
    location   TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    queued_at  BIGINT NOT NULL
);

-- One collector at a time (SQLite; PostgreSQL uses advisory locks): a lease, renewed while
-- the holder works, taken over once expired (a holder that died).
CREATE TABLE gc_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Where the reconciling scan of the store stopped (it goes on from there next time).
CREATE TABLE gc_marks (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- The last collection of each registry, for the management API.
CREATE TABLE gc_runs (
    registry_id  TEXT PRIMARY KEY REFERENCES registries (id) ON DELETE CASCADE,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    manifests    BIGINT NOT NULL,
    links        BIGINT NOT NULL,
    blobs        BIGINT NOT NULL,
    bytes        BIGINT NOT NULL
);
