-- Accounts own registries; users of an account reach all its registries; registry tokens
-- (robot and one-time) reach only their registry, within their scopes. Secrets are hashes.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

ALTER TABLE registries ADD COLUMN account_id TEXT REFERENCES accounts (id);

-- location, garbageCollectionSchedule, apiSubnetAllowList, features (management API)
ALTER TABLE registries ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';

CREATE TABLE tokens (
    id             TEXT PRIMARY KEY,
    registry_id    TEXT NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    expires_at     BIGINT,
    status         TEXT NOT NULL,
    one_time       INTEGER NOT NULL,
    first_used_at  BIGINT,
    consumed_at    BIGINT,
    created_at     BIGINT NOT NULL,
    UNIQUE (registry_id, name)
);

CREATE TABLE audit_log (
    id       {serial},
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    address  TEXT,
    detail   TEXT
);

CREATE INDEX audit_log_by_time ON audit_log (at);
