-- Account users can be disabled, and every change of a user's credentials (a new password,
-- disabling) raises its generation: JWTs and refresh tokens name the generation they were
-- minted under and are refused once it has moved on.
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled';
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
