-- Security for the later stages: row-level security by list membership on every table of the contacts,
-- enrichment, scoring and CRM stages that holds lead data or data derived from leads (same pattern as
-- 007_security.sql), and the queue of deletions an erasure request owes the connected CRMs.
--
-- The pipeline's service role (the one applying migrations and owning the tables) is not subject to these
-- policies (no FORCE ROW LEVEL SECURITY; BYPASSRLS on the embedded server, see 007). Members of leads_reader,
-- reading with plain SQL, see only what belongs to the lists they are members of.
-- leads_pipeline_tests/lib/store/test_row_security_stages.py reads the catalog: every table of schema leads with
-- a lead_id or list_id column must have row-level security and a policy, so a new table without them fails.

-- Deletions owed to CRMs by `leads privacy delete`: one row per CRM record (connection, remote id) of an erased
-- person. It keeps neither the email nor the phone: the remote id and the connection are all a deletion needs.
-- `subject` is the request's keyed hash (as in the audit log). Processed by the crm_erasures asset and
-- `leads privacy crm-erasures --process`: pending -> done (deleted, or already absent in the CRM) or failed
-- (refused for good); transient failures stay pending with their attempts and the last error.
CREATE TABLE crm_erasures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection    text NOT NULL,
    crm           text NOT NULL CHECK (crm IN ('salesforce', 'hubspot', 'pipedrive', 'gohighlevel')),
    remote_id     text NOT NULL,
    subject       text NOT NULL,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    outcome       text CHECK (outcome IN ('deleted', 'absent')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    last_attempt  timestamptz,
    done_at       timestamptz
);
CREATE UNIQUE INDEX crm_erasures_record ON crm_erasures (connection, remote_id);
CREATE INDEX crm_erasures_pending ON crm_erasures (id) WHERE status = 'pending';
-- Service only: RLS on, no policy, no grant (nothing in it is a list's data any more).
ALTER TABLE crm_erasures ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads_reader') THEN
        GRANT SELECT ON enrichment_jobs, enrichment_progress, enrichment_failures, webhook_deliveries,
            list_enrichment_settings, lead_scores, score_history, stage_changes, crm_links, crm_sync_runs,
            crm_rejects, crm_sync_log, crm_conflicts, retention_policies, credit_ledger TO leads_reader;
    END IF;
END $$;

ALTER TABLE enrichment_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrichment_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrichment_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE list_enrichment_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE company_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_verifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_pattern_evidence ENABLE ROW LEVEL SECURITY;
ALTER TABLE dnc_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE dnc_lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE score_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE stage_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_rejects ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_sync_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_conflicts ENABLE ROW LEVEL SECURITY;

-- Keyed by list.
CREATE POLICY member_reads ON list_enrichment_settings FOR SELECT USING (may_read_list(list_id, current_user));
CREATE POLICY member_reads ON crm_sync_runs FOR SELECT
    USING (list_id IS NOT NULL AND may_read_list(list_id, current_user));
CREATE POLICY member_reads ON retention_policies FOR SELECT
    USING (list_id IS NOT NULL AND may_read_list(list_id, current_user));
-- Keyed by lead: visible when the lead is, through the leads policy of 007.
CREATE POLICY member_reads ON enrichment_failures FOR SELECT
    USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON lead_scores FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON score_history FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON stage_changes FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON crm_links FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON crm_rejects FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
CREATE POLICY member_reads ON crm_conflicts FOR SELECT USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
-- The sync log names a lead (or, for a record pulled and never linked, none): the run's list decides then.
CREATE POLICY member_reads ON crm_sync_log FOR SELECT
    USING (CASE WHEN lead_id IS NOT NULL THEN EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id)
                ELSE EXISTS (SELECT 1 FROM crm_sync_runs r WHERE r.id = sync_id) END);
-- Keyed by job: an enrichment job is a batch of a list (batches' policy of 007).
CREATE POLICY member_reads ON enrichment_jobs FOR SELECT
    USING (EXISTS (SELECT 1 FROM batches b WHERE b.id = enrichment_jobs.id));
CREATE POLICY member_reads ON enrichment_progress FOR SELECT
    USING (EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.id = job_id));
CREATE POLICY member_reads ON webhook_deliveries FOR SELECT
    USING (EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.id = job_id));
-- The credit ledger is a view over lead_facts: it reads with the caller's rights, so the lead_facts policy holds.
ALTER VIEW credit_ledger SET (security_invoker = true);
-- Not granted, RLS on and no policy (the service role only):
--   email_verifications, email_pattern_evidence: keyed by address, not by lead; shared by every list holding the
--     address, so no list membership can own them (and erasure finds them by address, 010 may encrypt it);
--   company_profiles: public company research shared by every list (no person in it);
--   dnc_lists, dnc_numbers: the Do-Not-Call registry copies (their list_id names a registry file, not a lead list).
