"""Two Dagster runs of one batch's paid stage at once: a backfill over a partition that a launch from the UI, the
enrich-after-import sensor or a second backfill also runs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.contacts.assets import email_contacts, phone_contacts
from leads_pipeline.lib.clients.paid_verdicts import EmailVerdict
from leads_pipeline.lib.clients.twilio import LineTypeResult, TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import ZeroBounceResource
from leads_pipeline.lib.enrichment.jobs import MONTHLY_BUDGET_ENV
from leads_pipeline.lib.errors import INTERRUPTED
from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.generate import write_leads_csv
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, metadata, sandbox_resources
from leads_pipeline_tests.support import import_file, instance_of_a_run_at_once, materialize_batch, step_failure


def _a_lock_is_awaited(database_url: str) -> bool:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return bool(row and row["n"])


def _phone_stage_at_once(
    database_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, batches: tuple[str, str]
) -> tuple[list[dg.ExecuteInProcessResult], list[str], bool]:
    """Run ``phone_contacts`` for ``batches`` (the same batch twice, or two) at once, the second started while the
    first is in the middle of its lookups (each held until the second has asked Twilio a number of the first again
    or waits for a lock). Returns both runs' results in order, every billed lookup's number in order, and whether a
    number was looked up twice."""
    real_lookup = TwilioLookupResource.lookup
    looked_up: list[str] = []
    release, started, twice = threading.Event(), threading.Event(), threading.Event()

    def held_lookup(self: TwilioLookupResource, e164: str) -> LineTypeResult:
        if e164 in looked_up:  # only the other run asks for a number again
            twice.set()
        looked_up.append(e164)
        started.set()
        assert release.wait(60)
        return real_lookup(self, e164)

    monkeypatch.setattr(TwilioLookupResource, "lookup", held_lookup)
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "direct_dials": False}}
    results: dict[int, dg.ExecuteInProcessResult] = {}

    def run(nth: int) -> None:
        with instance_of_a_run_at_once() as instance:
            results[nth] = materialize_batch([phone_contacts], batches[nth], instance, resources, config)

    threads = [threading.Thread(target=run, args=(nth,)) for nth in (0, 1)]
    threads[0].start()
    assert started.wait(60)  # the first run is in the middle of its lookups
    threads[1].start()
    deadline = time.monotonic() + 60
    while not twice.is_set() and not _a_lock_is_awaited(database_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(120)
    return [results[0], results[1]], looked_up, twice.is_set()


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
    results, looked_up, twice = _phone_stage_at_once(
        database_url, sandbox, monkeypatch, (world_batch.batch_id, world_batch.batch_id)
    )
    waited = f"phone: dagster run {results[0].run_id} is working on batch {world_batch.batch_id}; waiting"
    assert waited in capfd.readouterr().err  # the second run's log says which run it waits for
    first, second = (metadata(result, "phone_contacts") for result in results)
    assert not twice and len(looked_up) == len(set(looked_up))
    assert first["twilio_lookups"] == len(looked_up) > 0 and second["twilio_lookups"] == 0
    # the second run bought nothing: it reports 0 spent, the batch's total as the first left it
    assert second["credits_this_source"] == 0.0 < first["credits_this_source"] == second["credits_source_total"]
    with connect(database_url) as conn:
        query = "SELECT details FROM lead_facts WHERE field = 'phone_line_type'"
        facts: list[dict[str, Any]] = list(conn.execute(query))
    paid = [f["details"]["number"] for f in facts if not f["details"].get("reused")]
    assert len(paid) == len(set(paid)) == first["twilio_lookups"]


def test_two_batches_of_the_same_leads_at_once_pay_for_each_lookup_once(
    database_url: str,
    sandbox: Sandbox,
    world_batch: WorldBatch,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Two `leads enrich` of the same leads at once (cron jobs that overlap) are two batches: their stages' locks
    differed, and each paid for the lookups neither found stored (500 leads of 50 companies: 76 credits, not 50).
    The second batch's stage now waits for the first's on the list they share, naming it, then reuses what it
    bought: every number is looked up once."""
    with connect(database_url) as conn:
        conn.execute("INSERT INTO batches (id, kind) VALUES ('again', 'selection')")
        conn.execute(
            "INSERT INTO batch_leads (batch_id, lead_id) SELECT 'again', lead_id FROM batch_members"
            " WHERE batch_id = %s",
            (world_batch.batch_id,),
        )
        list_id = conn.execute("SELECT id FROM lists").fetchone()
    assert list_id is not None
    results, looked_up, twice = _phone_stage_at_once(
        database_url, sandbox, monkeypatch, (world_batch.batch_id, "again")
    )
    first, second = (metadata(result, "phone_contacts") for result in results)
    assert not twice and len(looked_up) == len(set(looked_up))
    assert first["twilio_lookups"] == len(looked_up) > 0 and second["twilio_lookups"] == 0
    assert second["credits_this_source"] == 0.0 < first["credits_this_source"]
    run_id = results[0].run_id
    waited = f"phone: dagster run {run_id} is working on list {list_id['id']}, which leads of batch again are in"
    assert waited in capfd.readouterr().err  # the second run's log says which run it waits for, and why


def test_two_lists_of_the_same_numbers_at_once_pay_for_each_lookup_once(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs of two lists at once take no stage lock in common: each read a number both lists hold as not looked
    up yet and paid Twilio for it too. A job now waits for the other's lookup of a number it finds missing, then
    reuses the answer: the two jobs together look each number up once, as one job would."""
    with connect(database_url) as conn:
        create_list(conn, "second", owner="tester")
    import_file(database_url, tmp_path / "leads.csv", "second", batch_id="second-batch")  # world_batch's file
    results, looked_up, twice = _phone_stage_at_once(
        database_url, sandbox, monkeypatch, (world_batch.batch_id, "second-batch")
    )
    first, second = (metadata(result, "phone_contacts") for result in results)
    assert not twice and len(looked_up) == len(set(looked_up)) > 0
    assert first["twilio_lookups"] + second["twilio_lookups"] == len(looked_up)
    with connect(database_url) as conn:
        query = "SELECT batch_id, cost, details FROM lead_facts WHERE field = 'phone_line_type'"
        facts: list[dict[str, Any]] = list(conn.execute(query))
    paid = [f["details"]["number"] for f in facts if not f["details"].get("reused")]
    assert len(paid) == len(set(paid)) == len(looked_up)
    assert {f["batch_id"] for f in facts} == {world_batch.batch_id, "second-batch"}  # both lists' leads are typed
    charged = float(sum(f["cost"] for f in facts))
    assert charged > 0 and first["credits_this_source"] + second["credits_this_source"] == pytest.approx(charged)


def test_two_lists_of_the_same_addresses_at_once_pay_for_each_verdict_once(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs of two lists at once take no stage lock in common: each found an address both lists hold not verified
    yet and paid ZeroBounce for it too. A job now waits for the other's verdict on an address it finds missing,
    then reuses it: each verdict that costs credits is bought once between them."""
    with connect(database_url) as conn:
        create_list(conn, "second", owner="tester")
    import_file(database_url, tmp_path / "leads.csv", "second", batch_id="second-batch")  # world_batch's file
    real_verify = ZeroBounceResource.verify
    asked: list[str] = []
    release, started = threading.Event(), threading.Event()

    def held_verify(self: ZeroBounceResource, email: str) -> EmailVerdict:
        """Each call waits for ``release``: the first batch's run stays in the middle of its calls meanwhile."""
        asked.append(email)
        started.set()
        assert release.wait(60)
        return real_verify(self, email)

    monkeypatch.setattr(ZeroBounceResource, "verify", held_verify)
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    config = {"email_contacts": {"discover": False}}
    batches = (world_batch.batch_id, "second-batch")
    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(batch: str) -> None:
        with instance_of_a_run_at_once() as instance:
            results[batch] = materialize_batch([email_contacts], batch, instance, resources, config)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    threads[0].start()
    assert started.wait(60)  # the first batch's run is in the middle of its calls
    threads[1].start()
    deadline = time.monotonic() + 60
    while len(asked) == len(set(asked)) and not _a_lock_is_awaited(database_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(120)
    assert all(results[batch].success for batch in batches)
    with connect(database_url) as conn:
        query = "SELECT batch_id, cost, details FROM lead_facts WHERE field = 'email_status' AND source = 'zerobounce'"
        facts: list[dict[str, Any]] = list(conn.execute(query))
    charged = [f["details"]["email"] for f in facts if f["cost"] > 0]
    assert len(charged) == len(set(charged)) > 0
    assert {f["batch_id"] for f in facts} == set(batches)  # both lists' leads have their verdicts


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

    with connect(database_url, autocommit=True) as other_run:
        assert liveness.claim(other_run, liveness.ENRICHMENT_STAGE, world_batch.batch_id)
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


def test_runs_of_two_batches_at_once_spend_no_more_than_the_month_s_budget(
    database_url: str,
    sandbox: Sandbox,
    sandbox_world: World,
    world_batch: WorldBatch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each paid stage reads what is left of LEADS_MONTHLY_CREDITS when it starts and reserves its calls in its own
    process: two runs of a backfill at once (two batches) each spent the whole rest, twice the budget together.
    With a budget, the second run's stage now waits for the first's, then finds the month spent and fails saying so."""
    write_leads_csv(sandbox_world, tmp_path / "second.csv", tmp_path / "truth.json", {}, seed=12)
    with connect(database_url) as conn:
        create_list(conn, "second", owner="tester")
    import_file(database_url, tmp_path / "second.csv", "second", batch_id="second-batch")
    budget = 3
    monkeypatch.setenv(MONTHLY_BUDGET_ENV, str(budget))
    real_lookup = TwilioLookupResource.lookup
    in_flight, release = threading.Semaphore(0), threading.Event()

    def held_lookup(self: TwilioLookupResource, e164: str) -> LineTypeResult:
        in_flight.release()
        assert release.wait(60)
        return real_lookup(self, e164)

    monkeypatch.setattr(TwilioLookupResource, "lookup", held_lookup)
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "direct_dials": False, "workers": 1}}  # one lookup at a time

    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(batch: str) -> None:
        with instance_of_a_run_at_once() as instance:
            results[batch] = materialize_batch(
                [phone_contacts], batch, instance, resources, config, raise_on_error=False
            )

    threads = [threading.Thread(target=run, args=(batch,)) for batch in (world_batch.batch_id, "second-batch")]
    threads[0].start()
    assert in_flight.acquire(timeout=60)  # the first run holds its first lookup
    threads[1].start()
    deadline = time.monotonic() + 60
    while not _a_lock_is_awaited(database_url) and time.monotonic() < deadline:
        if in_flight.acquire(timeout=0.05):  # a second lookup in flight: the second run's
            break
    release.set()
    for thread in threads:
        thread.join(120)
    with connect(database_url) as conn:
        spent = conn.execute("SELECT coalesce(sum(credits), 0) AS n FROM credit_ledger").fetchone()
    assert spent is not None and 0 < spent["n"] <= budget
    assert results[world_batch.batch_id].success
    assert "monthly budget of 3 credits is used up (3 spent)" in step_failure(results["second-batch"])
