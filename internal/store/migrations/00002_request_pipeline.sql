-- +goose Up
-- What the pipeline needs to find a waiting request when PKB shows its
-- appointment changed, to post to Slack exactly once, and to show who
-- claimed or closed it.
ALTER TABLE requests
    ADD COLUMN ref                   text        NOT NULL DEFAULT '',
    ADD COLUMN patient_id            text        NOT NULL DEFAULT '',
    ADD COLUMN specialty_code        text        NOT NULL DEFAULT '',
    ADD COLUMN appointment_start     timestamptz,
    ADD COLUMN triage                boolean     NOT NULL DEFAULT false,
    ADD COLUMN flags                 text        NOT NULL DEFAULT '',
    ADD COLUMN slack_post_started_at timestamptz,
    ADD COLUMN claimed_by            text        NOT NULL DEFAULT '',
    ADD COLUMN closed_by             text        NOT NULL DEFAULT '',
    ADD COLUMN close_note            text        NOT NULL DEFAULT '';
CREATE INDEX requests_ref_idx ON requests (ref);
CREATE INDEX requests_waiting_appointment_idx ON requests (appointment_id) WHERE closed_at IS NULL;
CREATE INDEX requests_waiting_patient_idx ON requests (patient_id, specialty_code) WHERE closed_at IS NULL;

-- +goose Down
DROP INDEX requests_waiting_patient_idx;
DROP INDEX requests_waiting_appointment_idx;
DROP INDEX requests_ref_idx;
ALTER TABLE requests
    DROP COLUMN ref, DROP COLUMN patient_id, DROP COLUMN specialty_code, DROP COLUMN appointment_start,
    DROP COLUMN triage, DROP COLUMN flags, DROP COLUMN slack_post_started_at,
    DROP COLUMN claimed_by, DROP COLUMN closed_by, DROP COLUMN close_note;
