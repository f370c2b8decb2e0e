"""The enrichAfterImport sensor and the completion sensors (job settled, webhook posted once, never failing)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.defs.enrichment.assets import company_profiles
from leads_pipeline.defs.enrichment.jobs import JOB_TAG, run_tags
from leads_pipeline.defs.enrichment.sensors import (
    enrich_after_import_sensor,
    enrichment_canceled_sensor,
    enrichment_failed_sensor,
    enrichment_succeeded_sensor,
)
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.egress import ALLOW_PRIVATE_ENV
from leads_pipeline.lib.enrichment import notify
from leads_pipeline.lib.enrichment.jobs import estimate, summary
from leads_pipeline.lib.enrichment.notify import notify_completion
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import sandbox_resources as contact_resources
from leads_pipeline_tests.defs.enrichment.conftest import sandbox_resources
from leads_pipeline_tests.support import (
    Offline,
    Rebinding,
    Receiver,
    company_job,
    drip,
    enrich_after_import,
    import_file,
    materialize_batch,
    receiver,
)


def _evaluate(database_url: str, instance: dg.DagsterInstance) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, resources={"database": LeadsDatabase(database_url=database_url)}, definitions=defs
    )
    result = enrich_after_import_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_imports_into_lists_that_enrich_after_import_get_one_job(
    database_url: str, world_leads_csv: Path, instance: dg.DagsterInstance
) -> None:
    with connect(database_url) as conn:
        early = create_list(conn, "early", owner="tester")
        auto = create_list(conn, "auto", owner="tester")
    import_file(database_url, world_leads_csv, "early", batch_id="import-early")
    hook = "https://hooks.slack.com/services/T0/B0/SECRET"
    with connect(database_url) as conn:
        enrich_after_import(conn, early.id, priority="high", max_credits=5)  # after its import: not retroactively
        enrich_after_import(conn, auto.id, priority="high", max_credits=5, notify_url=hook)
    import_file(database_url, world_leads_csv, "auto", batch_id="import-auto")

    result = _evaluate(database_url, instance)

    [request] = result.run_requests or []
    assert request.partition_key == "import-auto"
    assert request.asset_selection == [dg.AssetKey("company_profiles")]
    assert request.tags["dagster/priority"] == "10" and request.tags[JOB_TAG] == "import-auto"
    with connect(database_url) as conn:
        job = store.get_job(conn, "import-auto")
    assert (job.template, job.max_credits, job.leads_queued, job.status) == ("basic", 5.0, 300, "queued")
    assert job.notify_url == hook
    with connect(database_url) as conn:  # the token is stored sealed, in the setting and in the job
        stored = conn.execute(
            "SELECT (SELECT notify_url::bytea FROM list_enrichment_settings WHERE list_id = %s) AS setting,"
            " (SELECT notify_url::bytea FROM enrichment_jobs WHERE id = 'import-auto') AS job",
            (auto.id,),
        ).fetchone()
    assert stored is not None and all(
        bytes(v).startswith(b"enc:") and b"SECRET" not in bytes(v) for v in stored.values()
    )
    with connect(database_url) as conn:
        store.start_source(conn, "import-auto", "company", 300)
    assert not _evaluate(database_url, instance).run_requests  # the job, once started, marks the import as handled


def test_an_import_whose_job_a_test_of_the_sensor_made_is_enriched_by_the_next_tick(
    database_url: str, world_leads_csv: Path, instance: dg.DagsterInstance
) -> None:
    """The UI's "Test sensor" evaluates the sensor without launching the runs it asks for: the job it made marked
    the import as handled, and no tick ever launched the enrichment (the job stayed queued, no run). A job still
    queued is asked for again, once, under the run key Dagster launches once."""
    with connect(database_url) as conn:
        auto = create_list(conn, "auto", owner="tester")
        enrich_after_import(conn, auto.id, max_credits=5)
    import_file(database_url, world_leads_csv, "auto", batch_id="import-auto")

    [tested] = _evaluate(database_url, instance).run_requests or []  # the dry run: nothing launched
    [request] = _evaluate(database_url, instance).run_requests or []

    assert request.run_key == tested.run_key == "enrich-import-auto" and request.partition_key == "import-auto"
    assert request.asset_selection == [dg.AssetKey("company_profiles")] and request.tags[JOB_TAG] == "import-auto"
    with connect(database_url) as conn:
        assert store.get_job(conn, "import-auto").status == "queued"


def test_an_import_the_months_budget_cannot_pay_for_is_not_launched_and_its_job_says_why(
    database_url: str, world_leads_csv: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads enrich` refused a paid launch once LEADS_MONTHLY_CREDITS was used up, but the sensor launched it: the
    job is made, failed with the refusal (`leads jobs ls/show`), nothing is launched and the tick says why."""
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "0")
    with connect(database_url) as conn:
        auto = create_list(conn, "auto", owner="tester")
        enrich_after_import(conn, auto.id, template="standard")
    import_file(database_url, world_leads_csv, "auto", batch_id="import-auto")

    result = _evaluate(database_url, instance)

    refusal = "the account's monthly budget of 0 credits is used up (0 spent); raise LEADS_MONTHLY_CREDITS"
    assert not result.run_requests
    assert result.skip_reason is not None and f"job import-auto not launched: {refusal}" in str(result.skip_reason)
    with connect(database_url) as conn:
        shown = summary(conn, "import-auto")
    assert shown["status"] == "failed" and shown["failure"].startswith(refusal) and shown["creditsUsed"] == 0
    assert [(s["source"], s["status"], s["note"]) for s in shown["sources"]] == [
        ("company", "failed", shown["failure"])
    ]
    assert _evaluate(database_url, instance).skip_reason is None  # handled: not refused again at every tick
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "100")
    with connect(database_url) as conn:
        enrich_after_import(conn, auto.id, template="standard")
    import_file(database_url, world_leads_csv, "auto", batch_id="import-paid")
    assert [r.partition_key for r in _evaluate(database_url, instance).run_requests or []] == ["import-paid"]


def test_a_ui_launch_the_months_budget_cannot_pay_for_fails_at_once_with_the_refusal(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run of company_profiles launched from the Dagster UI made its job without the check `leads enrich` makes,
    and ran every lead to a refused lookup: it fails at once with the same line, no job made, no credit spent."""
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "0")
    resources = sandbox_resources(database_url, sandbox)
    logged = len(sandbox.log.entries())

    result = materialize_batch([company_profiles], imported_batch, instance, resources, raise_on_error=False)

    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.error is not None
    assert failure.step_failure_data.error.message.strip().endswith(
        "the account's monthly budget of 0 credits is used up (0 spent); raise LEADS_MONTHLY_CREDITS or wait for "
        "next month (free sources still run with --template basic)"
    )
    assert len(sandbox.log.entries()) == logged  # no provider asked
    with connect(database_url) as conn:
        assert store.find_job(conn, imported_batch) is None
        assert store.credits_used(conn, imported_batch) == 0
    free = materialize_batch(
        [company_profiles], imported_batch, instance, resources, {"company_profiles": {"template": "basic"}}
    )
    assert free.success  # a free launch runs


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on 127.0.0.1, which only the sandbox's setting lets a webhook reach."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    with receiver() as (url, received):
        yield f"{url}/hook", received


def _job_run(
    database_url: str, sandbox: Sandbox, instance: dg.DagsterInstance, notify_url: str, *, fail: bool = False
) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    """Create a job for the imported batch and run company_profiles for it, tagged like the launcher does."""
    with connect(database_url) as conn:
        plan = estimate(conn, "import-world", ["company"], load_template("standard"), overwrite=False)
        job = company_job(conn, "import-world", notify_url=notify_url, template="standard", plan=plan)
    resources = sandbox_resources(database_url, sandbox)
    config = {"company_profiles": {"template": "no-such-template"} if fail else {}}
    result = materialize_batch(
        [company_profiles], job.id, instance, resources, config, tags=run_tags(job, "test"), raise_on_error=False
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    kind = dg.DagsterEventType.RUN_FAILURE if fail else dg.DagsterEventType.RUN_SUCCESS
    [record] = instance.get_records_for_run(result.run_id, of_type=kind).records
    assert record.event_log_entry.dagster_event is not None
    return run, record.event_log_entry.dagster_event


def _run_status_context(
    database_url: str, instance: dg.DagsterInstance, run: dg.DagsterRun, event: dg.DagsterEvent
) -> dg.RunStatusSensorContext:
    return dg.build_run_status_sensor_context(
        sensor_name="enrichment",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"database": LeadsDatabase(database_url=database_url)},
    )


def test_a_finished_run_settles_the_job_and_posts_the_summary_once(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    hook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = hook
    run, event = _job_run(database_url, sandbox, instance, url)
    context = _run_status_context(database_url, instance, run, event)

    enrichment_succeeded_sensor(context)
    enrichment_succeeded_sensor(context)  # the daemon may evaluate a run twice: one delivery

    [payload] = received
    assert payload["jobId"] == imported_batch and payload["status"] == "completed"
    assert payload["progress"]["processed"] == payload["progress"]["total"] == 300
    assert payload["creditsUsed"] > 0
    with connect(database_url) as conn:
        assert [d["delivered"] for d in store.deliveries(conn, imported_batch)] == [True]


def test_a_failed_run_is_recorded_and_an_unreachable_webhook_never_raises(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")  # tried, so that the connection error names the URL's path
    url = "http://127.0.0.1:9/services/T0/B0/PATHSECRET?token=secret"  # Slack's token is in the path
    run, event = _job_run(database_url, sandbox, instance, url, fail=True)
    context = _run_status_context(database_url, instance, run, event)

    enrichment_failed_sensor(context)

    with connect(database_url) as conn:
        job = store.get_job(conn, imported_batch)
        [delivery] = store.deliveries(conn, imported_batch)
    assert job.status == "failed" and job.failure
    assert not delivery["delivered"] and delivery["error"] and "secret" not in delivery["error"].lower()
    assert "/services/…" in delivery["error"]
    assert delivery["url"] == "http://127.0.0.1:9/services/…?…"


class _Redirect(Receiver):
    """Answers every POST with a 307 (which keeps the method and body) to ``target``."""

    target = ""

    def do_POST(self) -> None:
        self.record()
        self.send_response(307)
        self.send_header("Location", self.target)
        self.end_headers()


def test_a_webhook_reaches_no_private_address_and_follows_no_redirect(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any user picks --notify, and the POST leaves the machine holding the database: 127.0.0.1, 169.254.169.254
    and the like are refused outside the sandbox, and a public host cannot redirect the POST there."""
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    with (
        receiver() as (inner_url, target),
        receiver(_Redirect, target=f"{inner_url}/metadata") as (outer_url, redirected),
    ):
        run, event = _job_run(database_url, sandbox, instance, f"{outer_url}/hook?token=secret", fail=True)
        enrichment_failed_sensor(_run_status_context(database_url, instance, run, event))
        assert redirected == [] and target == []

        monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")  # as in the sandbox: the redirect is answered, not followed
        notify_completion(database_url, imported_batch, run.run_id)
        assert len(redirected) == 1 and target == []
    with connect(database_url) as conn:
        refused, answered = store.deliveries(conn, imported_batch)
    assert not refused["delivered"] and "'127.0.0.1' is not a public address" in refused["error"]
    assert "secret" not in refused["error"]
    assert not answered["delivered"] and answered["status_code"] == 307


def test_a_webhook_host_is_looked_up_once_and_its_checked_address_connected_to(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook's host was looked up twice per delivery, once for the check and once to connect, and the second
    answer (127.0.0.1 from a hostile DNS server) is not the one checked. One lookup now, connected to."""
    run, event = _job_run(database_url, sandbox, instance, "http://rebind.example:8080/hook", fail=True)
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    resolver = Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    network = Offline().install(monkeypatch)
    enrichment_failed_sensor(_run_status_context(database_url, instance, run, event))
    with connect(database_url) as conn:
        [delivery] = store.deliveries(conn, imported_batch)
    assert not delivery["delivered"] and "is offline in the tests" in delivery["error"]
    assert resolver.lookups == 1 and network.connects == [("93.184.215.14", 8080)]


class _Drip(Receiver):
    """Accepts the POST, then sends ``head`` at once and ``dripped`` a piece every ``every`` seconds."""

    head = b""
    dripped: tuple[bytes, ...] = ()
    every = 0.0

    def do_POST(self) -> None:
        self.record()
        self.wfile.write(self.head)
        drip(self.wfile, self.dripped, self.every)


def _notify_failure(
    database_url: str, sandbox: Sandbox, instance: dg.DagsterInstance, **drip_attributes: Any
) -> tuple[list[Any], float]:
    """Settle a failed run whose job notifies a ``_Drip`` receiver: what the receiver got, and how many seconds
    the sensor took."""
    with receiver(_Drip, **drip_attributes) as (url, received):
        run, event = _job_run(database_url, sandbox, instance, f"{url}/h", fail=True)
        started = time.monotonic()
        enrichment_failed_sensor(_run_status_context(database_url, instance, run, event))
        return received, time.monotonic() - started


def test_a_webhook_answer_is_not_read_so_a_slow_or_huge_body_cannot_hold_the_sensor(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    received, elapsed = _notify_failure(  # a byte of the body every half second
        database_url,
        sandbox,
        instance,
        head=b"HTTP/1.0 200 OK\r\nContent-Length: 30\r\n\r\n",
        dripped=(b"x",) * 30,
        every=0.5,
    )
    assert len(received) == 1 and elapsed < 8  # the 30-byte body takes 15 s
    with connect(database_url) as conn:
        assert [d["delivered"] for d in store.deliveries(conn, imported_batch)] == [True]


def test_a_webhook_answering_a_byte_at_a_time_is_given_up_at_the_deadline(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    monkeypatch.setattr(notify, "DEADLINE_S", 1.0)
    status_line = b"HTTP/1.0 200 OK\r\n\r\n"
    received, elapsed = _notify_failure(
        database_url, sandbox, instance, dripped=tuple(bytes([b]) for b in status_line), every=0.3
    )
    assert len(received) == 1 and elapsed < 4  # the status line takes 5.7 s
    with connect(database_url) as conn:
        [delivery] = store.deliveries(conn, imported_batch)
    assert not delivery["delivered"] and delivery["error"] == "no answer within 1 s"


def test_a_failed_run_dagster_retries_leaves_the_job_to_its_retry(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    instance: dg.DagsterInstance,
    hook: tuple[str, list[dict[str, Any]]],
) -> None:
    """The job was settled failed and "failed" posted (once per job) while the retry went on and completed it."""
    url, received = hook
    run, event = _job_run(database_url, sandbox, instance, url, fail=True)
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "true"})
    retried = instance.get_run_by_id(run.run_id)
    assert retried is not None

    enrichment_failed_sensor(_run_status_context(database_url, instance, retried, event))

    assert received == []
    with connect(database_url) as conn:
        assert store.get_job(conn, imported_batch).status not in ("failed", "partial", "completed")

    instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})  # the last attempt
    last = instance.get_run_by_id(run.run_id)
    assert last is not None
    enrichment_failed_sensor(_run_status_context(database_url, instance, last, event))
    [payload] = received
    assert payload["status"] == "failed"


def test_runs_of_other_assets_are_left_alone_and_ui_launches_are_settled(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    _, event = _job_run(database_url, sandbox, instance, "http://127.0.0.1:9/unused")
    import_run = dg.DagsterRun(job_name="__ASSET_JOB", run_id="import-run", tags={"dagster/partition": imported_batch})
    enrichment_succeeded_sensor(_run_status_context(database_url, instance, import_run, event))
    with connect(database_url) as conn:
        assert store.deliveries(conn, imported_batch) == []  # an import run does not settle the enrichment job

    ui_run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id="ui-run",
        tags={"dagster/partition": imported_batch},
        asset_selection=frozenset({dg.AssetKey("company_profiles")}),
    )
    enrichment_succeeded_sensor(_run_status_context(database_url, instance, ui_run, event))
    with connect(database_url) as conn:
        assert store.get_job(conn, imported_batch).status == "completed"
        assert len(store.deliveries(conn, imported_batch)) == 1


def test_a_ui_launch_of_email_and_company_records_both_sources_on_its_job(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """email_contacts and company_profiles launched together on an import batch made a job of "company" alone, so
    `leads jobs show` left the email work out; the job now lists every source the run materializes."""
    resources = {
        **contact_resources(sandbox, database_url, smtp_probing="off"),
        **sandbox_resources(database_url, sandbox),
    }
    config = {"email_contacts": {"verifier": "none", "discover": False, "people_search": False}}
    result = materialize_batch([email_contacts, company_profiles], imported_batch, instance, resources, config)
    with connect(database_url) as conn:
        job = store.get_job(conn, imported_batch)
        assert sorted(job.sources) == ["company", "email"]
        assert sorted(job.estimate["sources"]) == ["company", "email"]
    [record] = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    assert record.event_log_entry.dagster_event is not None
    ui_run = dg.DagsterRun(  # the run as the UI launches it: the global asset job with both assets selected
        job_name="__ASSET_JOB",
        run_id=result.run_id,
        tags={"dagster/partition": imported_batch},
        asset_selection=frozenset({email_contacts.key, company_profiles.key}),
    )
    enrichment_succeeded_sensor(
        _run_status_context(database_url, instance, ui_run, record.event_log_entry.dagster_event)
    )
    with connect(database_url) as conn:
        progress = {row["source"]: row["status"] for row in store.progress_rows(conn, imported_batch)}
    assert progress == {"company": "completed", "email": "completed"}


def _ui_run(instance: dg.DagsterInstance, run_id: str, batch: str) -> dg.DagsterRun:
    """A run of company_profiles on ``batch`` as the UI or a backfill launches it, started."""
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=run_id,
        tags={"dagster/partition": batch},
        asset_selection=frozenset({company_profiles.key}),
        status=dg.DagsterRunStatus.STARTED,
    )
    return instance.add_run(run)


def _cancel(database_url: str, instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Cancel ``run`` as terminating it from the UI does, and evaluate the sensor on its end."""
    instance.report_run_canceled(run)
    [record] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_CANCELED).records
    event = record.event_log_entry.dagster_event
    assert event is not None
    canceled = instance.get_run_by_id(run.run_id)
    assert canceled is not None
    enrichment_canceled_sensor(_run_status_context(database_url, instance, canceled, event))


def test_a_canceled_ui_run_leaves_its_job_interrupted_once_no_other_run_is_to_work_on_it(
    database_url: str, imported_batch: str, instance: dg.DagsterInstance
) -> None:
    """A run terminated from the UI, or canceled with its backfill, settled nothing: its job read "processing" for
    good and `leads jobs resume` refused it as still running. It reads interrupted now, so resume goes on with it;
    not while a second run of the job (another backfill's) is still to run it."""
    with connect(database_url) as conn:
        company_job(conn, imported_batch, notify_url=None)
    first, second = (_ui_run(instance, run_id, imported_batch) for run_id in ("first-run", "second-run"))

    _cancel(database_url, instance, first)
    with connect(database_url) as conn:
        assert store.get_job(conn, imported_batch).status == "queued"  # the second run is still to run it

    _cancel(database_url, instance, second)
    with connect(database_url) as conn:
        assert store.get_job(conn, imported_batch).status == "interrupted"
        assert store.deliveries(conn, imported_batch) == []  # nothing ended: no completion is posted
