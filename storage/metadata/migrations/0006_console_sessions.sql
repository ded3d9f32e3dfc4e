-- Web console sign-in sessions (auth/sessions.py). Only a hash of the session id is kept; a
-- session names the user and the credential generation it was opened under, so that deleting,
-- disabling or re-passwording the user ends it (the row goes with the user, or its generation
-- no longer matches). Expired rows are deleted as new sessions open.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    address     TEXT
);

CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);
