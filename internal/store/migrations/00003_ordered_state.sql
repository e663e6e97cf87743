-- +goose Up
-- Writes from one request's workflow can land out of order (a claim's
-- write after the close's): each carries the workflow's sequence number
-- and an older one never replaces a newer. Audit rows and notices a retry
-- may repeat carry a key that makes the repeat a no-op.
ALTER TABLE requests ADD COLUMN state_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX audit_log_dedupe_key_idx ON audit_log (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE TABLE slack_notices (
    key        text        PRIMARY KEY,
    channel    text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ts         text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE slack_notices;
DROP INDEX audit_log_dedupe_key_idx;
ALTER TABLE audit_log DROP COLUMN dedupe_key;
ALTER TABLE requests DROP COLUMN state_seq;
