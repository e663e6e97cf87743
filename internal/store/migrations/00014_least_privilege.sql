-- +goose Up
-- Least privilege. `starter migrate` runs as a role with DDL rights and
-- grants rebook_app (NOLOGIN; the logins `serve` and the worker use are
-- its members) only what they need, after every migration (Store.Migrate).
-- The audit log is append-only: no role Rebook runs as may update or
-- delete a row, and the only change ever made to one is retention's
-- redaction of its detail, through redact_audit.

-- The role is created where the migrating role may (CREATEROLE); where it
-- may not, a DBA creates rebook_app and the grants follow.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rebook_app') THEN
        CREATE ROLE rebook_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create role rebook_app: ask a DBA to create it (NOLOGIN), then run starter migrate again';
    WHEN duplicate_object OR unique_violation THEN
        NULL; -- another database on this server made it at the same moment
END $$;
-- +goose StatementEnd

-- Redaction: blanks an audit row's detail but the keys retention keeps,
-- on the rows of requests already redacted.
-- It runs with its owner's rights, so rebook_app needs no UPDATE on the
-- table, and it says so to the guard below for this transaction only.
-- +goose StatementBegin
CREATE FUNCTION redact_audit(subjects text[], kept text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM set_config('rebook.redacting', 'on', true);
    UPDATE audit_log SET detail = COALESCE(
        (SELECT jsonb_object_agg(k, v) FROM jsonb_each(detail) AS d(k, v) WHERE k = ANY(kept)), '{}')
    WHERE subject = ANY(subjects)
      AND EXISTS (SELECT FROM requests r WHERE r.workflow_id = audit_log.subject AND r.redacted_at IS NOT NULL);
    PERFORM set_config('rebook.redacting', 'off', true);
END $$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION redact_audit(text[], text[]) FROM PUBLIC;

-- The guard holds for every role, the owner's included: rows are never
-- deleted, and change only by redaction, and then only in their detail.
-- +goose StatementBegin
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_log rows are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('rebook.redacting', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'audit_log rows change only through retention''s redaction (redact_audit)' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject) IS DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.subject)
       OR NEW.dedupe_key IS DISTINCT FROM OLD.dedupe_key THEN
        RAISE EXCEPTION 'redaction changes an audit row''s detail only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();

-- Reporting shows teams, not people, and no workflow id (it carries PKB's
-- message id).
DROP VIEW reporting.transitions;
DROP VIEW reporting.requests;
CREATE VIEW reporting.requests AS
SELECT ref, state, request_type, specialty, specialty_code, clinic, team, triage,
       reason AS triage_reason, received_at, closed_at, due_at,
       closed_at - received_at AS time_to_close,
       COALESCE(closed_at, now()) > due_at AS sla_breached
FROM public.requests;
CREATE VIEW reporting.transitions AS
SELECT a.at, r.ref, r.team, r.specialty, a.action
FROM public.audit_log a JOIN public.requests r ON r.workflow_id = a.subject;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rebook_reporting') THEN
        GRANT SELECT ON reporting.requests, reporting.transitions TO rebook_reporting;
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW reporting.transitions;
DROP VIEW reporting.requests;
CREATE VIEW reporting.requests AS
SELECT ref, workflow_id, state, request_type, specialty, specialty_code, clinic, team, triage,
       reason AS triage_reason, claimed_by, closed_by, received_at, closed_at, due_at,
       closed_at - received_at AS time_to_close,
       COALESCE(closed_at, now()) > due_at AS sla_breached
FROM public.requests;
CREATE VIEW reporting.transitions AS
SELECT a.at, r.ref, r.team, r.specialty, a.actor, a.action
FROM public.audit_log a JOIN public.requests r ON r.workflow_id = a.subject;
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_guard ON audit_log;
DROP FUNCTION audit_log_guard();
DROP FUNCTION redact_audit(text[], text[]);
