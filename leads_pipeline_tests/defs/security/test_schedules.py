"""The daily retention schedule targets the retention job, which materializes ``retention_run``, when a policy is
set; the hourly CRM erasures schedule launches a run only when an erasure is pending."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from leads_pipeline.definitions import defs
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.security.assets import retention_run
from leads_pipeline.lib.store import retention
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.support import cli_environment


def test_retention_runs_daily_by_default() -> None:
    schedule = defs.resolve_schedule_def("retention_daily")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "retention_job"
    job = defs.resolve_job_def("retention_job")
    assert {node.name for node in job.graph.node_defs} == {"retention_run"}


@pytest.mark.integration
def test_the_retention_schedule_launches_a_run_only_while_a_policy_is_set(database_url: str) -> None:
    """Each day launched a run, with no policy set too: 365 runs a year that removed nothing, each writing an entry
    to the audit log, which nothing may delete. A day with no policy now skips; with one, the run queues behind the
    runs people launch (without ``dagster/priority`` it ranked as a run launched from the UI or by ``leads``)."""
    schedule = defs.resolve_schedule_def("retention_daily")
    resources = {"database": LeadsDatabase(database_url=database_url)}
    with dg.build_schedule_context(resources=resources) as context:
        skipped = schedule.evaluate_tick(context)
    assert skipped.run_requests == [] and skipped.skip_message == "no retention policy is set (leads retention set)"
    with connect(database_url) as conn:
        retention.set_policy(conn, "inbox", 30, list_id=None, actor="dpo")
    with dg.build_schedule_context(resources=resources) as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    assert request.tags["dagster/priority"] == BACKGROUND_PRIORITY["dagster/priority"] == "-10"


@pytest.mark.integration
def test_the_crm_erasures_schedule_launches_a_run_only_while_an_erasure_is_pending(database_url: str) -> None:
    """Every hour launched a run, an empty queue's too: 8,760 runs a year that did nothing (each a process loading
    the code, a materialization and 13 events in Dagster's storage). A tick with nothing pending now skips; the run
    of one with a pending erasure queues behind the runs people launch."""
    schedule = defs.resolve_schedule_def("crm_erasures_hourly")
    assert schedule.cron_schedule == "20 * * * *" and schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    def tick() -> dg.ScheduleExecutionData:
        resources = {"database": LeadsDatabase(database_url=database_url)}
        with dg.build_schedule_context(resources=resources) as context:
            return schedule.evaluate_tick(context)

    assert tick().run_requests == [] and tick().skip_message == "no CRM erasure is pending"
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO crm_erasures (connection, crm, remote_id, subject, requested_by, status)"
            " VALUES ('hubspot-main', 'hubspot', '101', 'lead 1', 'dpo', 'done'),"
            " ('hubspot-main', 'hubspot', '102', 'lead 2', 'dpo', 'failed')"
        )
    assert tick().run_requests == [], "done and refused requests are not sent again"
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO crm_erasures (connection, crm, remote_id, subject, requested_by)"
            " VALUES ('hubspot-main', 'hubspot', '103', 'lead 3', 'dpo')"
        )
    [request] = tick().run_requests or []
    assert request.tags["dagster/priority"] == BACKGROUND_PRIORITY["dagster/priority"] == "-10"


@pytest.mark.integration
def test_a_schedules_skipped_ticks_are_purged_after_a_week(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster keeps every schedule tick for good by default: the hourly erasures' skipped ticks, 8,760 a year,
    would pile up in the instance's storage. The project's dagster.yaml has the daemon purge them after 7 days
    (a sensor's skipped ticks already go then); ticks that launched a run or failed stay."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    with dg.DagsterInstance.get() as instance:
        settings = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
    assert settings[TickStatus.SKIPPED] == 7
    assert settings[TickStatus.SUCCESS] == settings[TickStatus.FAILURE] == -1


@pytest.mark.integration
def test_a_sensors_successful_ticks_are_purged_after_a_month(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster keeps a sensor's successful ticks for good: the run-status sensors record one for every run that
    finishes (an import a day, each score and enrichment), for as long as the instance lives. The project's
    dagster.yaml has the daemon purge them after 30 days; skipped ones still go after 7, failed ones stay."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    with dg.DagsterInstance.get() as instance:
        settings = instance.get_tick_retention_settings(InstigatorType.SENSOR)
    assert settings[TickStatus.SUCCESS] == 30
    assert settings[TickStatus.SKIPPED] == 7
    assert settings[TickStatus.FAILURE] == -1


@pytest.mark.integration
def test_a_retention_run_launched_with_no_policy_set_says_so(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Launched from the UI with no policy set, the run said only 'removed 0 leads, ... 0 log files', which reads as
    nothing being old enough yet."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"database": LeadsDatabase(database_url=database_url)}
    result = dg.materialize([retention_run], instance=instance, resources=resources)

    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.dagster_event is None]
    assert logged[0] == "no retention policy is set (leads retention set): nothing is removed"
    [materialization] = result.asset_materializations_for_node("retention_run")
    assert materialization.metadata["policies"].value == 0


@pytest.mark.integration
def test_a_dry_run_launched_from_the_ui_says_what_it_would_remove_in_one_tense(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launchpad's ``dry_run: true`` logged "would remove 0 leads, purged 0 fact payloads, cleared 0 import
    error values ...": a reader took the payloads for purged. The run's line is `leads retention apply`'s."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"database": LeadsDatabase(database_url=database_url)}
    config = dg.RunConfig(ops={"retention_run": {"config": {"dry_run": True}}})
    result = dg.materialize([retention_run], instance=instance, resources=resources, run_config=config)

    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.dagster_event is None]
    assert logged[1] == (
        "would remove 0 leads, 0 import error values, the column names of 0 imports, the previous values of 0"
        " updated leads, 0 fact payloads, 0 inbox files and 0 log files"
    )
