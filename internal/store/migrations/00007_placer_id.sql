-- +goose Up
-- The trust's own appointment id (HL7 SCH-1, PKB's Appointment.identifier):
-- how a copy of the PAS's update finds the requests waiting on it.
ALTER TABLE requests ADD COLUMN placer_id text NOT NULL DEFAULT '';
CREATE INDEX requests_waiting_placer_idx ON requests (placer_id) WHERE closed_at IS NULL AND placer_id <> '';

-- +goose Down
DROP INDEX requests_waiting_placer_idx;
ALTER TABLE requests DROP COLUMN placer_id;
