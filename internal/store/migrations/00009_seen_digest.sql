-- +goose Up
-- What the watcher last told a waiting request PKB shows (a digest of the
-- snapshot): it signals again only when that changes, so a request that
-- waits for weeks gains no history from checks that found nothing new.
ALTER TABLE requests ADD COLUMN seen_digest text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE requests DROP COLUMN seen_digest;
