-- When a later sync of the connection found the run interrupted: recorded as running, its advisory lock free
-- (lib/store/liveness.py). Everything the killed run committed was committed by then, so it stops counting as
-- running beside the runs that start afterwards (store.crm.pushing_lists); finished_at stays NULL: the run's
-- real end is unknown.
ALTER TABLE crm_sync_runs ADD COLUMN found_interrupted_at timestamptz;
