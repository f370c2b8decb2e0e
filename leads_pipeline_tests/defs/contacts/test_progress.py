"""A contact stage's progress on its job while it runs: what `leads jobs show` reads mid-run."""

from __future__ import annotations

from typing import Any

import pytest

from leads_pipeline.defs.contacts.assets import email_contacts, linkedin_profiles, phone_contacts
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, sandbox_resources


def _record_progress(database_url: str) -> None:
    """Every write of a job's progress row kept, in order: the states a `leads jobs show` could have read."""
    with connect(database_url) as conn:
        conn.execute(
            """CREATE TABLE progress_seen (n bigserial, source text, status text, processed int, total int,
                                           job_status text)"""
        )
        conn.execute(
            """CREATE FUNCTION note_progress() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 INSERT INTO progress_seen (source, status, processed, total, job_status)
                 SELECT NEW.source, NEW.status, NEW.processed, NEW.total, j.status
                 FROM enrichment_jobs j WHERE j.id = NEW.job_id;
                 RETURN NEW;
               END $$"""
        )
        conn.execute(
            """CREATE TRIGGER note_progress AFTER INSERT OR UPDATE ON enrichment_progress
               FOR EACH ROW EXECUTE FUNCTION note_progress()"""
        )


@pytest.mark.parametrize(
    ("asset", "source", "config"),
    [
        (email_contacts, "email", {"max_candidates": 1}),
        (phone_contacts, "phone", {"twilio": "never"}),
        (linkedin_profiles, "linkedin", {"download_photos": False}),
    ],
)
def test_a_running_contact_stage_shows_processing_and_the_leads_it_has_done(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, asset: Any, source: str, config: dict[str, Any]
) -> None:
    """Each chunk the stage wrote moves its progress, the source and its job reading processing; before, a contact
    stage read queued, 0 leads done, until its run ended, while its credits were already spent."""
    _record_progress(database_url)
    total = len(world_batch.truth)
    chunk = 20
    assert total > 2 * chunk
    resources = sandbox_resources(sandbox, database_url)
    materialize([asset], world_batch.batch_id, resources, {asset.key.path[-1]: {**config, "chunk_size": chunk}})
    with connect(database_url) as conn:
        seen = [
            (r["status"], r["processed"], r["job_status"])
            for r in conn.execute("SELECT * FROM progress_seen WHERE source = %s ORDER BY n", (source,))
        ]
    running = [(processed, job_status) for status, processed, job_status in seen if status == "processing"]
    assert [p for p, _ in running[:2]] == [0, chunk]  # fails before: no write between the job's creation and its end
    assert [p for p, _ in running] == sorted(p for p, _ in running) and running[-1][0] == total
    assert {job_status for _, job_status in running[1:]} == {"processing"}  # (the job starts with its source)
