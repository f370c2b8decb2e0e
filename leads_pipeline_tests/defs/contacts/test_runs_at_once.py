"""Two Dagster runs of one batch's paid stage at once: a backfill over a partition that a launch from the UI, the
enrich-after-import sensor or a second backfill also runs."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.contacts.assets import phone_contacts
from leads_pipeline.lib.clients.twilio import LineTypeResult, TwilioLookupResource
from leads_pipeline.lib.errors import INTERRUPTED
from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources
from leads_pipeline_tests.support import materialize_batch, step_failure


def _a_lock_is_awaited(database_url: str) -> bool:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return bool(row and row["n"])


def test_a_second_run_of_a_batch_waits_for_the_first_and_pays_nothing_again(
    database_url: str,
    sandbox: Sandbox,
    world_batch: WorldBatch,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Both runs read the batch's numbers as not looked up yet and paid Twilio for each of them twice (credits
    counted twice, two facts per number). The second run now waits for the first's stage to end, naming it, then
    finds every answer stored: it looks nothing up."""
    real_lookup = TwilioLookupResource.lookup
    looked_up: list[str] = []  # every billed lookup's number, in order
    release, started, twice = threading.Event(), threading.Event(), threading.Event()

    def held_lookup(self: TwilioLookupResource, e164: str) -> LineTypeResult:
        """Each lookup waits for ``release``: the first run stays in the middle of its lookups meanwhile."""
        if e164 in looked_up:  # only another run asks for a number of the batch again
            twice.set()
        looked_up.append(e164)
        started.set()
        assert release.wait(60)
        return real_lookup(self, e164)

    monkeypatch.setattr(TwilioLookupResource, "lookup", held_lookup)
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "direct_dials": False}}
    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(name: str) -> None:
        results[name] = materialize([phone_contacts], world_batch.batch_id, resources, config)

    threads = {name: threading.Thread(target=run, args=(name,)) for name in ("first", "second")}
    threads["first"].start()
    assert started.wait(60)  # the first run is in the middle of its lookups
    threads["second"].start()
    deadline = time.monotonic() + 60
    while not twice.is_set() and not _a_lock_is_awaited(database_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for thread in threads.values():
        thread.join(120)
    waited = f"phone: dagster run {results['first'].run_id} is working on batch {world_batch.batch_id}; waiting"
    assert waited in capfd.readouterr().err  # the second run's log says which run it waits for
    first, second = (metadata(results[name], "phone_contacts") for name in ("first", "second"))
    assert not twice.is_set() and len(looked_up) == len(set(looked_up))
    assert first["twilio_lookups"] == len(looked_up) > 0 and second["twilio_lookups"] == 0
    assert second["credits_used"] == first["credits_used"] > 0
    with connect(database_url) as conn:
        query = "SELECT details FROM lead_facts WHERE field = 'phone_line_type'"
        facts: list[dict[str, Any]] = list(conn.execute(query))
    paid = [f["details"]["number"] for f in facts if not f["details"].get("reused")]
    assert len(paid) == len(set(paid)) == first["twilio_lookups"]


def test_a_run_waiting_for_another_ends_at_once_when_terminated(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """Terminating from the UI a run that waits for another run's stage (the code server interrupts its process)
    ends its wait: the step fails with the one line of an interrupt, having looked nothing up, and the lock is
    the other run's alone, as before."""

    def interrupt_once_waiting() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _a_lock_is_awaited(database_url):
                os.kill(os.getpid(), signal.SIGINT)  # only the main thread, running the step, takes it
                return
            time.sleep(0.05)

    key = f"{world_batch.batch_id}/phone"
    with connect(database_url, autocommit=True) as other_run:
        assert liveness.claim(other_run, liveness.ENRICHMENT_STAGE, key)
        interrupter = threading.Thread(target=interrupt_once_waiting)
        interrupter.start()
        resources = sandbox_resources(sandbox, database_url)
        instance = dg.DagsterInstance.ephemeral()
        result = materialize_batch([phone_contacts], world_batch.batch_id, instance, resources, raise_on_error=False)
        interrupter.join()
        assert step_failure(result) == INTERRUPTED
        assert not _a_lock_is_awaited(database_url)
        with connect(database_url) as conn:
            assert list(conn.execute("SELECT 1 FROM lead_facts WHERE field = 'phone_line_type'")) == []
