-- Deleting a lead runs, for each table referencing it, a lookup of that lead's rows there (PostgreSQL's foreign key
-- actions, once per deleted lead). Three of those tables had no index leading with lead_id, so each lookup read the
-- whole table: deleting 20,000 leads while crm_conflicts held 100,000 rows took 201 s (2.4 s with this index), and
-- an import undo, a list purge, a retention run or an erasure grew with the conflicts, enrichment failures and
-- update snapshots of every other lead. import_updates and enrichment_failures have lead_id second in their keys,
-- which serves only while there are few imports or jobs.
CREATE INDEX IF NOT EXISTS crm_conflicts_lead ON crm_conflicts (lead_id);
CREATE INDEX IF NOT EXISTS enrichment_failures_lead ON enrichment_failures (lead_id);
CREATE INDEX IF NOT EXISTS import_updates_lead ON import_updates (lead_id);
