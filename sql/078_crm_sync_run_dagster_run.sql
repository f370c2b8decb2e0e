-- The Dagster run a sync run was part of (the crm_sync asset's), NULL for one recorded before. A sync whose process
-- was killed never wrote its Dagster run's end either: whoever finds the sync run interrupted reports that Dagster
-- run failed (defs/crm/assets.fail_killed_runs), so Dagster's UI stops showing it started, and records here that
-- it did (the next reader has nothing to ask Dagster).
ALTER TABLE crm_sync_runs ADD COLUMN dagster_run_id text, ADD COLUMN dagster_run_ended boolean NOT NULL DEFAULT false;
