-- A pulled CRM record linked to a lead merged away since (`leads dedupe --merge`) is applied to the lead it was
-- merged into, no longer created as a new lead; it is skipped when that lead is in a list the pull does not write
-- to (the reason in crm_sync_log, action pull_skipped). A run counts both.
ALTER TABLE crm_sync_runs
    ADD COLUMN pulled_to_survivors integer NOT NULL DEFAULT 0,
    ADD COLUMN pull_skipped integer NOT NULL DEFAULT 0;
