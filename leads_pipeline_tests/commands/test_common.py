"""``commands/common.py``: the one JSON encoding of every output, one line for the database going away."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import pwd
import shutil
import signal
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.commands import common
from leads_pipeline.commands.common import (
    connection_lost,
    database_went_away,
    field_text,
    json_text,
    print_json,
    print_line,
)
from leads_pipeline.defs.imports.sensors import file_owner
from leads_pipeline.lib import runtime
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.paths import DEMO_FILE, REPO
from leads_pipeline_tests.support import Leads, api_shape_problems, cli_environment, sql_value


def test_json_text_writes_decimals_as_numbers_and_dates_as_text() -> None:
    document = {
        "revenue": Decimal("2000000.50"),
        "whole": Decimal("3000000.00"),
        "small": Decimal("0.0025"),
        "count": 1200,
        "day": date(2026, 11, 3),
        "at": datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
        "nan": Decimal("NaN"),
    }
    assert json.loads(json_text(document)) == {
        "revenue": 2000000.5,
        "whole": 3000000,
        "small": 0.0025,
        "count": 1200,
        "day": "2026-11-03",
        "at": "2026-11-03T09:30:00+00:00",
        "nan": "NaN",
    }
    assert '"whole": 3000000,' in json_text(document), "a whole amount is an integer"


def test_json_text_writes_whole_floats_as_integers_and_times_in_iso_form() -> None:
    """Credits are summed as floats (``creditsUsed`` came out as ``19.0``, against README's "a whole amount an
    integer"), and times that reached the encoder as datetimes were written ``2026-11-30 01:33:33+00:00``
    beside the ``...T01:33:33+00:00`` of the outputs formatting their own (``leads sync --json``'s
    ``startedAt`` against ``leads imports show --json``'s ``completedAt``)."""
    document = {
        "creditsUsed": 19.0,
        "rows": [{"credits": 2.0, "share": 0.5}],
        "pair": (3.0, 1.25),
        "startedAt": datetime(2026, 11, 30, 1, 33, 33, 119019, tzinfo=UTC),
        "day": date(2026, 11, 3),
        "flag": True,
    }
    text = json_text(document)
    assert '"creditsUsed": 19,' in text
    assert '"credits": 2,' in text
    assert json.loads(text) == {
        "creditsUsed": 19,
        "rows": [{"credits": 2, "share": 0.5}],
        "pair": [3, 1.25],
        "startedAt": "2026-11-30T01:33:33.119019+00:00",
        "day": "2026-11-03",
        "flag": True,
    }
    assert datetime.fromisoformat(json.loads(text)["startedAt"]) == document["startedAt"]


def test_print_line_says_values_as_written_and_styles_only_its_own_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values printed as rich markup were read as tags ('[/x]' stopped the command with a MarkupError, '[red]'
    coloured the rest), rich's escape doubled a trailing backslash, and ':thumbs_up:' became an emoji. A line
    says them as written, control characters as ``?``, on one line however narrow; only ``(text, style)`` parts
    are styled."""
    out, err = (
        common.TerminalConsole(record=True, width=20, force_terminal=True, color_system="standard", no_color=False,
                               stderr=stderr)
        for stderr in (False, True)
    )  # fmt: skip
    monkeypatch.setattr(common, "console", out)
    monkeypatch.setattr(common, "errors", err)
    value = "[/x] Leads [red]EMEA :thumbs_up: \x1b[2J C:\\dir\\"  # a value ending in a backslash
    print_line(("job", "bold"), f" {value}", " done")
    print_line(("error:", "red"), f" no such file: {value}", err=True)
    assert out.export_text(clear=False) == "job [/x] Leads [red]EMEA :thumbs_up: ?[2J C:\\dir\\ done\n"
    assert out.export_text(styles=True).startswith("\x1b[1mjob\x1b[0m [/x] Leads [red]EMEA")  # the rest unstyled
    expected = "\x1b[31merror:\x1b[0m no such file: [/x] Leads [red]EMEA :thumbs_up: ?[2J C:\\dir\\\n"
    assert err.export_text(styles=True) == expected


def test_no_line_of_a_command_is_formatted_into_rich_markup() -> None:
    """About 50 lines of the commands formatted names, paths and values into a line printed as rich markup: a
    list named '[/x] Leads' stopped `leads lists create` with a MarkupError traceback, '[red]' coloured the rest.
    They go through print_line; a console's print of an f-string (with markup on) would read its values so."""
    found = []
    for path in sorted((REPO / "leads_pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "print"
                and not any(k.arg == "markup" and getattr(k.value, "value", True) is False for k in node.keywords)
                and any(isinstance(part, ast.JoinedStr) for arg in node.args for part in ast.walk(arg))
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def test_a_field_is_shown_in_words_not_in_python_s_forms() -> None:
    """`lists show` printed "archived: False" and `crm show` "lastSynced: 2026-11-30 22:51:03.123456+00:00"."""
    assert [field_text(v) for v in (None, True, False, 0, "None")] == ["-", "yes", "no", "0", "None"]
    synced = datetime(2026, 11, 30, 22, 51, 3, 123456, tzinfo=UTC)
    assert field_text(synced) == "2026-11-30 22:51:03 UTC"
    assert field_text(datetime(2026, 11, 30, 23, 51, 3, tzinfo=ZoneInfo("Europe/Berlin"))) == "2026-11-30 22:51:03 UTC"


def test_print_json_writes_camel_case_keys_and_ids_as_strings(capsys: pytest.CaptureFixture[str]) -> None:
    """Several --json outputs wrote snake_case keys (retention apply: dry_run, leads_deleted; merges list:
    survivor_id; verify: provider_cost) and numeric ids (show: leadId; dedupe: leadIds) where the PRD's shapes
    have camelCase and string ids; lead records keep their canonical field names, stored rows stay as stored."""
    print_json(
        {
            "dry_run": True,
            "leads_deleted": 3,
            "leads_deleted_by_list": {"q3_leads": 3},
            "merges": [
                {"id": 7, "survivor_id": 4, "merged_ids": [5, 6], "filled": {"phone_ext": 5}, "created_at": None}
            ],
            "leadIds": [1, 2],
            "leads": [{"id": 1, "list_id": 2, "first_name": "Ann", "custom": {"lead_source": "x"}}],
            "data": {"leads": [{"id": 1, "list_id": 2}]},
            "flag": False,
        }
    )
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "dryRun": True,
        "leadsDeleted": 3,
        "leadsDeletedByList": {"q3_leads": 3},
        "merges": [
            {"id": "7", "survivorId": "4", "mergedIds": ["5", "6"], "filled": {"phone_ext": "5"}, "createdAt": None}
        ],
        "leadIds": ["1", "2"],
        "leads": [{"id": "1", "list_id": "2", "first_name": "Ann", "custom": {"lead_source": "x"}}],
        "data": {"leads": [{"id": 1, "list_id": 2}]},
        "flag": False,
    }
    assert not api_shape_problems(document)
    assert api_shape_problems({"lead_id": 1, "leads": [{"id": 2}]}) == [
        "$.lead_id: snake_case key",
        "$.lead_id: id 1 is not a string",
        "$.leads[].id: id 2 is not a string",
    ]


def test_a_user_without_a_name_acts_as_uid_n_as_the_drop_folder_names_them(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container run with ``-u 1000`` and no USER: the uid has no passwd entry, and every command failed with
    a traceback of getpass (KeyError "uid not found"). The user is ``uid:1000``, the name the drop folder gives
    the owner of a file of that uid, so the lists one creates are the lists the other imports into."""
    cli_environment(monkeypatch, database_url, tmp_path / "home", user=None)
    for name in ("LEADS_USER", "LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> NoReturn:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    result = CliRunner().invoke(app, ["lists", "create", "fair", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owner"] == "uid:1000" == file_owner(1000)


def test_a_command_checks_migrations_and_keys_on_one_connection(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command applied the migrations on one connection and checked the keys on another (~8 ms each), as
    did each run (the database resource, also set up by the CLI's in-process imports and scorings)."""
    import psycopg

    from leads_pipeline.commands.common import environment
    from leads_pipeline.defs.resources import LeadsDatabase

    cli_environment(monkeypatch, database_url, tmp_path / "home")
    environment()  # anything left to apply or record, first
    opened: list[tuple[Any, ...]] = []
    real_connect = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counted)
    environment()
    assert len(opened) == 1
    LeadsDatabase(database_url=database_url).setup_for_execution(dg.build_init_resource_context())
    assert len(opened) == 2


def test_the_database_going_away_mid_import_is_one_line_and_the_import_reruns_once(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database ended the command's connection mid-import (a restart, `pg_terminate_backend`, an
    administrator): `leads import` printed psycopg's and Dagster's tracebacks. It says in one line that the
    database went away and to run the command again; the chunk it was writing is not half there, and the same
    command imports the file once."""
    from leads_pipeline.lib.store import imports as store

    leads.ok("lists", "create", "fair")
    real_merge_chunk = store.merge_chunk

    def ended_first(conn: psycopg.Connection[Any], **kwargs: Any) -> Any:
        with connect(database_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return real_merge_chunk(conn, **kwargs)

    monkeypatch.setattr(store, "merge_chunk", ended_first)
    monkeypatch.setattr(dg.RetryPolicy, "calculate_delay", lambda *_: 0)  # the step's 2 retries, without 2 + 4 s
    line = leads.fails("import", str(DEMO_FILE), "--list", "fair")
    assert line == (
        "error: the database went away during the command (terminating connection due to administrator command):"
        " once it is up again (`leads db start` for the embedded server), run the same command again; what it"
        " committed is kept, the rest is done then"
    )
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0, "the chunk is rolled back whole"
    monkeypatch.setattr(store, "merge_chunk", real_merge_chunk)
    done = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")
    assert done["status"] == "completed"
    assert sql_value(database_url, "SELECT count(*) FROM leads") == done["results"]["imported"] > 0


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server's log")
def test_a_server_process_killed_by_the_kernel_asks_for_more_memory_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container at its memory limit the kernel's OOM killer killed the import's server backend: the line
    said to run the same command again, which was killed the same way. It says what the server's log says, and to
    give the machine or container more memory first. On a server of its own: the kill restarts every session."""
    monkeypatch.setattr(runtime, "_SERVER_LOGS", {})
    home = Path(tempfile.mkdtemp(prefix="leads-test-oom-"))
    try:
        url = runtime.start_embedded_postgres(home)
        assert database_went_away("x").endswith(
            "once it is up again (`leads db start` for the embedded server), run the same command again; what it"
            " committed is kept, the rest is done then"
        )
        conn = psycopg.connect(url)
        backend = conn.info.backend_pid
        os.kill(backend, signal.SIGKILL)
        conn.close()
        deadline = time.monotonic() + 30
        while not runtime.killed_server_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        line = database_went_away("server closed the connection unexpectedly")
        assert line.startswith(
            "the database went away during the command (server closed the connection unexpectedly): the server's log"
            f" says 'client backend (PID {backend}) was terminated by signal 9: Killed', as the kernel kills the"
            " largest process when the memory of the machine or of its container runs out: give it more memory, then"
            " run the same command again"
        ), line
        while time.monotonic() < deadline:  # recovered (stopped while it recovers, the server does not stop)
            with contextlib.suppress(psycopg.OperationalError), psycopg.connect(url) as conn:
                break
            time.sleep(0.1)
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


def test_only_a_lost_connection_reads_as_the_database_going_away() -> None:
    """A lock timeout or a cancelled statement is the command's own error, not the database gone."""
    lost = psycopg.OperationalError("server closed the connection unexpectedly\n\tThis probably means ...")
    assert connection_lost(RuntimeError("step failed")) is None
    assert connection_lost(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")) is None
    assert connection_lost(psycopg.errors.QueryCanceled("canceling statement due to user request")) is None
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = lost
    assert connection_lost(wrapped) == "server closed the connection unexpectedly"
