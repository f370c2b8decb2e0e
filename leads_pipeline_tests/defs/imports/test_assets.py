"""Materializing a batch partition of ``batch_leads``: the leads are written, the checks run, re-running is safe."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from typer.testing import CliRunner

from leads_pipeline.defs.imports import assets
from leads_pipeline.defs.imports.assets import UNMAPPED, ImportConfig, batch_leads
from leads_pipeline.defs.imports.checks import DUPLICATES_CHECK, SCHEMA_CHECK
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib import importer
from leads_pipeline.lib.csvfile import file_sha256
from leads_pipeline.lib.errors import PermanentError
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list, get_list
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import Leads, cli_environment, materialize_batch, step_failure


def _materialize(
    database_url: str,
    instance: dg.DagsterInstance,
    partition: str,
    config: dict[str, Any],
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    resources = {"database": LeadsDatabase(database_url=database_url)}
    return materialize_batch(
        [batch_leads], partition, instance, resources, {"batch_leads": config}, raise_on_error=raise_on_error
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node("batch_leads")
    return {key: value.value for key, value in materialization.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def _leads(database_url: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM leads ORDER BY id"))


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def test_materializing_a_batch_partition_writes_the_leads_and_passes_the_checks(
    database_url: str, instance: dg.DagsterInstance
) -> None:
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    config = {"path": str(DEMO_FILE), "list_name": "demo"}

    result = _materialize(database_url, instance, "import-demo-1", config)

    assert result.success
    leads = _leads(database_url)
    assert len(leads) == 33
    assert "ana.garcia@acme.es" in {lead["email"] for lead in leads}
    metadata = _metadata(result)
    assert (metadata["rows"], metadata["imported"], metadata["skipped"], metadata["rejected"]) == (36, 33, 1, 2)
    assert metadata["list"] == "demo"
    assert "| Email | email |" in metadata["mapping"]
    assert "expected 12 fields, found 13" in metadata["errors_preview"]
    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.dagster_event is None]
    # the run's log said "imported 36 of 36 rows" where 33 were imported
    assert logged == ["processed 36 of 36 rows", "33 imported, 0 updated, 1 skipped, 2 rejected; 1 warning"]
    checks = _checks(result)
    assert set(checks) == {SCHEMA_CHECK, DUPLICATES_CHECK}
    assert all(check.passed for check in checks.values())
    assert checks[SCHEMA_CHECK].metadata["leads_checked"].value == 33
    assert checks[SCHEMA_CHECK].metadata["failing_columns"].value == "none"
    assert checks[DUPLICATES_CHECK].metadata["duplicate_groups"].value == 0

    # Re-running the partition is safe: the completed batch is not imported again.
    again = _materialize(database_url, instance, "import-demo-1", config)
    assert again.success
    assert _leads(database_url) == leads
    assert _metadata(again)["import_id"] == metadata["import_id"]


def test_the_mapping_metadata_names_an_exports_bookkeeping_columns_left_out(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The columns `leads bulk export` writes for itself are left out of an import, not kept in custom: the
    metadata's mapping table showed them as "(custom)"; a column of the file's own mapped to null is kept there."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    exported = tmp_path / "export.csv"
    exported.write_text(
        "id,first_name,email,Owner,stage,score,created_at,list,tags\n1,Ana,ana@acme.es,Max,new,,2026-11-01,demo,\n"
    )

    result = _materialize(database_url, instance, "import-demo-1", {"path": str(exported), "list_name": "demo"})

    mapping = _metadata(result)["mapping"]
    for column in ("id", "stage", "score", "created_at", "list", "tags"):
        assert f"| {column} | (left out) |" in mapping
    assert "| Owner | (custom) |" in mapping
    assert "| email | email |" in mapping


def test_the_errors_preview_hides_a_person_s_values_the_owner_s_command_shows(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's event log is kept for ever and no erasure reaches it: the errors preview showed malformed phones
    and LinkedIn URLs in clear (masking finds only well-formed ones). A personal or custom column's value is hidden
    there; other fields' values still show; `leads imports errors` (the list's members) keeps every value."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "first_name,last_name,email,phone,linkedin_url,employee_count\n"
        "Di,Oz,di@acme.com,415-555-01o3,https://linkedin/in/di-oz-1,lots\n"
        "Bo,Li,bo.li@@acme.com,+14155550101,https://www.linkedin.com/in/bo-li,12\n"
        "Ed,Po,ed@acme.com,,linkedin.com/in/,\n"
    )

    result = _materialize(database_url, instance, "import-rows-1", {"path": str(rows), "list_name": "demo"})

    preview = _metadata(result)["errors_preview"]
    for value in ("01o3", "di-oz-1", "| linkedin.com/in/ |", "bo.li"):
        assert value not in preview
    assert "| 2 | phone | <value> |" in preview and "| 2 | employee_count | lots |" in preview
    shown = Leads(CliRunner()).ok("imports", "errors", str(_metadata(result)["import_id"]), "--csv")
    assert all(value in shown for value in ("415-555-01o3", "https://linkedin/in/di-oz-1", "bo.li@@acme.com"))


def test_a_preview_short_of_the_import_s_problems_says_how_many_and_where_they_all_are(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The preview holds the first 20 problems: under it, a file's hundreds of problems read as those 20."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    rows = tmp_path / "rows.csv"
    problems = "".join(f"Ann{i},,,\n" for i in range(23))  # 23 rejected: no way to reach them
    rows.write_text("first_name,email,phone,employee_count\nBo,bo@acme.com,,lots\n" + problems)  # 1 warning

    metadata = _metadata(
        _materialize(database_url, instance, "import-rows-1", {"path": str(rows), "list_name": "demo"})
    )

    preview = metadata["errors_preview"].splitlines()
    assert (metadata["rejected"], metadata["warnings"]) == (23, 1)
    assert len([line for line in preview if line.startswith("| ") and line[2].isdigit()]) == 20
    assert preview[-1] == (
        f"the first 20 of 24 problems: `leads imports errors {metadata['import_id']}` lists them all (`--csv` for a"
        " spreadsheet)"
    )


def test_a_preview_holding_every_problem_says_nothing_more(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    rows = tmp_path / "rows.csv"
    rows.write_text("first_name,email\nAnn,\nBo,bo@acme.com\n")

    metadata = _metadata(
        _materialize(database_url, instance, "import-rows-1", {"path": str(rows), "list_name": "demo"})
    )

    assert metadata["errors_preview"].splitlines()[-1].startswith("| 2 |  | <value> | expected a way to reach")


def test_the_duplicate_check_runs_beside_the_schema_check(
    database_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check waits here until the other has begun: one after the other, the duplicate check (one backend)
    ran alone at the end of the import's index builds."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    both_begun = threading.Barrier(2, timeout=20)
    real_schema, real_duplicates = assets.stored_leads_check, assets.no_duplicates_check

    def schema_once_both_began(*args: Any) -> dg.AssetCheckResult:
        both_begun.wait()
        return real_schema(*args)

    def duplicates_once_both_began(*args: Any) -> dg.AssetCheckResult:
        both_begun.wait()
        return real_duplicates(*args)

    monkeypatch.setattr(assets, "stored_leads_check", schema_once_both_began)
    monkeypatch.setattr(assets, "no_duplicates_check", duplicates_once_both_began)
    result = _materialize(database_url, instance, "import-demo-1", {"path": str(DEMO_FILE), "list_name": "demo"})
    checks = _checks(result)
    assert {name: check.passed for name, check in checks.items()} == {SCHEMA_CHECK: True, DUPLICATES_CHECK: True}
    assert checks[SCHEMA_CHECK].metadata["leads_checked"].value == 33


def test_config_mapping_overrides_and_create_list(database_url: str, instance: dg.DagsterInstance) -> None:
    """The sensor creates the list named by the drop folder; a mapping sends a column to custom or a field."""
    config = ImportConfig(
        path=str(DEMO_FILE),
        list_name="Dropped",
        create_list=True,
        mapping={"City": UNMAPPED, "Customer Id": "notes"},
    )
    result = _materialize(database_url, instance, "import-dropped-1", config.model_dump(exclude_none=True))
    assert result.success
    with connect(database_url) as conn:
        lead_list = get_list(conn, "dropped", None)
    ana = next(lead for lead in _leads(database_url) if lead["email"] == "ana.garcia@acme.es")
    assert ana["list_id"] == lead_list.id
    assert ana["city"] is None and ana["custom"]["City"] == "Madrid"
    assert ana["notes"] == "X2"


def test_a_bad_file_fails_the_run_with_its_one_line_error_and_no_retries(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """An empty file stays empty: the run fails with the one-line reason, and the asset's RetryPolicy (2 retries
    with backoff) is not spent on a PermanentError; only transient failures are worth retrying."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = _materialize(
        database_url, instance, "import-empty-1", {"path": str(empty), "list_name": "demo"}, raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("batch_leads")
    assert f"{empty}: the file is empty" in str(failure.error)
    assert _leads(database_url) == []
    retries = [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []


def test_a_chunk_size_below_one_row_is_refused_in_one_line_and_nothing_is_recorded(
    database_url: str, instance: dg.DagsterInstance
) -> None:
    """``chunk_rows`` from the launchpad (`leads import --chunk-rows` takes 100 at least): 0 failed the run with
    "range() arg 3 must not be zero" after two retries, and -5 imported no row of the file and reported the import
    completed ("0 imported"), the batch taken for done."""
    for partition, rows in (("import-zero-1", 0), ("import-negative-1", -5)):
        config = {"path": str(DEMO_FILE), "list_name": "demo", "create_list": True, "chunk_rows": rows}
        result = _materialize(database_url, instance, partition, config, raise_on_error=False)
        assert step_failure(result) == (
            f"chunk_rows must be a number of rows >= 1 (rows per committed chunk, default 50,000); got {rows}"
        )
        assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM imports").fetchone() == {"n": 0}
    assert _leads(database_url) == []


def test_a_file_saved_over_after_the_sensor_requested_it_is_refused_and_nothing_is_written(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The run imported whatever the file held when it started, into a batch named after the content the sensor
    saw; the sensor then requested the new content again, and that run reported every row skipped."""
    dropped = tmp_path / "leads.csv"
    dropped.write_bytes(b"Email\nann@example.com\n")
    seen = file_sha256(dropped)
    dropped.write_bytes(DEMO_FILE.read_bytes())
    config = {"path": str(dropped), "list_name": "demo", "create_list": True, "sha256": seen}
    result = _materialize(database_url, instance, "import-demo-replaced", config, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("batch_leads")
    assert f"{dropped}: the file changed after this import was requested (sha256 {seen[:10]}, now " in str(
        failure.error
    )
    assert _leads(database_url) == []
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM imports").fetchone() == {"n": 0}


def test_a_bad_file_run_on_the_project_instance_is_not_run_again_by_the_daemon(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's dagster.yaml retries runs (a run worker that died); a run whose asset failed was retried
    too, twice, whatever the asset said: a binary file dropped in the inbox failed three runs, a minute each."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with dg.DagsterInstance.get() as project_instance:
        assert project_instance.run_retries_enabled and project_instance.run_retries_max_retries == 2
        result = _materialize(
            database_url,
            project_instance,
            f"import-empty-{time.time_ns()}",
            {"path": str(empty), "list_name": "demo", "create_list": True},
            raise_on_error=False,
        )
        assert not result.success
        run = project_instance.get_run_by_id(result.run_id)
        assert run is not None
        assert run.tags.get("dagster/will_retry") == "false"


def test_a_run_for_a_partition_that_is_no_batch_is_refused_before_anything_is_written(
    database_url: str, instance: dg.DagsterInstance
) -> None:
    """``launchRun`` with a ``dagster/partition`` tag that no batch has: Dagster does not check the tag (``materialize``
    does, so the run is made here from the tag as the GraphQL API makes it), and the run imported the file into a
    batch of that name that the UI does not list. It now fails in one line, not retried, with nothing written."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    defs = dg.Definitions(assets=[batch_leads], resources={"database": LeadsDatabase(database_url=database_url)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config={"ops": {"batch_leads": {"config": {"path": str(DEMO_FILE), "list_name": "demo"}}}},
            instance=instance,
            tags={"dagster/partition": "import-made-up"},
            raise_on_error=False,
        )
    assert not result.success
    failure = step_failure(result)
    assert failure == "partition 'import-made-up' is not a batch: launch the run for one of the 'batches' partitions"
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    assert _leads(database_url) == []
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM batches").fetchone() == {"n": 0}


def test_an_interrupted_import_is_not_retried_and_stays_resumable(
    database_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on `leads import` (the step runs in the command's process) was retried by batch_leads' RetryPolicy,
    which Dagster applies to interrupts too: the import went on to the end of the file and the command said it
    completed. The interrupt now ends the run with the import's one line, not retried, resumable."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")

    def interrupting(log: dg.DagsterLogManager) -> importer.ProgressCallback:
        def progress(done: int, total: int) -> None:
            raise dg.DagsterExecutionInterruptedError  # what SIGINT raises in a step

        return progress

    monkeypatch.setattr(assets, "_progress_log", interrupting)
    config = {"path": str(DEMO_FILE), "list_name": "demo", "chunk_rows": 10}
    result = _materialize(database_url, instance, "import-demo-ctrl-c", config, raise_on_error=False)
    assert not result.success
    failure = step_failure(result)
    assert failure == importer.INTERRUPTED
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    assert result.dagster_run.status == dg.DagsterRunStatus.CANCELED
    assert len(_leads(database_url)) == 10
    with connect(database_url) as conn:
        assert conn.execute("SELECT status, processed_rows, dagster_run_id FROM imports").fetchone() == {
            "status": "failed",
            "processed_rows": 10,
            "dagster_run_id": result.run_id,  # recorded as it began the import
        }
    monkeypatch.undo()
    resumed = _materialize(database_url, instance, "import-demo-ctrl-c", config)
    assert resumed.success and len(_leads(database_url)) == 33
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n, status, dagster_run_id FROM imports GROUP BY 2, 3").fetchall() == [
            {"n": 1, "status": "completed", "dagster_run_id": resumed.run_id}  # the run that resumed it
        ]


def test_progress_is_logged_at_the_start_every_ten_seconds_and_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []

    class Log:
        def info(self, message: str) -> None:
            lines.append(message)

    clock = iter([100.0, 103.0, 109.9, 110.0, 111.0, 112.0])
    monkeypatch.setattr(assets.time, "monotonic", lambda: next(clock))
    log_progress = assets._progress_log(Log())  # type: ignore[arg-type]
    for done in (50_000, 100_000, 150_000, 200_000, 250_000, 300_000):
        log_progress(done, 300_000)
    assert lines == [
        "processed 50,000 of 300,000 rows",
        "processed 200,000 of 300,000 rows",
        "processed 300,000 of 300,000 rows",
    ]


def test_a_run_acting_as_a_user_needs_the_editor_role_on_the_list(
    database_url: str, instance: dg.DagsterInstance
) -> None:
    """A file dropped in the inbox by a user who is no editor of the list (its run carries the file's OS owner)
    was imported as the list's owner; it is now refused as `leads import` refuses it, and a new folder's list
    is created with that user as its owner."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    config = {"path": str(DEMO_FILE), "list_name": "demo", "create_list": True, "user": "mallory"}
    refused = _materialize(database_url, instance, "import-demo-m", config, raise_on_error=False)
    assert not refused.success and _leads(database_url) == []
    # "with you" read as the person in the UI: it names who the run acts as and how they may import
    assert step_failure(refused) == (
        "list 'demo': not found or not shared with you (the import acts as 'mallory', who owns the file dropped in"
        " the inbox or is the run config's user: a list's owner lets them import with `leads lists share demo"
        " mallory --role editor`, then the file saved again (`touch`) or this run re-executed imports it)"
    )
    unknown = {**config, "list_name": "demo 2", "create_list": False}
    assert step_failure(_materialize(database_url, instance, "import-demo-u", unknown, raise_on_error=False)) == (
        "list 'demo 2': not found or not shared with you (the import acts as 'mallory', who owns the file dropped"
        " in the inbox or is the run config's user: a list's owner lets them import with `leads lists share"
        " 'demo 2' mallory --role editor`, then the file saved again (`touch`) or this run re-executed imports it)"
    ), "an unknown list's refusal is the same, naming nothing more"
    with connect(database_url) as conn:
        access.grant(conn, get_list(conn, "demo", None).id, "mallory", "viewer", granted_by="tester")
    viewer = _materialize(database_url, instance, "import-demo-m", config, raise_on_error=False)
    failure = step_failure(viewer)
    assert "importing into it needs the role editor or owner" in failure

    fresh = _materialize(database_url, instance, "import-fresh-m", {**config, "list_name": "fresh"})
    assert fresh.success and len(_leads(database_url)) == 33
    with connect(database_url) as conn:
        assert get_list(conn, "fresh", None).owner == "mallory"


def test_a_materialization_without_a_file_reports_or_resumes_the_batch_s_recorded_import(
    database_url: str, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backfill of batch_leads over its partitions from the Dagster UI (or a click on Materialize) has no file
    to give: every run of it failed on the config ('Missing required config entry "ops"'). The batch's recorded
    import is now reported, or resumed with its own file, list, mapping and options; a batch that is no import
    fails with what to give."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    merge_chunk = importer.store.merge_chunk
    calls = 0

    def fail_second_chunk(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise PermanentError("the database went away")
        return merge_chunk(*args, **kwargs)

    monkeypatch.setattr(importer.store, "merge_chunk", fail_second_chunk)
    config = {"path": str(DEMO_FILE), "list_name": "demo", "chunk_rows": 10, "mapping": {"City": UNMAPPED}}
    stopped = _materialize(database_url, instance, "import-demo-r", config, raise_on_error=False)
    assert not stopped.success and 0 < len(_leads(database_url)) < 33
    monkeypatch.setattr(importer.store, "merge_chunk", merge_chunk)

    resumed = _materialize(database_url, instance, "import-demo-r", {})
    assert resumed.success
    leads = _leads(database_url)
    assert len(leads) == 33 and len({lead["email"] for lead in leads}) == 33
    assert all(lead["city"] is None for lead in leads)  # the recorded mapping, not a new suggestion
    metadata = _metadata(resumed)
    assert (metadata["list"], metadata["file"], metadata["imported"]) == ("demo", str(DEMO_FILE), 33)

    # Reported again as it is, under its own file whatever path is given; no lead is written twice.
    other = tmp_path / "other.csv"
    other.write_bytes(b"Email\nann@example.com\n")
    again = _materialize(database_url, instance, "import-demo-r", {"path": str(other), "list_name": "demo"})
    assert _metadata(again)["file"] == str(DEMO_FILE) and _metadata(again)["import_id"] == metadata["import_id"]
    assert _leads(database_url) == leads

    no_import = _materialize(database_url, instance, "rescore-20261130-v1", {}, raise_on_error=False)
    failure = step_failure(no_import)
    assert failure.startswith("batch rescore-20261130-v1 has no import to report or resume")
    half = _materialize(database_url, instance, "import-demo-r", {"list_name": "demo"}, raise_on_error=False)
    failure = step_failure(half)
    assert failure.startswith("give both path and list_name")


def test_an_import_launched_without_default_region_reads_numbers_in_the_configured_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run launched from the Dagster UI without ``default_region`` read national numbers as US ones: it takes
    LEADS_DEFAULT_REGION now (US when unset), and a value in the run config still wins."""
    launched = ImportConfig(path=str(DEMO_FILE), list_name="fair")
    assert launched.options().default_region == "US"
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "GB")
    assert launched.options().default_region == "GB"
    assert ImportConfig(path=str(DEMO_FILE), list_name="fair", default_region="DE").options().default_region == "DE"
