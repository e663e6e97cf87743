-- +goose Up
-- A read-only reporting schema for a trust's own BI (Power BI, Metabase,
-- Grafana): views over the read model with no patient data (no PKB patient
-- id, appointment id or placer id), and a role that can read them and
-- nothing else. Views read the tables with their owner's rights, so the
-- role needs no grant on the tables themselves.
CREATE SCHEMA IF NOT EXISTS reporting;

CREATE VIEW reporting.requests AS
SELECT ref, workflow_id, state, request_type, specialty, specialty_code, clinic, team, triage,
       reason AS triage_reason, claimed_by, closed_by, received_at, closed_at, due_at,
       closed_at - received_at AS time_to_close,
       COALESCE(closed_at, now()) > due_at AS sla_breached
FROM public.requests;

CREATE VIEW reporting.transitions AS
SELECT a.at, r.ref, r.team, r.specialty, a.actor, a.action
FROM public.audit_log a JOIN public.requests r ON r.workflow_id = a.subject;

CREATE VIEW reporting.requests_per_day AS
SELECT date_trunc('day', received_at AT TIME ZONE 'Europe/London')::date AS day, specialty, team, request_type,
       count(*) AS requests, count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
       count(*) FILTER (WHERE COALESCE(closed_at, now()) > due_at) AS sla_breaches
FROM public.requests GROUP BY 1, 2, 3, 4;

-- The role is created where the migrating role may (CREATEROLE); where it
-- may not, a DBA creates rebook_reporting and the grants below follow.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rebook_reporting') THEN
        CREATE ROLE rebook_reporting NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role rebook_reporting: ask a DBA to create it';
END $$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rebook_reporting') THEN
        GRANT USAGE ON SCHEMA reporting TO rebook_reporting;
        GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO rebook_reporting;
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW reporting.requests_per_day;
DROP VIEW reporting.transitions;
DROP VIEW reporting.requests;
DROP SCHEMA reporting;
