-- Whether an enrichment job's sources last started in a `leads` process (`leads enrich`, in the background or
-- with --wait, `leads jobs resume`): such a process holds the job's advisory lock for as long as it runs
-- (lib/store/liveness.py), so a job of one still 'processing' once the lock is free was interrupted (killed,
-- Ctrl-C) and reads so. A run Dagster launched (a sensor, the UI) holds no such lock: its own run status, and
-- the run status sensors that settle the job from it, say whether it still runs.
ALTER TABLE enrichment_jobs ADD COLUMN run_in_process boolean NOT NULL DEFAULT false;
