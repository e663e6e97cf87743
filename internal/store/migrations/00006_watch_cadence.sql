-- +goose Up
-- When each waiting request's patient is next asked about, and how far
-- apart the asks are now: the watcher searches one patient at a time, as
-- PKB documents, within a budget of calls an hour.
ALTER TABLE requests
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN check_every_s integer NOT NULL DEFAULT 0,
    ADD COLUMN due_at        timestamptz;
CREATE INDEX requests_next_check_idx ON requests (next_check_at)
    WHERE closed_at IS NULL AND patient_id <> '' AND appointment_id <> '';

-- +goose Down
DROP INDEX requests_next_check_idx;
ALTER TABLE requests DROP COLUMN next_check_at, DROP COLUMN check_every_s, DROP COLUMN due_at;
