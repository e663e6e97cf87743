-- +goose Up
-- Why work is paused, so the TokenKeeper knows what brings it back: a
-- clinician's grant, a configuration fix, or PKB answering again.
ALTER TABLE pkb_grants ADD COLUMN need_kind text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE pkb_grants DROP COLUMN need_kind;
