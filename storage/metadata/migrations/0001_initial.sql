-- ocigate metadata schema, version 1. Portable SQL: {serial}, {bytes} and {text_sorted} are
-- replaced per engine (see storage/metadata/engine.py).

CREATE TABLE registries (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE repositories (
    id           {serial},
    registry_id  TEXT NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    name         {text_sorted} NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (registry_id, name)
);

-- Content-addressed and stored once; reachable only through blob_links.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    location    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE blob_links (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL REFERENCES blobs (digest),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE TABLE manifests (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    content        {bytes} NOT NULL,
    subject        TEXT,
    artifact_type  TEXT,
    annotations    {bytes},
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE INDEX manifests_by_subject ON manifests (repository_id, subject);

CREATE TABLE tags (
    repository_id  BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name           {text_sorted} NOT NULL,
    digest         TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);

CREATE INDEX tags_by_digest ON tags (repository_id, digest);

CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    registry_id   TEXT NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    repository    TEXT NOT NULL,
    byte_offset   BIGINT NOT NULL,
    hash_state    {bytes} NOT NULL,
    driver_state  {bytes} NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
