-- Before sql/067 nothing told a killed enrichment job from a running one: a job whose `leads enrich` or `leads jobs
-- run` process was killed, or that was still running when the older version was stopped for the upgrade, stayed
-- 'queued' or 'processing', and sql/067 marked it run by Dagster (run_in_process false), which no lock speaks
-- for: it read as running for good and `leads jobs resume` refused it. A job still open from before sql/067 was
-- applied has no process or run of this version working on it; it is read by its lock (lib/store/liveness.py), so
-- it reads interrupted and can be resumed. Jobs created since are as their writer recorded them.
UPDATE enrichment_jobs SET run_in_process = true
WHERE status IN ('queued', 'processing') AND NOT run_in_process
    AND created_at < (SELECT applied_at FROM schema_migrations WHERE version = 67);
