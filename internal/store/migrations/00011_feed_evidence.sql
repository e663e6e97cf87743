-- +goose Up
-- What a feed update must agree with before it counts as evidence for a
-- request: the patient (a keyed digest of the NHS number, never the
-- number), the placer id's identifier system, and the times that order
-- updates: PKB's lastUpdated of the appointment when it was matched, and
-- the PAS's own time of the last feed update applied.
ALTER TABLE requests ADD COLUMN nhs_digest text NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN placer_system text NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN appointment_updated_at timestamptz;
ALTER TABLE requests ADD COLUMN feed_at timestamptz;
CREATE INDEX requests_waiting_nhs_idx ON requests (nhs_digest) WHERE closed_at IS NULL AND nhs_digest <> '';

-- Feed updates that named no request yet: kept until a request with that
-- placer id is routed (the PAS can act before Rebook has matched the
-- request), then applied; dropped after a week.
CREATE TABLE feed_pending (
    id           bigserial PRIMARY KEY,
    placer_id    text NOT NULL,
    update       jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_pending_placer_idx ON feed_pending (placer_id);

-- +goose Down
DROP TABLE feed_pending;
DROP INDEX requests_waiting_nhs_idx;
ALTER TABLE requests DROP COLUMN feed_at;
ALTER TABLE requests DROP COLUMN appointment_updated_at;
ALTER TABLE requests DROP COLUMN placer_system;
ALTER TABLE requests DROP COLUMN nhs_digest;
