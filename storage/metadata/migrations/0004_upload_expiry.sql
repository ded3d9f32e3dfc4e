-- Upload sessions idle longer than OCIGATE_UPLOAD_TTL are expired: found by their last activity.
CREATE INDEX uploads_by_updated_at ON uploads (updated_at);
