-- When a registry token was last presented (its password, or a JWT minted from it), for the
-- console's token list; written at most once a minute per token and process (auth/service.py).
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
