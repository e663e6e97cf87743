-- +goose Up
-- The PKB grant is started only from a link an admin was given: by
-- `starter grant-link`, or in the admins' Slack alert. Each link is good
-- once, for 30 minutes; only its hash is kept. The state a link starts
-- remembers how, for the audit row of the grant.
CREATE TABLE grant_links (
    link_hash  bytea       PRIMARY KEY,
    client_id  text        NOT NULL,
    issued_by  text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE oauth_states ADD COLUMN started_by text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE oauth_states DROP COLUMN started_by;
DROP TABLE grant_links;
