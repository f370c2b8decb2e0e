"""The drop-folder sensor: one run per new, stable file; never twice for the same content in the same list."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.imports import sensors
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.killed import WILL_RETRY_TAG
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.csvfile import file_sha256
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file


class Inbox:
    """Ticks the sensor against a temporary inbox, carrying the cursor from tick to tick like the daemon."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.database = LeadsDatabase(database_url=database_url)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def drop(self, list_name: str, name: str, source: Path = DEMO_FILE) -> Path:
        target = self.folder / list_name / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            cursor=self.cursor, resources={"database": self.database}, instance=self.instance
        )
        result = inbox_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        return result

    def state(self) -> dict[str, Any]:
        """The state the cursor names."""
        assert self.cursor is not None
        with connect(self.database.database_url) as conn:
            state = store.inbox_sensor_state(conn, json.loads(self.cursor)["generation"])
        assert state is not None
        return state


@pytest.fixture
def inbox(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Inbox:
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("LEADS_INBOX", str(folder))
    return Inbox(folder, database_url)


def _run_config(request: dg.RunRequest) -> dict[str, Any]:
    config = request.run_config
    as_dict = config.to_config_dict() if isinstance(config, dg.RunConfig) else dict(config)
    return as_dict["ops"]["batch_leads"]["config"]


def _added_partitions(result: dg.SensorResult) -> list[str]:
    added: list[str] = []
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        assert request.partitions_def_name == BATCHES
        added.extend(request.partition_keys)
    return added


def test_the_cursor_stays_small_however_many_files_the_inbox_keeps(inbox: Inbox, database_url: str) -> None:
    """The cursor held every file's size, times, hash and request, and Dagster stores the cursor with every tick
    (every 10 s, skipped ticks kept 7 days): 200 files left in the inbox took 36 KB a tick in job_ticks, ~2 GB.
    It names a generation of the state in the database now; an unchanged inbox writes none, and a tick evaluated
    again from the cursor before it (one Dagster never recorded) asks for the same runs."""
    (inbox.folder / "Spring Fair").mkdir()
    for i in range(40):
        (inbox.folder / "Spring Fair" / f"leads-{i:03}.csv").write_text(f"email\nlead{i}@example.com\n")
    inbox.tick()
    started_from = inbox.cursor
    requested = inbox.tick().run_requests or []
    assert len(requested) == 40
    assert len(inbox.cursor or "") < 40 and len(inbox.state()["requested"]) == 40
    settled = inbox.cursor
    assert inbox.tick().run_requests == [] and inbox.cursor == settled, "nothing new: the same generation"

    inbox.cursor = started_from  # the daemon died before recording the tick that asked for the runs
    assert [r.run_key for r in inbox.tick().run_requests or []] == [r.run_key for r in requested]
    (inbox.folder / "Spring Fair" / "later.csv").write_text("email\nlater@example.com\n")
    inbox.tick()  # a tick that writes deletes the generations before the one it started from
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM inbox_sensor_state").fetchone() == {"n": 2}

    legacy = {"seen": inbox.state()["seen"], "hashed": {}, "requested": {}, "resumed": []}
    inbox.cursor = json.dumps(legacy)  # a cursor of an earlier version holds the state itself
    assert len(inbox.tick().run_requests or []) == 41
    assert len(inbox.cursor or "") < 40


def test_a_test_evaluation_ending_after_a_real_tick_leaves_the_real_ticks_state(inbox: Inbox) -> None:
    """The UI's "test sensor" evaluates a tick from the recorded cursor, and stores a state nobody records. Ending
    after a real tick, it deleted the real tick's state: the next tick found its cursor's generation gone and
    started afresh, every file in the inbox unseen again."""
    inbox.drop("Spring Fair", "leads.csv")
    inbox.tick()
    before = inbox.cursor
    assert len(inbox.tick().run_requests or []) == 1
    recorded = inbox.cursor
    evaluated = Inbox(inbox.folder, inbox.database.database_url)
    evaluated.cursor = before  # the test evaluation started from the cursor the real tick started from
    evaluated.tick()
    assert inbox.tick().run_requests == [] and inbox.cursor == recorded, "the real state, unchanged"
    assert inbox.state()["requested"]


def test_a_dropped_file_is_requested_once_it_stops_growing_and_only_once(inbox: Inbox) -> None:
    path = inbox.drop("Spring Fair", "leads.csv")

    first = inbox.tick()
    assert first.run_requests == [], "a new file may still be copying: wait a tick"
    assert _added_partitions(first) == []
    assert str(path) in inbox.state()["seen"]

    second = inbox.tick()
    [request] = second.run_requests or []
    assert request.partition_key is not None and request.partition_key.startswith("import-spring-fair-")
    assert _added_partitions(second) == [request.partition_key]
    config = _run_config(request)
    assert config["path"] == str(path)
    assert config["list_name"] == "Spring Fair"
    assert config["create_list"] is True
    assert config["sha256"] == file_sha256(path), "the run refuses other content than the sensor saw"
    assert request.tags["leads/list"] == "Spring Fair"
    # below a run launched from the UI (no tag: 0), which 50 dropped files queued behind them for ~30 min
    assert request.tags["dagster/priority"] == "-10"

    third = inbox.tick()
    assert third.run_requests == []
    assert _added_partitions(third) == []


def test_a_dropped_file_is_imported_with_the_configured_default_region(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensor gave no default region, so a UK team's `020 7946 0958` without a country was read as a US
    number and kept raw with a warning: its runs carry LEADS_DEFAULT_REGION now (US when unset)."""
    inbox.drop("fair", "leads.csv")
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "GB")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert _run_config(request)["default_region"] == "GB"

    monkeypatch.delenv("LEADS_DEFAULT_REGION")
    inbox.drop("webinar", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert _run_config(request)["default_region"] == "US"


def test_a_default_region_that_is_no_region_fails_the_first_tick(inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """LEADS_DEFAULT_REGION=XX failed a tick only once a dropped file was stable and requested: the daemon ran
    clean until someone dropped a file. Every tick refuses it now, an empty inbox's too, in the line the
    commands say; then a corrected value imports the file."""
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "XX")
    with pytest.raises(ConfigurationError) as refused:
        inbox.tick()
    assert str(refused.value).startswith("LEADS_DEFAULT_REGION='XX' is not a country code")
    assert "\n" not in str(refused.value)

    monkeypatch.setenv("LEADS_DEFAULT_REGION", "de")
    inbox.drop("fair", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert _run_config(request)["default_region"] == "DE"


def test_a_file_left_in_the_inbox_is_hashed_once_until_it_changes(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []

    def counting_sha256(path: Path) -> str:
        hashed.append(path)
        return file_sha256(path)

    monkeypatch.setattr(sensors, "file_sha256", counting_sha256)
    path = inbox.drop("fair", "leads.csv")
    inbox.drop("fair", "leads (copy).csv")
    for _ in range(5):
        inbox.tick()
    assert sorted(p.name for p in hashed) == ["leads (copy).csv", "leads.csv"]

    path.write_bytes(path.read_bytes() + b"\n")
    inbox.tick()
    inbox.tick()
    assert [p.name for p in hashed[2:]] == ["leads.csv"], "saved again: hashed again"


def test_a_growing_file_waits_until_it_is_stable(inbox: Inbox) -> None:
    path = inbox.drop("fair", "leads.csv")
    assert inbox.tick().run_requests == []
    with path.open("a", encoding="utf-8") as handle:
        handle.write("99,X9,Late,Row,Late Inc,City,Chile,,,late@example.cl,2021-01-01,http://late.cl/\n")
    assert inbox.tick().run_requests == [], "the file grew since the last tick"
    assert len(inbox.tick().run_requests or []) == 1


def test_a_copy_under_another_name_in_the_same_list_is_not_requested_again(inbox: Inbox) -> None:
    inbox.drop("fair", "leads.csv")
    inbox.tick()
    assert len(inbox.tick().run_requests or []) == 1

    inbox.drop("fair", "leads (copy).csv")
    assert inbox.tick().run_requests == []
    assert inbox.tick().run_requests == [], "same content, same list: already requested"


def test_the_same_file_in_two_lists_is_requested_for_each(inbox: Inbox) -> None:
    inbox.drop("fair", "leads.csv")
    inbox.drop("webinar", "leads.csv")
    inbox.tick()
    requests = inbox.tick().run_requests or []
    assert sorted(_run_config(r)["list_name"] for r in requests) == ["fair", "webinar"]
    assert len({r.partition_key for r in requests}) == 2


def test_the_same_file_in_two_lists_with_the_same_slug_gets_a_batch_for_each(inbox: Inbox) -> None:
    """Both names slug to "list": one batch for both imported the file into one list and reported it for both."""
    inbox.drop("Продажи", "leads.csv")
    inbox.drop("Маркетинг", "leads.csv")
    inbox.tick()
    requests = inbox.tick().run_requests or []
    assert sorted(_run_config(r)["list_name"] for r in requests) == ["Маркетинг", "Продажи"]
    assert len({r.partition_key for r in requests}) == 2


def test_a_file_already_imported_into_the_list_is_skipped(inbox: Inbox, database_url: str) -> None:
    with connect(database_url) as conn:
        create_list(conn, "customers", owner="tester")
    import_file(database_url, DEMO_FILE, "customers", batch_id="batch-earlier")
    inbox.drop("customers", "again.csv")
    inbox.drop("prospects", "again.csv")  # not imported into this list yet

    assert inbox.tick().run_requests == []
    requests = inbox.tick().run_requests or []
    assert [_run_config(r)["list_name"] for r in requests] == ["prospects"]


def test_a_file_dropped_again_after_its_import_failed_is_requested_again(inbox: Inbox) -> None:
    """The run failed (the file was gone when it started, the database was down): the same content was never
    requested again, whatever the user did, since the cursor and the run key remembered it for good."""
    path = inbox.drop("fair", "leads.csv")
    inbox.tick()
    [first] = inbox.tick().run_requests or []
    path.unlink()
    assert inbox.tick().run_requests == []
    inbox.drop("fair", "leads.csv")
    assert inbox.tick().run_requests == [], "dropped again: wait until it is stable"
    [again] = inbox.tick().run_requests or []
    assert _run_config(again)["list_name"] == "fair"
    assert again.run_key != first.run_key, "Dagster skips a request whose run key it has seen"
    assert inbox.tick().run_requests == []

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))  # saved again in place (touch)
    inbox.tick()
    assert len(inbox.tick().run_requests or []) == 1


def test_a_file_whose_import_is_running_is_not_requested_again_when_the_cursor_forgot_it(inbox: Inbox) -> None:
    """A cursor of an earlier version, or a ctime changed by chmod or a backup tool mid-import, forgets what was
    requested: the file was requested again and a second import of its batch ran beside the first."""
    path = inbox.drop("fair", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert request.partition_key is not None
    run_tags = {**request.tags, "dagster/partition": request.partition_key}
    inbox.instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", tags=run_tags, status=dg.DagsterRunStatus.STARTED))
    os.chmod(path, 0o600)  # a new ctime: the cursor's request no longer stands, and a new batch key is another key
    assert [inbox.tick().run_requests, inbox.tick().run_requests] == [[], []]
    inbox.cursor = None  # a cursor the sensor cannot read
    assert [inbox.tick().run_requests, inbox.tick().run_requests] == [[], []]


def test_a_file_dropped_again_after_its_import_completed_is_still_skipped(inbox: Inbox, database_url: str) -> None:
    with connect(database_url) as conn:
        create_list(conn, "customers", owner="tester")
    path = inbox.drop("customers", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert request.partition_key is not None
    import_file(database_url, path, "customers", batch_id=request.partition_key)
    path.unlink()
    inbox.tick()
    inbox.drop("customers", "leads.csv")
    inbox.tick()
    assert inbox.tick().run_requests == []


@pytest.mark.parametrize("status", ["failed", "processing"])
def test_a_failed_or_interrupted_import_of_the_file_is_resumed_in_its_own_batch(
    inbox: Inbox, database_url: str, status: str
) -> None:
    """As ``leads import`` does: the rows the failed import merged and the rest of the file end up in one import.
    One left processing by a killed process (no process holds its lock: interrupted) was never resumed: the file
    dropped again was imported as a new batch beside it."""
    with connect(database_url) as conn:
        create_list(conn, "customers", owner="tester")
    import_file(database_url, DEMO_FILE, "customers", batch_id="import-customers-stopped")
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET status = %s WHERE batch_id = 'import-customers-stopped'", (status,))
    inbox.drop("customers", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert request.partition_key == "import-customers-stopped"


def test_the_killed_run_of_an_interrupted_import_is_reported_failed_and_the_file_dropped_again_resumes_it(
    inbox: Inbox, database_url: str
) -> None:
    """A killed import's Dagster run stays started (its process never wrote its end), and a file whose run is
    recorded running is skipped: the file dropped again or touched was not imported until the run was terminated
    from the UI. Its import interrupted (no process holds its lock), the run is reported failed, and the file
    resumes the import; a run whose import a process holds is left running. Dagster's run retries (dagster.yaml)
    do not run it again: they resumed the import beside the run the sensor requests, one refused "still running"."""
    inbox.instance = dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": True, "max_retries": 2}})
    import_id, path, tags = _imported_and_dropped_again(inbox, database_url)
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        tags={**tags, "dagster/partition": "import-customers-killed"},
        status=dg.DagsterRunStatus.STARTED,
    )
    inbox.instance.add_run(run)

    with connect(database_url, autocommit=True) as keeper:
        keeper.execute("UPDATE imports SET status = 'processing' WHERE id = %s", (import_id,))
        store.claim_import(keeper, import_id, run.run_id)  # its process still runs it
        inbox.tick()
        assert inbox.tick().run_requests == []
        assert _statuses(inbox, [run]) == [dg.DagsterRunStatus.STARTED]
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))  # its process is gone; the file touched
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert request.partition_key == "import-customers-killed"
    assert _statuses(inbox, [run]) == [dg.DagsterRunStatus.FAILURE]
    reread = inbox.instance.get_run_by_id(run.run_id)
    assert reread is not None and reread.tags[WILL_RETRY_TAG] == "false"


def _imported_and_dropped_again(inbox: Inbox, database_url: str) -> tuple[int, Path, dict[str, str]]:
    """The demo file imported into "customers" (batch import-customers-killed) and dropped in the inbox again: the
    import's id, the dropped file and the tags of the drop folder's runs importing it."""
    with connect(database_url) as conn:
        create_list(conn, "customers", owner="tester")
    import_id = int(import_file(database_url, DEMO_FILE, "customers", batch_id="import-customers-killed")["importId"])
    path = inbox.drop("customers", "leads.csv")
    return import_id, path, {"leads/source": "inbox", "leads/list": "customers", "leads/sha256": file_sha256(path)}


def _interrupted_import_and_runs(inbox: Inbox, database_url: str, *started_ago: float) -> list[dg.DagsterRun]:
    """An import of the dropped file, interrupted (processing, its lock free) after the first run recorded itself
    on it (the killed run), and runs importing the file started ``started_ago`` seconds ago."""
    import_id, _, tags = _imported_and_dropped_again(inbox, database_url)
    runs = []
    for ago in started_ago:
        run = dg.DagsterRun(job_name="__ASSET_JOB", tags={**tags, "dagster/partition": "import-customers-killed"})
        inbox.instance.add_run(run)
        start = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name)
        inbox.instance.report_dagster_event(start, run.run_id, timestamp=time.time() - ago)
        runs.append(run)
    with connect(database_url, autocommit=True) as keeper:
        keeper.execute("UPDATE imports SET status = 'processing' WHERE id = %s", (import_id,))
        store.claim_import(keeper, import_id, runs[0].run_id)
    return runs


def _statuses(inbox: Inbox, runs: list[dg.DagsterRun]) -> list[dg.DagsterRunStatus]:
    reread = inbox.instance.get_runs(dg.RunsFilter(run_ids=[run.run_id for run in runs]))
    status = {run.run_id: run.status for run in reread}
    return [status[run.run_id] for run in runs]


def test_a_run_resuming_an_interrupted_import_before_it_takes_the_lock_is_not_taken_for_the_killed_one(
    inbox: Inbox, database_url: str
) -> None:
    """Dagster marks the drop folder's run started before the run reaches the import's lock. The file touched in
    that moment had the new run, taken for the killed one (both tagged with the file's list and content), reported
    failed while it went on to import the file, and another one requested, which was refused "still running". The
    run recorded on the import is the killed one; a run started since is left to reach the lock."""
    killed, resuming = _interrupted_import_and_runs(inbox, database_url, 60.0, 1.0)
    inbox.tick()
    assert inbox.tick().run_requests == [], "the resuming run imports the file"
    assert _statuses(inbox, [killed, resuming]) == [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED]


def test_a_run_that_never_recorded_itself_on_the_interrupted_import_is_ended_once_long_started(
    inbox: Inbox, database_url: str
) -> None:
    """A run killed before it took the import's lock (or one of the code from before sql/126) never recorded itself
    on the import: it had long reached the lock if it were alive."""
    killed, died_early, late = _interrupted_import_and_runs(
        inbox, database_url, 60.0, sensors.UNRECORDED_GRACE_S + 60, sensors.UNRECORDED_GRACE_S - 60
    )
    inbox.tick()
    assert inbox.tick().run_requests == []
    assert _statuses(inbox, [killed, died_early, late]) == [
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.STARTED,
    ]


def test_a_file_whose_import_runs_in_a_process_is_not_resumed_beside_it(inbox: Inbox, database_url: str) -> None:
    """An import still running (its process holds its lock) is not requested again: the run would be refused."""
    with connect(database_url) as conn:
        create_list(conn, "customers", owner="tester")
    status = import_file(database_url, DEMO_FILE, "customers", batch_id="import-customers-running")
    with connect(database_url, autocommit=True) as keeper:
        keeper.execute("UPDATE imports SET status = 'processing' WHERE id = %s", (int(status["importId"]),))
        store.claim_import(keeper, int(status["importId"]))
        inbox.drop("customers", "leads.csv")
        inbox.tick()
        [request] = inbox.tick().run_requests or []
    assert request.partition_key != "import-customers-running"


def test_other_files_are_ignored_and_said_to_be_once(inbox: Inbox, capsys: pytest.CaptureFixture[str]) -> None:
    """A file saved in the inbox itself, a workbook or a link waited for an import that never came, the UI's ticks
    saying only 'Sensor function returned an empty result': each is named once in a tick's log with what to do
    (again when it is saved anew); hidden files, an editor's or the Finder's, are not named."""
    inbox.drop("fair", ".hidden.csv")
    workbook = inbox.drop("fair", "leads.xlsx")
    loose = inbox.folder / "loose.csv"
    loose.write_text("Email\nann@example.com\n", encoding="utf-8")  # no list folder
    link = inbox.folder / "fair" / "linked.csv"
    link.symlink_to(loose)
    nested = inbox.folder / "fair" / "week 1"  # its files waited without a word
    nested.mkdir()
    (nested / "leads.csv").write_text("Email\nbo@example.com\n", encoding="utf-8")
    inbox.tick()
    said = [line.split(" - ")[-1] for line in capsys.readouterr().err.splitlines() if ": ignored: " in line]
    assert said == [
        f"{workbook}: ignored: not a .csv, .tsv or .txt file: save it as CSV to import it",
        f"{link}: ignored: a symbolic link, not followed (it may lead to another user's files): copy what it links"
        f" to into {inbox.folder}/<list name>/",
        f"{nested}: ignored: a folder in list folder 'fair': move its files up into {inbox.folder}/fair/ to import"
        " them",
        f"{loose}: ignored: not in a list folder: move it into {inbox.folder}/<list name>/ to import it",
    ]
    assert inbox.tick().run_requests == []
    assert ": ignored: " not in capsys.readouterr().err, "said once"
    time.sleep(0.01)
    workbook.write_bytes(b"PK\x03\x04")  # saved again
    inbox.tick()
    said = [line.split(" - ")[-1] for line in capsys.readouterr().err.splitlines() if ": ignored: " in line]
    assert said == [f"{workbook}: ignored: not a .csv, .tsv or .txt file: save it as CSV to import it"]


def test_a_folder_whose_name_cannot_name_a_list_is_said_once_and_requests_no_run(
    inbox: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder named with a tab (a paste from a spreadsheet) was requested like any other, and its run failed on
    the list's name; its name is now said once in the tick's log, quoted, with what to do, and no run is made.
    A folder beside it with a proper name is imported as ever."""
    unnamable = inbox.drop("Q3\tEMEA", "leads.csv").parent
    inbox.drop("fair", "leads.csv")
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert _run_config(request)["list_name"] == "fair"
    said = [line.split(" - ")[-1] for line in capsys.readouterr().err.splitlines() if ": ignored: " in line]
    assert said == [
        f"{str(unnamable)!r}: ignored: a list name cannot hold control characters (line breaks,"
        " tabs, escapes); got 'Q3\\tEMEA': rename the folder to import its files"
    ]
    assert inbox.tick().run_requests == []
    assert ": ignored: " not in capsys.readouterr().err, "said once"


def test_a_dropped_file_is_imported_as_its_os_owner_and_a_link_is_not_a_dropped_file(inbox: Inbox) -> None:
    """The run acted as the service (the list's owner) for any file in the inbox; it now carries the OS user
    owning the file, whose role on the list the run checks. A symbolic link would have the daemon read another
    user's file (one the link's owner may not read) under the link owner's name: it is not imported."""
    path = inbox.drop("fair", "leads.csv")
    private = inbox.folder.parent / "private.csv"
    private.write_text("Email\nann@example.com\n", encoding="utf-8")
    (inbox.folder / "fair" / "linked.csv").symlink_to(private)
    inbox.tick()
    [request] = inbox.tick().run_requests or []
    assert _run_config(request)["path"] == str(path)
    assert _run_config(request)["user"] == pwd.getpwuid(path.stat().st_uid).pw_name
    assert sensors.file_owner(2**31 - 7) == f"uid:{2**31 - 7}", "a uid without a name is nobody's name"


def test_a_linked_list_folder_is_not_a_list_folder(inbox: Inbox, tmp_path: Path) -> None:
    """``inbox/fair -> another user's folder`` would import that user's files (owned by them, so imported as
    them) into the list the link names, which its maker may read."""
    elsewhere = tmp_path / "bob" / "exports"
    elsewhere.mkdir(parents=True)
    shutil.copyfile(DEMO_FILE, elsewhere / "customers.csv")
    (inbox.folder / "fair").symlink_to(elsewhere, target_is_directory=True)
    inbox.tick()
    assert inbox.tick().run_requests == []
    assert sensors.dropped_files(inbox.folder) == []


def test_no_inbox_folder_is_not_an_error(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_INBOX", str(tmp_path / "missing"))
    inbox = Inbox(tmp_path / "missing", database_url)
    assert inbox.tick().run_requests == []
    assert not os.path.exists(tmp_path / "missing")


def test_a_copy_under_another_name_is_said_to_be_skipped_once(inbox: Inbox, capsys: pytest.CaptureFixture[str]) -> None:
    """A copy of a requested file left in the inbox was skipped with no word in the sensor's ticks (the UI showed
    'Sensor function returned an empty result'), as long as the first file stayed; its first look now says why."""
    first = inbox.drop("fair", "leads.csv")
    inbox.tick()
    inbox.tick()
    copy = inbox.drop("fair", "leads (copy).csv")
    inbox.tick()
    capsys.readouterr()
    assert inbox.tick().run_requests == []
    said = [line for line in capsys.readouterr().err.splitlines() if "same content" in line]
    assert len(said) == 1
    assert said[0].endswith(f"{copy}: same content as {first}, imported once into list 'fair': skipped")
    inbox.tick()
    assert "same content" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("reason", "retry_failed", "resumed"),
    [("UNEXPECTED_TERMINATION", True, True), ("STEP_FAILURE", True, False), ("UNEXPECTED_TERMINATION", False, False)],
)
def test_a_file_whose_failed_run_dagster_could_not_retry_is_requested_again_once(
    inbox: Inbox, reason: str, retry_failed: bool, resumed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded PostgreSQL stopped under `leads dev` failed the import's run; Dagster's run retry came while the
    server still refused connections ("Failed to retry run": DagsterCodeLocationLoadError) and gave up, and the
    file was imported only once the user touched it. The sensor, ticking with the database back, requests it again,
    once; not a run whose step failed (a bad file stays failed) nor one Dagster did retry."""
    inbox.instance = dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": True, "max_retries": 2}})
    # the batch key of a file with no import yet holds the second it is made: the same whichever tick makes it
    monkeypatch.setattr(sensors, "import_batch_key", lambda name, sha: f"import-{name}-{sha[:10]}")
    inbox.drop("fair", "leads.csv")
    inbox.tick()
    [first] = inbox.tick().run_requests or []
    assert first.partition_key is not None
    tags = {**first.tags, "dagster/partition": first.partition_key, WILL_RETRY_TAG: "false"}
    run = dg.DagsterRun(
        job_name="__ASSET_JOB", tags={**tags, "dagster/failure_reason": reason}, status=dg.DagsterRunStatus.FAILURE
    )
    inbox.instance.add_run(run)
    if retry_failed:
        inbox.instance.report_engine_event("Failed to retry run", run)

    requests = inbox.tick().run_requests or []
    if not resumed:
        assert requests == []
        return
    [again] = requests
    assert again.partition_key == first.partition_key and again.run_key != first.run_key
    assert _run_config(again) == _run_config(first)
    assert inbox.tick().run_requests == [], "once for each failed run"
