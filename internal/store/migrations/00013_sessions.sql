-- +goose Up
-- Web sessions live here, not only in a cookie, so that signing out, an
-- admin's "sign out everyone" and the idle timeout end them at once. The
-- id is stored hashed; the session (who, roles, teams, the identity
-- provider's refresh token) is sealed by the front door.
CREATE TABLE sessions (
    id_hash    bytea PRIMARY KEY,
    sealed     bytea NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
