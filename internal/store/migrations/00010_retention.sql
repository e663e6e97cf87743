-- +goose Up
-- When a closed request's patient identifiers and free text were removed,
-- a retention period after it closed. The row stays, for the reports;
-- the audit log keeps who did what and when.
ALTER TABLE requests ADD COLUMN redacted_at timestamptz;
CREATE INDEX requests_unredacted_closed_idx ON requests (closed_at)
    WHERE redacted_at IS NULL AND closed_at IS NOT NULL;

-- +goose Down
DROP INDEX requests_unredacted_closed_idx;
ALTER TABLE requests DROP COLUMN redacted_at;
