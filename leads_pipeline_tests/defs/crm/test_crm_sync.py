"""``leads crm`` and ``leads sync`` as a user runs them: connection files, the Dagster assets with their blocking
check, history and errors, against the HubSpot emulator; and the schedules built from connection files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner, Result

from leads_pipeline.cli import app
from leads_pipeline.commands import common
from leads_pipeline.commands.crm import _failure
from leads_pipeline.defs.crm.assets import CRM_CONNECTIONS, crm_sync, crm_sync_job, crm_sync_plan
from leads_pipeline.defs.crm.schedules import crm_schedules
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.resources import default_resources
from leads_pipeline.lib.crm.sync import SyncEngine
from leads_pipeline.lib.store import crm as crm_store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import email_of, import_leads, lead_rows
from leads_pipeline_tests.support import bidx, cli_environment, set_clause

pytestmark = pytest.mark.integration

CONNECTION = {
    "crm": "hubspot",
    "mapping": {"email": "email", "first_name": "firstname", "last_name": "lastname", "title": "jobtitle"},
    "direction": "push",
    "list": "prospects",
    "schedule": "0 * * * *",
    "rate_limit": {"requests": 1000, "per_seconds": 1},
}


@pytest.fixture
def leads(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    extra = {**sandbox.env(), "LEADS_CRM_DIR": str(tmp_path / "crm")}
    cli_environment(monkeypatch, database_url, tmp_path / "home", extra=extra)
    write_connection(tmp_path / "crm", "hubspot-main", CONNECTION)
    return CliRunner()


def write_connection(folder: Path, name: str, settings: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def ok(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"leads {' '.join(args)}: {result.stderr or result.output}"
    return result


def one_line_error(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    return lines[0]


def test_crm_ls_show_and_test(leads: CliRunner, tmp_path: Path) -> None:
    write_connection(tmp_path / "crm", "broken", {"crm": "zoho", "mapping": {"email": "email"}})
    listed = json.loads(ok(leads, "crm", "ls", "--json").stdout)
    assert {r["name"]: r["crm"] for r in listed} == {"broken": None, "hubspot-main": "hubspot"}
    assert "crm: expected one of" in next(r["error"] for r in listed if r["name"] == "broken")
    shown = json.loads(ok(leads, "crm", "show", "hubspot-main", "--json").stdout)
    assert shown["matchKey"] == {"field": "email", "crmField": "email"}
    assert shown["links"] == 0
    tested = json.loads(ok(leads, "crm", "test", "hubspot-main", "--json").stdout)
    assert tested["ok"] is True
    bad = dict(CONNECTION, mapping={"email": "email", "title": "job_title_typo"})
    write_connection(tmp_path / "crm", "typo", bad)
    assert "has no field(s) job_title_typo" in one_line_error(leads, "crm", "test", "typo")
    assert "no CRM connection named 'nope'" in one_line_error(leads, "crm", "test", "nope")
    for limit in ("-1", "0", "9223372036854775808"):  # PostgreSQL refused the LIMIT: a traceback
        result = leads.invoke(app, ["sync", "history", "--limit", limit])
        assert result.exit_code == 2 and "Traceback" not in result.output, limit
        assert "Invalid value for '--limit'" in " ".join(result.stderr.replace("│", " ").split()), limit


def test_sync_pushes_through_dagster_then_history_and_errors(
    leads: CliRunner, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_leads(database_url, tmp_path, lead_rows(40, start=110_000))
    with transaction(database_url) as db:
        assignments, params = set_clause(email="nobody@nowhere")
        db.execute(f"UPDATE leads SET {assignments} WHERE email_bidx = %s", (*params, bidx(email_of(110_000))))
        assignments, params = set_clause(email="x;=cmd|' /C calc'!A0")
        db.execute(f"UPDATE leads SET {assignments} WHERE email_bidx = %s", (*params, bidx(email_of(110_001))))
    report = json.loads(ok(leads, "sync", "--crm", "hubspot-main", "--list", "prospects", "--json").stdout)
    assert (report["status"], report["leadsToSync"], report["created"] + report["updated"]) == ("completed", 38, 38)
    assert report["invalid"] == 2
    again = json.loads(ok(leads, "sync", "--crm", "hubspot-main", "--json").stdout)
    assert (again["leadsToSync"], again["unchanged"]) == (0, 38)
    with connect(database_url) as conn:  # paced by the account's bucket in the database, which all runs share
        assert [r["key"].split(":")[0] for r in conn.execute("SELECT key FROM rate_buckets")] == ["hubspot"]
    # without --json, one line a log can be grepped ("0 failed"): at 80 columns it was broken over three
    summary = ok(leads, "sync", "--crm", "hubspot-main").stdout.splitlines()[0]
    assert (
        summary.startswith("sync ")
        and ": completed; 0 to sync, 0 created, 0 updated, 38 unchanged, 0 failed," in summary
    )
    history = json.loads(ok(leads, "sync", "history", "--json").stdout)
    assert [h["syncId"] for h in history][1:] == [again["syncId"], report["syncId"]]
    # at 80 columns (a pipe, cron's mail) the table cut the status to "co…" and the counts to a letter: two lines
    monkeypatch.setattr(common, "console", Console(width=80))
    shown = ok(leads, "sync", "history").stdout.splitlines()
    assert shown[-2].startswith(f"{report['syncId']}  hubspot-main push, started ")
    assert shown[-1] == "  completed: 38 to sync, 38 created, 0 updated, 0 failed, 2 invalid, 0 pulled, 0 conflicts"
    errors = ok(leads, "sync", "errors", report["syncId"], "--csv").stdout.splitlines()
    assert errors[0] == '"lead_id","email","action","category","message","attempts"'
    assert "nobody@nowhere" in errors[1] and "not an email address" in errors[1]
    # the CSV is opened in a spreadsheet: the address (and the message quoting it) cannot run as a formula there,
    # also where Excel splits at ";" (it was written as is)
    assert "=cmd" in errors[2] and ";=" not in errors[2] and "x;'=cmd" in errors[2]
    # at 80 columns the table cut the message to a few words: two lines a record, every value whole
    first = json.loads(ok(leads, "sync", "errors", report["syncId"], "--json").stdout)[0]
    assert ok(leads, "sync", "errors", report["syncId"]).stdout.splitlines()[:2] == [
        f"lead {first['leadId']} nobody@nowhere: {first['action']}",
        f"  {first['category']}, {first['attempts']} attempt: {first['message']}",
    ]
    assert "not an email address" in first["message"]
    assert "sync run 999: not found or not shared with you" in one_line_error(leads, "sync", "errors", "999")
    assert (
        one_line_error(leads, "sync", "errors", "999", "--csv", "--json") == "error: --json and --csv: give one of them"
    )


def test_the_database_going_away_mid_push_is_one_line_and_the_next_sync_sends_each_person_once(
    leads: CliRunner, database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database ended a push's connection after HubSpot took a batch and before its outcomes were recorded:
    `leads sync` said "error: terminating connection due to administrator command" alone. It says the database
    went away and to run the command again; the next sync links every lead, and HubSpot holds each person once."""
    import_leads(database_url, tmp_path, lead_rows(30, start=180_000))
    real_unlinkable = SyncEngine._unlinkable
    ended: list[int] = []

    def ended_once(self: SyncEngine, conn: Any, *args: Any) -> Any:
        if not ended:
            ended.append(conn.info.backend_pid)
            with connect(database_url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return real_unlinkable(self, conn, *args)

    monkeypatch.setattr(SyncEngine, "_unlinkable", ended_once)
    assert one_line_error(leads, "sync", "--crm", "hubspot-main") == (
        "error: the database went away during the command (terminating connection due to administrator command):"
        " once it is up again (`leads db start` for the embedded server), run the same command again; what it"
        " committed is kept, the rest is done then"
    )
    monkeypatch.setattr(SyncEngine, "_unlinkable", real_unlinkable)
    again = json.loads(ok(leads, "sync", "--crm", "hubspot-main", "--json").stdout)
    assert again["status"] == "completed"
    with connect(database_url) as conn:
        assert len(crm_store.links(conn, "hubspot-main")) == 30
    assert sandbox.http_app is not None
    contacts = sandbox.http_app.emulator("hubspot").store.records.values()
    ours = sorted(email_of(i) for i in range(180_000, 180_030))
    assert sorted(e for c in contacts if not c.archived and (e := c.fields.get("email")) in ours) == ours


def test_a_killed_sync_has_its_dagster_run_reported_failed(leads: CliRunner, database_url: str, tmp_path: Path) -> None:
    """A `leads sync` killed outright read as "interrupted" in `leads sync history`, but its Dagster run stayed
    STARTED in the UI for good: the sync run did not record which Dagster run it was. It does now, and the reader
    finding it interrupted (`leads sync history`), or the next sync, reports that Dagster run failed."""
    import_leads(database_url, tmp_path, lead_rows(30, start=170_000))
    slow = dict(CONNECTION, batch_size=1, rate_limit={"requests": 2, "per_seconds": 1})  # ~15 s of pushing
    write_connection(tmp_path / "crm", "hubspot-slow", slow)

    def kill_while_pushing() -> dg.DagsterRun:
        """SIGKILL a `leads sync` once its sync run is recorded running; its Dagster run."""
        command = [sys.executable, "-c", "from leads_pipeline.cli import app; app()", "sync", "--crm", "hubspot-slow"]
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = dg.RunsFilter(tags={"leads/crm": "hubspot-slow"}, statuses=[dg.DagsterRunStatus.STARTED])
        try:
            deadline = time.monotonic() + 120
            with connect(database_url) as conn:
                while time.monotonic() < deadline and not (
                    (runs := crm_store.list_runs(conn, "hubspot-slow", 1)) and runs[0]["status"] == "running"
                ):
                    time.sleep(0.05)
            [dagster_run] = dg.DagsterInstance.get().get_runs(started)
            assert runs[0]["dagster_run_id"] == dagster_run.run_id, "the sync run names its Dagster run"
        finally:
            worker.kill()
            worker.wait()
        return dagster_run

    def status(run: dg.DagsterRun) -> dg.DagsterRunStatus | None:
        reread = dg.DagsterInstance.get().get_run_by_id(run.run_id)
        return None if reread is None else reread.status

    killed = kill_while_pushing()
    assert status(killed) == dg.DagsterRunStatus.STARTED, "the killed process never wrote its run's end"
    history = json.loads(ok(leads, "sync", "history", "--crm", "hubspot-slow", "--json").stdout)
    assert [h["status"] for h in history] == ["interrupted"]
    assert status(killed) == dg.DagsterRunStatus.FAILURE, "the reader ended the run Dagster showed started"
    killed = kill_while_pushing()
    write_connection(tmp_path / "crm", "hubspot-slow", CONNECTION)  # the next sync need not push at 2 a second
    report = json.loads(ok(leads, "sync", "--crm", "hubspot-slow", "--json").stdout)
    assert report["status"] == "completed"
    assert status(killed) == dg.DagsterRunStatus.FAILURE, "the next sync ended the run Dagster showed started"


def test_a_lead_merged_away_while_leads_sync_pushes_its_list_is_not_pushed(
    leads: CliRunner, database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """`leads dedupe --merge` while `leads sync` pushed the same list: the sync had read both leads of the cluster
    before the merge, and sent the merged-away one after it (a lead of another address: a second contact of the
    person, linked to a deleted lead). A push batch now leaves out the leads deleted since it read them, a merge
    in flight waited for: only the survivor is in the CRM."""
    rows = [{**row, "LinkedIn URL": ""} for row in lead_rows(16, start=171_000)]
    kept = {"First Name": "Mae", "Last Name": "Dup", "Email": "mae.dup@example.net", "Company": "Dupco",
            "Title": "CEO", "LinkedIn URL": "https://www.linkedin.com/in/maedup"}  # fmt: skip
    gone = {"First Name": "Mae", "Last Name": "Dup", "Email": "mae.other@example.net", "Company": "",
            "Title": "", "LinkedIn URL": "linkedin.com/in/maedup/"}  # fmt: skip
    list_id = import_leads(database_url, tmp_path, [*rows, kept, gone])
    slow = dict(CONNECTION, batch_size=1, rate_limit={"requests": 1, "per_seconds": 1})  # ~16 s before the two
    write_connection(tmp_path / "crm", "hubspot-slow", slow)
    command = [sys.executable, "-c", "from leads_pipeline.cli import app; app()", "sync", "--crm", "hubspot-slow"]
    sync = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        with connect(database_url) as conn:  # the sync has read the list and is pushing
            while time.monotonic() < deadline and not crm_store.links(conn, "hubspot-slow"):
                time.sleep(0.05)
        merged = json.loads(
            ok(leads, "dedupe", "--list", "prospects", "--where", "last_name = Dup", "--merge", "--json").stdout
        )
        _, stderr = sync.communicate(timeout=120)
    finally:
        sync.kill()
        sync.wait()
    assert sync.returncode == 0, stderr
    with connect(database_url) as conn:
        ids = {r["email"]: r["id"] for r in conn.execute("SELECT id, email FROM leads WHERE list_id = %s", (list_id,))}
        [run] = crm_store.list_runs(conn, "hubspot-slow")
        linked = {link["lead_id"] for link in crm_store.links(conn, "hubspot-slow")}
    survivor_email, gone_email = kept["Email"], gone["Email"]
    survivor, merged_away = ids[survivor_email], ids[gone_email]
    assert [(m["survivorId"], m["mergedIds"]) for m in merged["merges"]] == [(str(survivor), [str(merged_away)])]
    assert (run["status"], run["leads_to_sync"], run["created"], run["failed"]) == ("completed", 18, 17, 0), "read both"
    assert survivor in linked and merged_away not in linked
    assert sandbox.http_app is not None
    contacts = sandbox.http_app.emulator("hubspot").store.records.values()
    pushed = [c.fields.get("email") for c in contacts if not c.archived]
    assert [e for e in pushed if e in (survivor_email, gone_email)] == [survivor_email], "the person once"


def test_where_filters_and_opt_outs_decide_who_is_pushed(leads: CliRunner, database_url: str, tmp_path: Path) -> None:
    import_leads(database_url, tmp_path, lead_rows(22, start=120_000))  # companies Acme 0 .. Acme 10
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET opted_out_at = now() WHERE email_bidx = %s", (bidx(email_of(120_000)),))
    # The file's where (company) and the run's --where (email domain) must both hold.
    write_connection(tmp_path / "crm", "acme-only", dict(CONNECTION, where="company in Acme 0, Acme 1"))
    expected = [i for i in range(120_000, 120_022) if i % 11 in (0, 1) and i % 7 != 3 and i != 120_000]
    report = json.loads(ok(leads, "sync", "--crm", "acme-only", "--where", "email !~ example3.com", "--json").stdout)
    assert (report["status"], report["leadsToSync"], report["created"]) == ("completed", len(expected), len(expected))
    with transaction(database_url) as db:
        pushed = db.execute(
            "SELECT l.email FROM crm_links k JOIN leads l ON l.id = k.lead_id WHERE k.connection = 'acme-only'"
        ).fetchall()
    assert sorted(r["email"] for r in pushed) == sorted(email_of(i) for i in expected)
    assert "unknown field 'colour'" in one_line_error(leads, "sync", "--crm", "acme-only", "--where", "colour = red")


def test_blocking_check_stops_a_push_whose_mapping_the_crm_does_not_have(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(2, start=120_000))
    write_connection(tmp_path / "crm", "typo", dict(CONNECTION, mapping={"email": "email", "title": "job_title_typo"}))
    message = one_line_error(leads, "sync", "--crm", "typo", "--list", "prospects")
    assert "blocked by its check" in message and "mapping: hubspot contacts has no field(s) job_title_typo" in message
    history = json.loads(ok(leads, "sync", "history", "--json").stdout)  # the blocked sync is a failed run
    assert [(h["connection"], h["status"], h["leadsToSync"]) for h in history] == [("typo", "failed", 0)]
    assert "crm_push_is_valid" in history[0]["message"] and "job_title_typo" in history[0]["message"]
    assert history[0]["finishedAt"] is not None


def test_one_schedule_per_connection_file_with_a_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_CRM_DIR", str(tmp_path))
    write_connection(tmp_path, "hubspot-main", CONNECTION)
    write_connection(tmp_path, "manual-only", {k: v for k, v in CONNECTION.items() if k != "schedule"})
    write_connection(tmp_path, "broken", {"crm": "zoho"})
    write_connection(tmp_path, "bad-cron", dict(CONNECTION, schedule="every hour"))
    schedules = crm_schedules()
    assert [s.name for s in schedules] == ["crm_sync_hubspot_main"]
    assert schedules[0].cron_schedule == "0 * * * *"
    defs = dg.Definitions(
        assets=[crm_sync_plan, crm_sync], schedules=schedules, jobs=[crm_sync_job], resources=default_resources()
    )
    dg.Definitions.validate_loadable(defs)


def run_as(runner: CliRunner, user: str, *args: str) -> Result:
    return runner.invoke(app, list(args), env={"LEADS_USER": user})


def refused_as(runner: CliRunner, user: str, *args: str) -> str:
    result = run_as(runner, user, *args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    return lines[0]


def counts(database_url: str) -> tuple[int, int]:
    """(sync runs, live leads)."""
    with transaction(database_url) as db:
        row = db.execute(
            "SELECT (SELECT count(*) FROM crm_sync_runs) AS runs,"
            " (SELECT count(*) FROM leads WHERE deleted_at IS NULL) AS leads"
        ).fetchone()
    assert row is not None
    return row["runs"], row["leads"]


def test_a_sync_needs_the_editor_role_and_its_runs_are_for_the_lists_readers(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(3, start=130_000))
    ok(leads, "lists", "share", "prospects", "carol", "--role", "viewer")
    ok(leads, "lists", "share", "prospects", "dan", "--role", "editor")
    for direction in ("push", "pull", "bidirectional"):
        message = refused_as(leads, "carol", "sync", "--crm", "hubspot-main", "--direction", direction)
        assert (
            "user 'carol' is a viewer of list 'prospects'; syncing it with CRM connection 'hubspot-main' needs the "
            "role editor or owner (an owner such as 'tester' can grant it" in message
        )
        message = refused_as(leads, "bob", "sync", "--crm", "hubspot-main", "--direction", direction)  # a stranger
        assert "list 'prospects': not found or not shared with you" in message and "tester" not in message
        # a list that does not exist gets the same refusal: neither tells a stranger which names exist
        unknown = refused_as(leads, "bob", "sync", "--crm", "hubspot-main", "--list", "nope", "--direction", direction)
        assert message == unknown.replace("'nope'", "'prospects'")
    assert counts(database_url) == (0, 3)
    report = json.loads(run_as(leads, "dan", "sync", "--crm", "hubspot-main", "--json").stdout)
    assert (report["startedBy"], report["created"] + report["updated"]) == ("dan", 3)

    # A pull without a list updates the leads linked to the connection: editors of their lists only.
    write_connection(tmp_path / "crm", "hubspot-main", {k: v for k, v in CONNECTION.items() if k != "list"})
    linked = "a list holding leads linked to 'hubspot-main': not found or not shared with you"
    message = refused_as(leads, "bob", "sync", "--crm", "hubspot-main", "--direction", "pull")
    assert linked in message and "prospects" not in message  # the file names no list: none is named to bob
    write_connection(tmp_path / "crm", "unlinked", dict(CONNECTION, direction="pull", list=None))
    own = json.loads(run_as(leads, "bob", "sync", "--crm", "unlinked", "--json").stdout)
    assert (own["status"], own["startedBy"]) == ("completed", "bob")
    # A pull into bob's own list would still update the leads linked to the connection in 'prospects'.
    assert run_as(leads, "bob", "lists", "create", "bobs").exit_code == 0
    message = refused_as(leads, "bob", "sync", "--crm", "hubspot-main", "--list", "bobs", "--direction", "pull")
    assert linked in message and "prospects" not in message

    # History: the runs of the lists the user can read, and the runs they started; errors likewise.
    history = {user: [h["syncId"] for h in json.loads(run_as(leads, user, "sync", "history", "--json").stdout)]
               for user in ("bob", "carol", "tester")}  # fmt: skip
    assert history == {"bob": [own["syncId"]], "carol": [report["syncId"]], "tester": [report["syncId"]]}
    # A stranger to the run's list (or to a run without one) is told what an unknown run id gives: no list, no user.
    unknown = refused_as(leads, "bob", "sync", "errors", "999999")
    assert "sync run 999999: not found or not shared with you (`leads sync history` lists yours)" in unknown
    message = refused_as(leads, "bob", "sync", "errors", report["syncId"])
    assert message == unknown.replace("999999", report["syncId"])
    assert run_as(leads, "carol", "sync", "errors", report["syncId"], "--json").exit_code == 0
    message = refused_as(leads, "carol", "sync", "errors", own["syncId"])
    assert message == unknown.replace("999999", own["syncId"])
    assert json.loads(run_as(leads, "bob", "sync", "errors", own["syncId"], "--json").stdout) == []


def test_a_pull_into_an_archived_list_is_refused_a_push_from_it_is_not(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(2, start=131_000))
    ok(leads, "lists", "create", "Empty QA")
    ok(leads, "lists", "archive", "Empty QA")
    for direction in ("pull", "bidirectional"):
        message = one_line_error(leads, "sync", "--crm", "hubspot-main", "--list", "Empty QA", "--direction", direction)
        assert (
            "list 'Empty QA' is archived and read-only; syncing it with CRM connection 'hubspot-main' is refused"
            in message
        )
    assert counts(database_url) == (0, 2)
    ok(leads, "lists", "archive", "prospects")
    report = json.loads(ok(leads, "sync", "--crm", "hubspot-main", "--direction", "push", "--json").stdout)
    assert (report["status"], report["created"] + report["updated"]) == ("completed", 2)


def materialize_sync(name: str, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    """The two sync assets as a schedule or the Dagster UI runs them: the run config is all they are given."""
    from leads_pipeline.launcher import instance

    dagster_instance = instance()
    dagster_instance.add_dynamic_partitions(CRM_CONNECTIONS, [name])
    return dg.materialize(
        [crm_sync_plan, crm_sync],
        partition_key=name,
        instance=dagster_instance,
        resources=default_resources(),
        run_config={"ops": {"crm_sync_plan": {"config": config}, "crm_sync": {"config": config}}},
        raise_on_error=False,
    )


def test_a_dagster_run_acts_as_its_user_or_else_the_lists_owner(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(2, start=132_000))
    scheduled = materialize_sync("hubspot-main", {})
    assert scheduled.success
    with transaction(database_url) as db:
        assert db.execute("SELECT started_by FROM crm_sync_runs").fetchall() == [{"started_by": "tester"}]
    as_bob = materialize_sync("hubspot-main", {"user": "bob"})
    assert not as_bob.success and not as_bob.asset_materializations_for_node("crm_sync")
    assert "list 'prospects': not found or not shared with you" in _failure(as_bob, "hubspot-main")
    ok(leads, "lists", "archive", "prospects")
    pull = materialize_sync("hubspot-main", {"direction": "pull"})
    assert not pull.success and "list 'prospects' is archived and read-only" in _failure(pull, "hubspot-main")
    assert counts(database_url) == (1, 2)


def test_a_run_for_a_connection_partition_that_is_not_registered_is_refused_before_anything_is_written(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    """Dagster does not check a ``dagster/partition`` tag: a run launched through the GraphQL API for a connection
    file's name no launcher had registered synced it, a run the UI lists under no partition. Both assets now refuse
    it in one line, not retried, before anything is written."""
    from leads_pipeline.launcher import instance

    import_leads(database_url, tmp_path, lead_rows(2, start=133_000))
    assert not instance().has_dynamic_partition(CRM_CONNECTIONS, "hubspot-main")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            [crm_sync_plan, crm_sync],
            instance=instance(),
            resources=default_resources(),
            tags={"dagster/partition": "hubspot-main"},
            raise_on_error=False,
        )
    assert not result.success
    assert "partition 'hubspot-main' is not a CRM connection" in _failure(result, "hubspot-main")
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    assert counts(database_url) == (0, 2)


def test_schedule_names_that_clash_keep_the_first_file_and_warn_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LEADS_CRM_DIR", str(tmp_path))
    write_connection(tmp_path, "sched-ok", CONNECTION)
    write_connection(tmp_path, "sched_ok", CONNECTION)
    with caplog.at_level("WARNING"):
        schedules = crm_schedules()
    assert [s.name for s in schedules] == ["crm_sync_sched_ok"]
    assert schedules[0].description is not None and "sched-ok " in schedules[0].description
    warning = next(r.getMessage() for r in caplog.records if "crm_sync_sched_ok" in r.getMessage())
    assert str(tmp_path / "sched-ok.yaml") in warning and str(tmp_path / "sched_ok.yaml") in warning
    defs = dg.Definitions(
        assets=[crm_sync_plan, crm_sync], schedules=schedules, jobs=[crm_sync_job], resources=default_resources()
    )
    dg.Definitions.validate_loadable(defs)


def test_a_connection_file_schedule_starts_running() -> None:
    from leads_pipeline.defs.crm.schedules import schedule_for
    from leads_pipeline.lib.crm.connection import parse_connection

    schedule = schedule_for(parse_connection("hubspot-main", CONNECTION))
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_a_connection_file_schedule_s_runs_queue_behind_the_runs_people_launch() -> None:
    """Without ``dagster/priority`` a scheduled sync ranked as a run launched from the UI or by ``leads``."""
    from leads_pipeline.defs.crm.schedules import schedule_for
    from leads_pipeline.lib.crm.connection import parse_connection

    schedule = schedule_for(parse_connection("hubspot-main", CONNECTION))
    repository = dg.Definitions(
        assets=[crm_sync_plan, crm_sync], schedules=[schedule], jobs=[crm_sync_job], resources=default_resources()
    ).get_repository_def()
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, repository_def=repository)
        [request] = schedule.evaluate_tick(context).run_requests or []
    assert request.tags["dagster/priority"] == BACKGROUND_PRIORITY["dagster/priority"]
    assert (request.partition_key, request.tags["leads/crm"]) == ("hubspot-main", "hubspot-main")


def test_crm_ls_flags_schedule_clashes_and_bad_cron(leads: CliRunner, tmp_path: Path) -> None:
    write_connection(tmp_path / "crm", "hubspot_main", CONNECTION)  # the same schedule name as hubspot-main
    write_connection(tmp_path / "crm", "daily", dict(CONNECTION, schedule="every day"))
    listed = {r["name"]: r["error"] for r in json.loads(ok(leads, "crm", "ls", "--json").stdout)}
    assert listed["hubspot-main"] is None
    assert "hubspot-main.yaml already has schedule crm_sync_hubspot_main" in listed["hubspot_main"]
    assert "schedule: expected a cron expression" in listed["daily"] and "'every day'" in listed["daily"]
    assert "schedule: expected a cron expression" in one_line_error(leads, "crm", "test", "daily")


def test_crm_ls_shows_each_connection_whole_at_80_columns(
    leads: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, cron's mail) the seven columns cut a file's problem to a few words, and what was
    wrong with it could not be read. There each connection takes two lines, every value whole."""
    write_connection(tmp_path / "crm", "daily", dict(CONNECTION, schedule="every day"))
    [problem] = [r["error"] for r in json.loads(ok(leads, "crm", "ls", "--json").stdout) if r["name"] == "daily"]
    monkeypatch.setattr(common, "console", Console(width=80))
    assert ok(leads, "crm", "ls").stdout.splitlines() == [
        "daily",
        f"  problem: {problem}",
        "hubspot-main",
        "  hubspot contacts, push, list prospects, schedule 0 * * * *",
    ]
    monkeypatch.setattr(common, "console", Console(width=400))
    assert ok(leads, "crm", "ls").stdout.startswith("┏")  # the table


def test_crm_show_shows_each_value_whole_at_80_columns(
    leads: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, cron's mail) the value column broke the mapping and the file's path over several
    lines, and grepping for a mapped field or the file found nothing. There each setting takes one line, its value
    whole; a wide terminal keeps the table."""
    shown = json.loads(ok(leads, "crm", "show", "hubspot-main", "--json").stdout)
    monkeypatch.setattr(common, "console", Console(width=80))
    lines = ok(leads, "crm", "show", "hubspot-main").stdout.splitlines()
    # the nested settings in words, not Python dictionaries
    mapping = ", ".join(f"{local} -> {m['crmField']}" for local, m in shown["mapping"].items())
    assert f"mapping: {mapping}" in lines
    assert "matchKey: email -> email" in lines
    rate = shown["rateLimit"]
    assert f"rateLimit: {rate['requests']} requests per {rate['perSeconds']:g} s" in lines
    assert not [line for line in lines if "{" in line or "None" in line]
    assert f"file: {tmp_path / 'crm' / 'hubspot-main.yaml'}" in lines
    assert "links: 0" in lines
    monkeypatch.setattr(common, "console", Console(width=400))
    assert ok(leads, "crm", "show", "hubspot-main").stdout.startswith("┌")  # the table


def test_crm_test_checks_fields_as_a_sync_does(leads: CliRunner, tmp_path: Path) -> None:
    pipedrive = {"crm": "pipedrive", "list": "prospects", "rate_limit": {"requests": 1000, "per_seconds": 1}}
    label_of_standard = {"email": "email", "title": {"crm_field": "Job Title"}}  # a label Pipedrive cannot resolve
    write_connection(tmp_path / "crm", "pd-label", dict(pipedrive, mapping=label_of_standard))
    message = one_line_error(leads, "crm", "test", "pd-label")
    assert "mapping: pipedrive persons has no field(s) Job Title" in message
    custom_label = {"email": "email", "title": "job_title", "company": "Company"}  # a custom field by its label
    write_connection(tmp_path / "crm", "pd-ok", dict(pipedrive, mapping=custom_label))
    assert json.loads(ok(leads, "crm", "test", "pd-ok", "--json").stdout)["ok"] is True
    write_connection(tmp_path / "crm", "pulls", dict(CONNECTION, pull_fields={"no_such_stage": "stage"}))
    message = one_line_error(leads, "crm", "test", "pulls")
    assert "pull_fields: hubspot contacts has no field(s) no_such_stage" in message and "mapping:" not in message


def test_sync_retries_a_cut_field_list_and_records_no_run_for_an_unknown_list(
    leads: CliRunner, database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(2, start=125_000))
    assert sandbox.http_app is not None
    sandbox.http_app.inject("hubspot", "malformed", "500")  # the plan's first call: the field list
    report = json.loads(ok(leads, "sync", "--crm", "hubspot-main", "--list", "prospects", "--json").stdout)
    assert (report["status"], report["created"] + report["updated"]) == ("completed", 2)
    message = one_line_error(leads, "sync", "--crm", "hubspot-main", "--list", "nope")
    assert message.startswith("error: list 'nope': not found or not shared with you (`leads lists ls` shows yours")
    # refused as a list not shared would be: a recorded failed run would tell the two apart in the history
    history = json.loads(ok(leads, "sync", "history", "--json").stdout)
    assert [h["syncId"] for h in history] == [report["syncId"]]


def test_sync_without_crm_says_it_is_required(leads: CliRunner, tmp_path: Path) -> None:
    """Without --crm the whole help came first, two screens before the line saying what was wrong, which named a
    folder, not the connections to give. It is one line, naming the option and the connections, exit code 2 as for
    any missing option."""
    write_connection(tmp_path / "crm", "pipedrive-eu", dict(CONNECTION, crm="pipedrive"))
    result = leads.invoke(app, ["sync", "--list", "prospects"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: missing option --crm: the CRM connection to sync, one of hubspot-main, pipedrive-eu"
        f" (the files in {tmp_path / 'crm'})"
    ]


def test_a_sync_by_her_name_keeps_no_name_in_its_run_config(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    """`leads sync --where "last_name = ..."` launches a Dagster run whose config the run needs and Dagster keeps
    and shows; it held the name in clear until her erasure. A filter on a person's details is sealed in it now
    (the run opens it and selects by it), the rest is kept as typed."""
    import_leads(database_url, tmp_path, lead_rows(3, start=134_000))
    report = json.loads(
        ok(
            leads,
            "sync",
            "--crm",
            "hubspot-main",
            "--where",
            "last_name = Lee134001",
            "--where",
            "title = Engineer",
            "--json",
        ).stdout
    )
    assert (report["status"], report["leadsToSync"], report["created"] + report["updated"]) == ("completed", 1, 1)
    with transaction(database_url) as db:
        pushed = db.execute("SELECT l.email FROM crm_links k JOIN leads l ON l.id = k.lead_id").fetchall()
        bodies = [r["run_body"] for r in db.execute("SELECT run_body FROM public.runs")]
    assert [p["email"] for p in pushed] == [email_of(134_001)]
    assert bodies and not [b for b in bodies if "Lee134001" in b]
    assert any("title = Engineer" in b and '"enc:' in b for b in bodies)


def test_erasure_leaves_no_name_in_the_config_of_a_ui_launched_sync_by_her_name(
    leads: CliRunner, database_url: str, tmp_path: Path
) -> None:
    """A run launched from the Dagster UI holds its filters as typed there; her erasure leaves out the values of
    filters on a person's details in Dagster's storage (a name cannot be told from another's), the rest is kept."""
    import_leads(database_url, tmp_path, lead_rows(3, start=133_000))
    assert materialize_sync("hubspot-main", {"where": ["last_name = Lee133001", "title = Engineer"]}).success
    storage = "SELECT run_body FROM public.runs"
    with transaction(database_url) as db:
        assert any("last_name = Lee133001" in r["run_body"] for r in db.execute(storage))
    ok(leads, "privacy", "delete", email_of(133_001), "--yes")
    with transaction(database_url) as db:
        bodies = [r["run_body"] for r in db.execute(storage)]
    assert not [b for b in bodies if "Lee133001" in b]
    assert any("last_name = <value>" in b and "title = Engineer" in b for b in bodies)
