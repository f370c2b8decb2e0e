-- Security and compliance: the append-only audit log, suppression and opt-out entries for privacy requests,
-- retention policies, and row-level security by list membership for database users other than the pipeline.

-- One row per security-relevant action (exports, shares, deletions, merges, bulk actions, privacy requests,
-- retention runs), written in the same transaction as the action by leads_pipeline/lib/store/audit.py.
-- Append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE for every role, the owner included.
-- Details never hold an email address or phone number (audit.record masks them), so an erasure request never
-- needs to rewrite this log.
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor   text NOT NULL CHECK (btrim(actor) <> ''),
    action  text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]*$'),
    object  text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_lead_ids ON audit_log USING gin ((details -> 'leadIds'));

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- People erased by `leads privacy delete`: a keyed hash (HMAC-SHA256) of each normalized email and phone number
-- they had, never the value itself. Imports skip rows matching one and later stages refuse them.
CREATE TABLE suppressions (
    hash       text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('email', 'phone')),
    reason     text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- People who opted out of the sale/sharing of their data (CCPA "do not sell"), by the same keyed hash, so that
-- leads imported later for them are flagged too. The flag on the lead is what exports and the CRM sync read.
CREATE TABLE opt_outs (
    hash       text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('email', 'phone')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE leads ADD COLUMN opted_out_at timestamptz;

-- Retention policies: a global one per kind (list_id NULL) and per-list ones that override it for their list.
--   leads: delete leads not updated for `days` days; facts: empty lead_facts.details (raw provider payloads)
--   older than `days`; inbox: delete import files in the drop folder older than `days`.
CREATE TABLE retention_policies (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list_id    bigint REFERENCES lists (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('leads', 'facts', 'inbox')),
    days       integer NOT NULL CHECK (days > 0),
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX retention_policies_scope ON retention_policies (coalesce(list_id, 0), kind);

-- Row-level security by list membership.
--
-- The pipeline (CLI, sensors, runs) uses one service connection: the role that applied these migrations, which
-- owns every table and therefore is not subject to the policies (no FORCE ROW LEVEL SECURITY); on the embedded
-- server it is also a superuser and is given BYPASSRLS explicitly below. The CLI checks each acting user's role
-- through leads_pipeline/lib/store/access.py.
--
-- Everyone else reading with plain SQL is a database role named like a list member (list_members.username), a
-- member of the group role leads_reader, which may SELECT the tables below; the policies show it only the rows
-- of lists it belongs to. The member test reads the role's own name (current_user), not a session setting a
-- client could set to anybody's name.
-- Roles are server-wide: leads_reader is created once (when the migrating role may create roles; otherwise
-- an administrator creates it and grants it as below), and reused by every database of the server.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads_reader')
       AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        CREATE ROLE leads_reader NOLOGIN;
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('ALTER ROLE %I BYPASSRLS', current_user);
    END IF;
END $$;

-- Whether `username` may read the list: a member, or the owner named on a list created without member rows.
-- SECURITY DEFINER so that the policies on lists and list_members can call it without recursing into themselves.
CREATE FUNCTION may_read_list(p_list bigint, p_user text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = leads, pg_temp AS
$$ SELECT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = p_list AND m.username = p_user)
       OR EXISTS (SELECT 1 FROM lists l WHERE l.id = p_list AND l.owner = p_user) $$;
REVOKE ALL ON FUNCTION may_read_list(bigint, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads_reader') THEN
        GRANT EXECUTE ON FUNCTION may_read_list(bigint, text) TO leads_reader;
        GRANT USAGE ON SCHEMA leads TO leads_reader;
        GRANT SELECT ON lists, list_members, leads, lead_facts, lead_tags, imports, import_errors, import_updates,
            batches, batch_leads, merges TO leads_reader;
    ELSE
        RAISE NOTICE 'role leads_reader does not exist: plain-SQL readers get no access until it is created';
    END IF;
END $$;

ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE list_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_facts ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_updates ENABLE ROW LEVEL SECURITY;
ALTER TABLE batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE batch_leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE merges ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE opt_outs ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_policies ENABLE ROW LEVEL SECURITY;

-- Keyed by list.
CREATE POLICY member_reads ON lists FOR SELECT USING (may_read_list(id, current_user));
CREATE POLICY member_reads ON list_members FOR SELECT USING (may_read_list(list_id, current_user));
CREATE POLICY member_reads ON leads FOR SELECT USING (may_read_list(list_id, current_user));
CREATE POLICY member_reads ON imports FOR SELECT USING (may_read_list(list_id, current_user));
CREATE POLICY member_reads ON batches FOR SELECT USING (list_id IS NOT NULL AND may_read_list(list_id, current_user));
-- Keyed by lead or import: visible when the lead (or import) is, through the policies above.
CREATE POLICY member_reads ON lead_facts FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON lead_tags FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON batch_leads FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON import_updates FOR SELECT
    USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON merges FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = survivor_id));
CREATE POLICY member_reads ON import_errors FOR SELECT
    USING (EXISTS (SELECT 1 FROM imports i WHERE i.id = import_id));
-- audit_log, suppressions, opt_outs and retention_policies have RLS on and no policy: no rows for anyone but
-- the service role (and leads_reader has no grant on them anyway).
-- The view batch_members runs with its owner's rights (it would bypass the policies), so it is not granted.
