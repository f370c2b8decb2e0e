-- Run logs on disk (enrichment jobs' logs/<job>.log, Dagster's compute logs) were never removed, though they can
-- name people: a global `logs` retention policy deletes those older than its days.
ALTER TABLE retention_policies DROP CONSTRAINT retention_policies_kind_check,
    ADD CONSTRAINT retention_policies_kind_check CHECK (kind IN ('leads', 'facts', 'inbox', 'logs'));
