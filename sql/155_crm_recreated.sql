-- A push that found a linked record gone from the CRM (deleted there, or merged into another record, since the
-- last sync) created it again by its upsert (or, Pipedrive, updated the person holding the lead's match key) and
-- relinked the lead without a word. A run counts those records; crm_sync_log names the old and the new record
-- (action recreated or relinked), and `leads sync errors` lists them.
ALTER TABLE crm_sync_runs
    ADD COLUMN recreated integer NOT NULL DEFAULT 0;
