-- +goose Up
-- Routing rules: (specialty, clinic, request type) -> team, channel, SLA.
-- An empty cell matches anything; the most specific rule wins.
CREATE TABLE routing_rules (
    id            bigserial PRIMARY KEY,
    specialty     text    NOT NULL DEFAULT '',
    clinic        text    NOT NULL DEFAULT '',
    request_type  text    NOT NULL DEFAULT '' CHECK (request_type IN ('', 'cancel', 'change')),
    team          text    NOT NULL CHECK (team <> ''),
    slack_channel text    NOT NULL CHECK (slack_channel <> ''),
    sla_hours     integer NOT NULL CHECK (sla_hours > 0),
    UNIQUE (specialty, clinic, request_type)
);

-- The request read model: one row per PKB message Rebook has taken on.
-- Temporal is the system of record for what happened; this is for the
-- dashboard, reports and metrics.
CREATE TABLE requests (
    message_id     text        PRIMARY KEY,
    workflow_id    text        NOT NULL UNIQUE,
    state          text        NOT NULL,
    request_type   text        NOT NULL DEFAULT '',
    specialty      text        NOT NULL DEFAULT '',
    clinic         text        NOT NULL DEFAULT '',
    team           text        NOT NULL DEFAULT '',
    slack_channel  text        NOT NULL DEFAULT '',
    slack_ts       text        NOT NULL DEFAULT '',
    appointment_id text        NOT NULL DEFAULT '',
    reason         text        NOT NULL DEFAULT '',
    received_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz
);
CREATE INDEX requests_state_idx ON requests (state, received_at);

-- Where the message poll has read up to, in PKB's epoch milliseconds.
CREATE TABLE poll_cursors (
    name       text        PRIMARY KEY,
    after_ms   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The PKB grant per OAuth client. Tokens are AES-GCM sealed under
-- REBOOK_ENCRYPTION_KEY: never in clear.
CREATE TABLE pkb_grants (
    client_id         text        PRIMARY KEY,
    access_token      bytea,
    refresh_token     bytea,
    access_expires_at timestamptz,
    status            text        NOT NULL CHECK (status IN ('healthy', 'needs-grant')),
    needed_since      timestamptz,
    last_error        text        NOT NULL DEFAULT '',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- OAuth state values handed out by /oauth/start: single use, short-lived.
-- Only their SHA-256 is kept.
CREATE TABLE oauth_states (
    state_hash bytea       PRIMARY KEY,
    client_id  text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Who did what to which request or grant. Ids and categories only.
CREATE TABLE audit_log (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE oauth_states;
DROP TABLE pkb_grants;
DROP TABLE poll_cursors;
DROP TABLE requests;
DROP TABLE routing_rules;
