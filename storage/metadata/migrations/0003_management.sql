-- Management API: repository usage counters, account-scoped audit trail, account listings.

-- Pulls (manifest GET) and pushes (manifest PUT), added in batches by each gateway process.
ALTER TABLE repositories ADD COLUMN pull_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN push_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN last_pull_at BIGINT;
ALTER TABLE repositories ADD COLUMN last_push_at BIGINT;

-- The account a management action belongs to, so that each account reads only its own trail.
ALTER TABLE audit_log ADD COLUMN account_id TEXT;
CREATE INDEX audit_log_by_account ON audit_log (account_id, id);

CREATE INDEX registries_by_account ON registries (account_id, name);
