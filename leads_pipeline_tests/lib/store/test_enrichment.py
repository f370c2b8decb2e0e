"""Enrichment jobs as stored by older versions, read by this one."""

from __future__ import annotations

from pathlib import Path

from leads_pipeline.lib.store import enrichment
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.support import database_before

_JOB = (
    "WITH batch AS (INSERT INTO batches (id, kind, description) VALUES (%s, 'selection', 'leads') RETURNING id)"
    " INSERT INTO enrichment_jobs (id, sources, template, status, created_by)"
    " SELECT id, '{company}', 'standard', %s, 'tester' FROM batch"
)


def test_a_job_left_open_by_a_version_before_sql_067_reads_interrupted_after_the_upgrade(
    postgres_server: str, tmp_path: Path
) -> None:
    """A job whose process an older version's user killed, or that ran when the older version was stopped for the
    upgrade, stayed "processing" (or "queued") after the upgrade for good, as if Dagster ran it, and `leads jobs
    resume` refused it as still running. It reads interrupted now (no process holds its lock); one Dagster
    launched since the upgrade stays as recorded."""
    with database_before(postgres_server, 67, tmp_path) as url:
        with connect(url) as conn:
            for job, status in (("killed", "processing"), ("never-started", "queued"), ("done", "completed")):
                conn.execute(_JOB, (job, status))
        assert 116 in apply_migrations(url)
        with connect(url) as conn:
            conn.execute(_JOB, ("launched-by-dagster", "processing"))
            statuses = [
                enrichment.get_job(conn, job).status
                for job in ("killed", "never-started", "done", "launched-by-dagster")
            ]
        assert statuses == ["interrupted", "interrupted", "completed", "processing"]
