"""The ``leads`` command as a user runs it: lists, dry runs, imports through Dagster, history, errors, undo, and
one-line errors (exit code 1, no traceback) for everything a user can get wrong."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psutil
import psycopg
import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from leads_pipeline import cli, launcher
from leads_pipeline.cli import app, readable_output
from leads_pipeline.commands import common
from leads_pipeline.lib.runtime import inbox_folder
from leads_pipeline.lib.signals import handlers_restored
from leads_pipeline.lib.store import db
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import (
    Leads,
    bidx,
    cli_environment,
    import_file,
    import_text,
    leads_in_fresh_interpreter,
    sql_value,
    survivors,
)


@pytest.fixture
def leads(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Leads:
    """The ``leads`` command on the test database, with everything the CLI derives from it set explicitly
    (so that nothing leaks between tests: prepare_environment writes to os.environ)."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    return Leads(CliRunner())


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_help_is_one_paragraph_of_plain_text() -> None:
    """Typer rewraps a help's first paragraph only: later ones kept the docstring's line breaks, so `leads dev
    --help` and `leads imports undo --help` printed ragged half lines, and `leads dev` the code's history (the
    why that a docstring keeps for readers goes after a form feed, which Typer does not show)."""
    commands = _commands(get_command(app), "leads")
    shown = {path: (command.help or "").partition("\f")[0].strip() for path, command in commands}
    assert len(shown) > 70, "every command and group"
    assert [path for path, text in shown.items() if "\n\n" in text or "``" in text] == []
    assert "action" in shown["leads sync errors"], "the columns it writes, as README lists them"
    result = CliRunner().invoke(app, ["dev", "--help"])
    assert result.exit_code == 0 and "exits 1 naming it" in result.output and "used to" not in result.output


def test_a_group_lists_each_command_s_summary_on_its_own_lines() -> None:
    """A group's list of commands showed each first paragraph with the docstring's line breaks (the credits
    line broke after "total," wherever the terminal ended) and the code's history after the form feed."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400"})
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│ ")}
    assert result.exit_code == 0 and "used to" not in result.output and "dagster dev" not in result.output
    assert "this month's total, which is everyone's" in rows["credits"]
    assert "the command exits 1 naming it." in rows["dev"]
    privacy = CliRunner().invoke(app, ["privacy", "--help"], env={"COLUMNS": "400"}).output
    assert any("person everywhere" in line and "suppress them" in line for line in privacy.splitlines())


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown database", 'database "no_such_db" does not exist'),
        ("closed port", "Connection refused"),
        ("not postgresql", "expected a postgresql://user:password@host:port/database URL"),
    ],
)
def test_a_wrong_database_url_is_one_line_without_its_password(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    parts = urlsplit(database_url)
    login = f"{parts.username}:s3cret-pw"
    host = parts.netloc.rsplit("@", 1)[-1]
    wrong = {
        "unknown database": parts._replace(netloc=f"{login}@{host}", path="/no_such_db"),
        "closed port": parts._replace(netloc=f"{login}@127.0.0.1:1", query=""),
        "not postgresql": parts._replace(scheme="mysql", netloc=f"{login}@{host}"),
    }[case]
    monkeypatch.setenv("DATABASE_URL", urlunsplit(wrong))
    line = leads.fails("lists", "ls")
    assert expected in line
    assert f"DATABASE_URL ({wrong.scheme}://{parts.username}:***@" in line
    assert "s3cret-pw" not in line


@pytest.mark.parametrize("wrong", ["host=127.0.0.1 port=1 password=s3cret-pw", "app:s3cret-pw@127.0.0.1:1/leads"])
def test_a_database_url_that_is_no_url_is_not_quoted(leads: Leads, monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    """libpq's keyword form (or a URL without its scheme) was quoted whole in the refusal, password and all."""
    monkeypatch.setenv("DATABASE_URL", wrong)
    line = leads.fails("lists", "ls")
    assert line == (
        "error: DATABASE_URL (not a URL, not quoted): expected a postgresql://user:password@host:port/database URL"
    )


def test_a_leads_home_that_cannot_be_created_is_one_line(
    leads: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``leads`` run from a folder the user cannot write (``/``, ``/usr/local``) makes ``./.leads`` there: it
    failed with a traceback of ``mkdir`` (PermissionError); a path through a file here, as root may write
    anywhere."""
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("LEADS_HOME", str(tmp_path / "a file" / ".leads"))
    line = leads.fails("lists", "ls")
    assert line == (
        f"error: cannot create the leads home {tmp_path / 'a file' / '.leads'} (Not a directory): run leads in"
        " the folder holding your .leads, or set LEADS_HOME"
    )


@pytest.mark.parametrize(
    ("netloc", "query", "problem"),
    [
        ("{user}:s3cret-pw@x/y%1@{host}", "", "invalid percent-encoded token"),
        ("{user}:s3cret-pw%40x%2Fy%251@{host}", "sslmode=disable&bogus=s3cret-pw", "invalid URI query parameter"),
        ("{user}:s3cret@q1zz@{host}", "", "a reserved character in the user name or password"),
        ("{user}:s3cret#q1zz@{host}", "", "a reserved character in the user name or password"),
        ("{user}:s3cret?q1zz@{host}", "", "a reserved character in the user name or password"),
        ("{user}:s3cret/q1zz@{host}", "", "a reserved character in the user name or password"),
        ("{user}@q1zz:s3cret@{host}", "", "a reserved character in the user name or password"),
        ("{user}:s3cret[q1zz@{host}", "", "invalid address"),
    ],
    ids=[
        *("password-not-percent-encoded", "unknown-parameter", "password-with-@", "with-#", "with-?"),
        *("with-/", "user-with-@", "with-["),
    ],
)
def test_a_database_url_psycopg_cannot_parse_is_one_line_without_its_password(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch, netloc: str, query: str, problem: str
) -> None:
    """psycopg's parse error came as a traceback quoting the URL from where it stopped making sense: the rest of
    a password with @, / or % written as it is. With @ but no % (``app:s3cret@q1zz@host``), psycopg read the
    host ``q1zz@host`` and its connection error quoted it; with # or ?, Python's parser named the URL with its
    password in clear, and with [ it failed in a traceback."""
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    wrong = parts._replace(netloc=netloc.format(user=parts.username, host=host), query=query)
    monkeypatch.setenv("DATABASE_URL", urlunsplit(wrong))
    line = leads.fails("lists", "ls")
    assert f"({problem}): write the password's reserved characters percent-encoded (@ as %40" in line
    assert "s3cret" not in line and "y%1" not in line and "q1zz" not in line


def test_dev_on_a_port_in_use_is_one_line_and_starts_nothing(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """The webserver failed to bind, took the daemon down with it, and `leads dev` exited 0 without a word. The line
    said to choose another port with `make dev PORT=N` alone, which an install from a wheel has not."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = leads.fails("dev", "--port", str(port))
    assert line == (
        f"error: 127.0.0.1:{port} is in use (another `leads dev`?); choose another port: `leads dev --port"
        f" {port + 1}` (`make dev PORT={port + 1}` in a checkout)"
    )


def test_dev_on_a_port_or_host_it_cannot_use_says_which(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port past 65535 (or below 1) ended in an OverflowError traceback, and a mistyped --host was called a
    port in use by another `leads dev`; the sandbox's ports were the same traceback."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    for command, expected in [
        (["dev", "--port", "70000"], "Invalid value for '--port': Input should be less than or equal to 65535"),
        (["dev", "--port", "0"], "Invalid value for '--port': Input should be greater than or equal to 1"),
        (["sandbox", "up", "--http-port", "70000"], "Invalid value for '--http-port': Input should be less than"),
    ]:
        result = leads.run(*command)
        assert result.exit_code == 2 and "Traceback" not in result.output, command
        assert expected in " ".join(result.stderr.replace("│", " ").split()), command
    line = leads.fails("dev", "--host", "no such host.invalid", "--port", "3000")
    assert line.startswith("error: --host 'no such host.invalid': not an address or host name ("), line


def _free_port() -> int:
    """A port nothing listens on, for `leads dev --port`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dev_refuses_a_default_region_that_is_no_region_and_starts_nothing(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads dev` started the UI and the daemon with LEADS_DEFAULT_REGION=XX, and the drop folder's sensor failed
    only once a file was dropped; it is refused in the line `leads import` says, before anything starts."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "XX")
    line = leads.fails("dev", "--port", str(_free_port()))
    assert line.startswith("error: LEADS_DEFAULT_REGION='XX' is not a country code phone numbers are known for;")


_DAGSTER_PROCESS = """
import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))  # as Dagster's webserver and daemon do
try:  # ready inside it: an interrupt right after the word ended the process by SIGINT, uncaught
    print("ready", flush=True)
    time.sleep(120)
except KeyboardInterrupt:
    sys.exit(3)
"""


@pytest.fixture(params=["in the foreground", "in the background"])
def dev_started(request: pytest.FixtureRequest) -> Iterator[None]:
    """`leads dev` started in a terminal, or in the background: SIGINT ignored, as a shell without job control
    starts a command there (``make dev &`` in a script), and SIGTERM too, as a Dagster run leaves it in such a
    process; both restored after."""
    ignored = (signal.SIGINT, signal.SIGTERM) if request.param == "in the background" else ()
    with handlers_restored(ignored, meanwhile=signal.SIG_IGN):
        yield


def _dev_with_stand_ins(
    leads: Leads, monkeypatch: pytest.MonkeyPatch, script: str, once_ready: Callable[[dict[str, Any]], None]
) -> tuple[Any, dict[str, subprocess.Popen[str]]]:
    """Run `leads dev` on processes running ``script`` in place of Dagster's, started as `leads dev` starts them;
    ``once_ready`` is called (in a thread) with them by name once both have said "ready"."""
    started: dict[str, subprocess.Popen[str]] = {}
    real_popen = subprocess.Popen

    def when_ready() -> None:
        for process in started.values():
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        once_ready(started)

    def stand_in(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        process = real_popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, **kwargs)
        started[Path(args[0]).name] = process
        if len(started) == 2:
            threading.Thread(target=when_ready).start()
        return process

    monkeypatch.setattr(subprocess, "Popen", stand_in)
    result = leads.run("dev", "--port", str(_free_port()))
    for process in started.values():
        assert process.stdout is not None
        process.stdout.close()
    return result, started


@pytest.mark.usefixtures("dev_started")
def test_dev_fails_naming_the_process_that_died_and_stops_the_other(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon died after starting (killed here), and `leads dev` went on serving the UI until it was stopped,
    then exited 0. Started in the background, it started both ignoring SIGINT, and so SIGTERM, which they handle
    as SIGINT: it asked the webserver to stop, and waited for good."""
    result, started = _dev_with_stand_ins(
        leads, monkeypatch, _DAGSTER_PROCESS, lambda started: started["dagster-daemon"].kill()
    )
    assert result.exit_code == 1 and result.stderr == (
        "error: the Dagster daemon exited on its own (exit code -9); the webserver is stopped; see its output above\n"
    )
    assert started["dagster-webserver"].returncode == 3, "stopped by its interrupt handler, not killed"


def test_dev_stops_its_processes_when_its_terminal_closes(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its processes run in a process group of their own, which the terminal does not signal: on SIGHUP `leads
    dev` stops them (each by its interrupt handler) and exits 0."""
    groups: dict[str, int] = {}

    def close_the_terminal(started: dict[str, subprocess.Popen[str]]) -> None:
        groups.update({name: os.getpgid(process.pid) for name, process in started.items()})
        os.kill(os.getpid(), signal.SIGHUP)

    result, started = _dev_with_stand_ins(leads, monkeypatch, _DAGSTER_PROCESS, close_the_terminal)
    assert result.exit_code == 0, result.output
    assert {name: process.returncode for name, process in started.items()} == {
        "dagster-webserver": 3,
        "dagster-daemon": 3,
    }
    assert groups == {name: process.pid for name, process in started.items()}


def test_dev_kills_a_process_that_does_not_stop(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """A webserver stuck in its shutdown held `leads dev` for good (and a second Ctrl-C ended it with a traceback,
    leaving both running): it is killed after `STOP_GRACE_SECONDS`, and the command says so."""
    monkeypatch.setattr(cli, "STOP_GRACE_SECONDS", 0.2)
    stuck = _DAGSTER_PROCESS.replace("signal.getsignal(signal.SIGINT)", "signal.SIG_IGN")
    result, started = _dev_with_stand_ins(leads, monkeypatch, stuck, lambda started: started["dagster-daemon"].kill())
    assert result.exit_code == 1 and result.stderr == (
        "error: the Dagster daemon exited on its own (exit code -9); the webserver did not stop within 0.2 s of "
        "SIGTERM and was killed; see its output above\n"
    )
    assert started["dagster-webserver"].returncode == -signal.SIGKILL


_DEV_IN_A_CHILD = """
import subprocess
import sys

from leads_pipeline import cli

real_popen = subprocess.Popen


def stand_in(args, **kwargs):
    if not args[0].endswith(("dagster-webserver", "dagster-daemon")):
        return real_popen(args, **kwargs)
    process = real_popen([sys.executable, "-c", sys.argv[2]], stdout=subprocess.DEVNULL, **kwargs)
    print("started", process.pid, flush=True)
    return process


subprocess.Popen = stand_in
cli.app(["dev", "--port", sys.argv[1]])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a parent-death signal is Linux's")
def test_dev_killed_outright_takes_its_processes_with_it(leads: Leads) -> None:
    """`leads dev` killed by SIGKILL (the kernel's OOM killer, an editor closing its terminal hard) left the
    webserver and daemon running: the UI still answered, the daemon ran the sensors, and the next `leads dev`
    said the port was in use. Its processes now get SIGTERM when it dies, however it dies."""
    dev = subprocess.Popen(
        [sys.executable, "-c", _DEV_IN_A_CHILD, str(_free_port()), _DAGSTER_PROCESS], stdout=subprocess.PIPE, text=True
    )
    assert dev.stdout is not None
    started: list[psutil.Process] = []
    try:
        while len(started) < 2:
            line = dev.stdout.readline()
            assert line, f"`leads dev` ended before starting both processes (exit code {dev.wait()})"
            if line.startswith("started "):
                started.append(psutil.Process(int(line.split()[1])))
        dev.kill()
        dev.wait()
        assert survivors(started, timeout_s=30) == [], "left running after `leads dev` was killed"
    finally:
        dev.kill()
        dev.stdout.close()
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


_COMPUTE_LOG = """
import os
import re
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

with LocalComputeLogManager(os.environ["LEADS_DAGSTER_STORAGE"]).capture_logs(["run", "step"]):
    print("Ana García, +34 912 345 678")
"""


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most accounts have (022), the one before restored after."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("usual_umask")
def test_the_files_of_dev_s_processes_and_of_commands_are_their_owner_s_only(
    leads: Leads, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Dagster's compute logs (a run's output: an import's errors preview, a failed lookup's error, people's names
    and numbers) and the leads home were made with the umask's modes, 0644 and 0755: readable by every account on
    a shared host. The processes `leads dev` starts (here one writing a compute log as a run does) and the
    command itself make them their owner's only."""
    real_popen = subprocess.Popen

    def stand_in(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return real_popen([sys.executable, "-c", _COMPUTE_LOG], stdout=subprocess.DEVNULL)

    monkeypatch.setattr(subprocess, "Popen", stand_in)
    leads.fails("dev", "--port", str(_free_port()))  # the stand-ins exit at once
    home = tmp_path / "home"
    made = [home, home / "inbox", home / "dagster", *(home / "dagster").rglob("*")]
    assert (home / "dagster" / "run" / "step.out").exists()
    assert {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) & 0o077 for p in made} == {
        str(p.relative_to(tmp_path)): 0 for p in made
    }


def test_psycopg_says_nothing_of_a_rollback_the_lost_database_failed(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A command's transaction ended by its own error while the database had gone away: psycopg's "error ignored in
    rollback of <psycopg.Transaction ...>: terminating connection due to administrator command" came ahead of the
    command's one line. The CLI dropped psycopg's pipeline and COPY warnings, not the transaction's, which are
    logged by a logger of their own (psycopg.transaction)."""
    readable_output()  # what every `leads` command runs first
    with contextlib.suppress(ValueError), psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SELECT 1")
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s, 10000)", (conn.info.backend_pid,))
        raise ValueError("the command's own error")
    assert conn.closed
    assert [record.getMessage() for record in caplog.records if "error ignored" in record.getMessage()] == []


def test_dev_says_the_uis_address_and_the_inbox_on_one_line(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written to a log file (80 columns), or to a narrow terminal, the inbox's path went onto a line of its own,
    and a path longer than the width was cut in pieces that could not be copied whole."""
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: real_popen([sys.executable, "-c", "pass"]))
    port = _free_port()
    result = leads.run("dev", "--port", str(port))  # both exit at once: `leads dev` says so and stops
    assert result.exit_code == 1 and "exited on its own" in result.stderr
    assert f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C to stop); inbox: {inbox_folder()}\n" in result.stdout


def test_the_uis_storage_connections_are_replaced_after_a_database_restart(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database restarted under `leads dev`: the webserver's pooled connections to Dagster's storage were
    dead, the next UI launch failed and the one after it left its run NOT_STARTED. The webserver `leads dev`
    starts (its pool set as that command line sets it) reads and writes its storage again after a restart: the
    server closing every connection, and the second a restart takes at least."""
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def stand_in(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(args)
        return real_popen([sys.executable, "-c", "pass"])  # exits at once: `leads dev` stops

    monkeypatch.setattr(subprocess, "Popen", stand_in)
    leads.fails("dev", "--port", str(_free_port()))
    [webserver] = [args for args in started if Path(args[0]).name == "dagster-webserver"]
    recycle = int(webserver[webserver.index("--db-pool-recycle") + 1]) if "--db-pool-recycle" in webserver else 3600
    with dg.DagsterInstance.get() as instance:
        instance.optimize_for_webserver(statement_timeout=15_000, pool_recycle=recycle, max_overflow=20)
        assert instance.get_runs(limit=1) == []  # the pools hold their connections now
        assert instance.get_latest_materialization_event(dg.AssetKey("lead_scores")) is None
        with connect(database_url, autocommit=True) as db:
            closed = db.execute(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert closed is not None and closed["n"] >= 2
        time.sleep(1.2)
        assert instance.get_runs(limit=1) == []
        assert instance.get_latest_materialization_event(dg.AssetKey("lead_scores")) is None


def test_db_url_prints_the_url_whole_on_one_line(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``psql "$(leads db url)"``: a URL longer than 80 characters (the socket folder of a leads home a few folders
    deep) was broken over two lines written to a pipe."""
    long_url = f"{database_url}{'&' if '?' in database_url else '?'}application_name={'nightly-export-' * 6}"
    monkeypatch.setenv("DATABASE_URL", long_url)
    assert len(long_url) > 100 and leads.ok("db", "url") == f"{long_url}\n"


def test_lists_create_and_show(leads: Leads) -> None:
    created = leads.json("lists", "create", "Spring Fair", "--dedupe", "phone", "--json")
    assert created["name"] == "Spring Fair"
    assert created["leadCount"] == 0
    assert created["settings"] == {"deduplication": "phone"}
    shown = leads.json("lists", "show", "spring fair", "--json")
    assert shown["listId"] == created["listId"]
    assert shown["leadCount"] == 0
    assert "Spring Fair" in leads.ok("lists", "show", "Spring Fair")


def test_lists_create_errors(leads: Leads) -> None:
    leads.ok("lists", "create", "fair")
    assert "already exists" in leads.fails("lists", "create", "FAIR")
    assert "--dedupe must be email, phone or both" in leads.fails("lists", "create", "other", "--dedupe", "name")
    assert "list 'nope': not found or not shared with you" in leads.fails("lists", "show", "nope", "--json")


def test_dry_run_shows_mapping_and_row_count_and_writes_nothing(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    plan = leads.json("import", str(DEMO_FILE), "--list", "fair", "--dry-run", "--json")

    assert plan["totalRows"] == 36
    with DEMO_FILE.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert list(plan["mapping"]) == header, "one entry per CSV column, in file order"
    assert plan["mapping"]["Email"] == "email"
    assert plan["mapping"]["Phone 1"] == "phone"
    assert plan["mapping"]["Customer Id"] is None
    assert {e["row"] for e in plan["sampleErrors"]} == {33, 35, 36}
    for table in ("leads", "imports", "import_errors", "batches"):
        assert sql_value(database_url, f"SELECT count(*) FROM {table}") == 0, table


def test_the_dry_run_and_the_import_name_a_relative_file_by_the_same_absolute_path(
    leads: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads import leads.csv --dry-run --json` gave the file as typed, the import's `--json` its absolute path
    (as the import records it): a script matching the dry run to the import had two names for one file."""
    shutil.copy(DEMO_FILE, tmp_path / "leads.csv")
    monkeypatch.chdir(tmp_path)
    leads.ok("lists", "create", "fair")
    recorded = str((tmp_path / "leads.csv").resolve())

    assert leads.json("import", "leads.csv", "--list", "fair", "--dry-run", "--json")["file"] == recorded
    assert leads.json("import", "leads.csv", "--list", "fair", "--json")["file"] == recorded


def test_dry_run_with_a_mapping_file(leads: Leads, tmp_path: Path) -> None:
    leads.ok("lists", "create", "fair")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("City: null\nCustomer Id: notes\n", encoding="utf-8")
    plan = leads.json("import", str(DEMO_FILE), "--list", "fair", "--mapping", str(mapping), "--dry-run", "--json")
    assert plan["mapping"]["City"] is None
    assert plan["mapping"]["Customer Id"] == "notes"

    mapping.write_text("City: town\n", encoding="utf-8")
    error = leads.fails("import", str(DEMO_FILE), "--list", "fair", "--mapping", str(mapping), "--dry-run")
    assert str(mapping) in error and "town" in error
    mapping.write_text("City: [unclosed\n", encoding="utf-8")  # PyYAML's own text: four lines and a caret
    error = leads.fails("import", str(DEMO_FILE), "--list", "fair", "--mapping", str(mapping), "--dry-run")
    assert error.startswith(f"error: {mapping}: invalid YAML in mapping file at line 2, column 1: expected ")


def test_commands_that_read_the_store_load_neither_pandas_nor_dagster_nor_provider_clients(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """`leads search`, `leads imports list`, `leads sync history`, `leads bulk export` and `leads merges list`
    loaded pandas, pyarrow and pandera (the import's preparation, through the bulk, import and privacy stores;
    the duplicate detection, through the merges store): ~150 MB and 0.8 s of CPU for a page of leads, where
    `leads lists show` takes 60 MB and 0.4 s; a search by country loaded them to read the country's name. Each
    command runs here in one fresh interpreter, as a user runs it, against the test database."""
    leads.ok("lists", "create", "fair")
    import_id = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")["importId"]
    with connect(database_url) as conn:
        lead_id = conn.execute("SELECT min(id) AS id FROM leads").fetchone()["id"]  # type: ignore[index]
    commands = [
        ["lists", "show", "fair", "--json"],
        ["imports", "list"],
        ["imports", "show", import_id],
        ["imports", "errors", import_id],
        ["search", "--list", "fair", "--where", "title ~ manager"],
        ["search", "--list", "fair", "--where", "country in Germany, us"],  # read as the import reads a country
        ["show", str(lead_id)],
        ["bulk", "export", "--list", "fair", "--out", str(tmp_path / "fair.csv")],
        ["sync", "history"],
        ["merges", "list"],
    ]
    _, loaded = leads_in_fresh_interpreter(
        commands, ("pandas", "pyarrow", "pandera", "numpy", "dagster", "google.genai", "apify_client")
    )
    assert loaded == []
    assert (tmp_path / "fair.csv").read_text().count("\n") == 34  # the header and the 33 leads


def test_import_then_show_errors_and_undo(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    status = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")

    assert status["status"] == "completed"
    assert status["results"] == {"imported": 33, "updated": 0, "skipped": 1, "errors": 2}
    assert status["progress"] == {"processed": 36, "total": 36, "percentage": 100.0}
    import_id = status["importId"]
    assert leads.json("lists", "show", "fair", "--json")["leadCount"] == 33

    shown = leads.json("imports", "show", import_id, "--json")
    assert shown == status
    assert "33 imported" in leads.ok("imports", "show", import_id)
    run = launcher.instance().get_run_by_id(status["dagsterRunId"])  # the command's in-process run
    assert run is not None and run.tags["leads/source"] == "cli"
    assert f"Dagster run {run.run_id}" in leads.ok("imports", "show", import_id)

    history = leads.json("imports", "list", "--json")
    assert [(h["importId"], h["list"], h["status"]) for h in history] == [(import_id, "fair", "completed")]
    assert leads.json("imports", "list", "--json", user="mallory") == []
    for command, subject in (
        (["show", import_id], f"import {import_id}"),
        (["errors", import_id, "--csv"], f"import {import_id}"),
        (["list", "--list", "fair"], "list 'fair'"),
    ):  # a stranger to the list learns neither the list behind an import nor who owns it
        refused = leads.fails("imports", *command, user="mallory")
        assert f"{subject}: not found or not shared with you" in refused, command
        assert "owner" not in refused and ("fair" in refused) == ("fair" in command), command

    errors_csv = leads.ok("imports", "errors", import_id, "--csv")
    rows = list(csv.DictReader(io.StringIO(errors_csv)))
    assert [(r["row"], r["severity"]) for r in rows] == [("33", "error"), ("35", "warning"), ("36", "error")]
    assert rows[1]["column"] == "Phone 1" and rows[1]["value"] == "not a phone"
    assert rows[2]["reason"] == "expected 12 fields, found 13"

    refused = leads.fails("imports", "undo", import_id, user="mallory")
    assert f"import {import_id}: not found or not shared with you" in refused
    undone = leads.ok("imports", "undo", import_id)
    assert "33 leads removed" in undone
    with connect(database_url) as conn:
        audited = [r["details"] for r in conn.execute("SELECT details FROM audit_log WHERE action = 'imports.undo'")]
    assert audited == [{"removed": 33, "restored": 0, "forced": False}]
    assert leads.json("lists", "show", "fair", "--json")["leadCount"] == 0
    assert leads.json("imports", "show", import_id, "--json")["status"] == "undone"
    assert f"import {import_id} was already undone" in leads.fails("imports", "undo", import_id)
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0


def test_imports_list_and_sync_history_say_when_there_is_none(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a first import (or sync), at 80 columns (a pipe, a newcomer's terminal) `leads imports list` and
    `leads sync history` printed nothing at all, their tables too wide even empty; wider, an empty table."""
    for width in (80, 200):
        monkeypatch.setattr(common, "console", Console(width=width))
        assert leads.ok("imports", "list") == "no imports\n"
        assert leads.ok("sync", "history") == "no sync runs\n"
    leads.ok("lists", "create", "fair")
    import_id = import_file(database_url, DEMO_FILE, "fair")["importId"]
    assert leads.ok("imports", "list", "--before", import_id) == f"no imports before import {import_id}\n"


def test_imports_list_shows_each_import_whole_at_80_columns(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an 80-column terminal (or a pipe) the table of ten columns cut the list, status, counts and date to a
    letter or two ("inte…", "200,…", "2026-…"). There each import takes two lines now, every value whole; a wide
    terminal keeps the table."""
    leads.ok("lists", "create", "fair")
    import_id = import_file(database_url, DEMO_FILE, "fair")["importId"]
    with connect(database_url) as conn:
        [created] = conn.execute("SELECT created_at FROM imports WHERE id = %s", (int(import_id),))
    when = f"{created['created_at']:%Y-%m-%d %H:%M}"

    monkeypatch.setattr(common, "console", Console(width=80))  # as a terminal (or pipe) of 80
    lines = leads.ok("imports", "list").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines == [
        f"{import_id}  demo_leads.csv into fair, {when}",
        "  completed, 36 rows: 33 imported, 0 updated, 1 skipped, 2 rejected",
    ]

    monkeypatch.setattr(common, "console", Console(width=160))
    [row] = [line for line in leads.ok("imports", "list").splitlines() if "demo_leads.csv" in line]
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == [str(import_id), "fair", "demo_leads.csv", "completed", "36", "33", "0", "1", "2", when]


def test_imports_list_pages_back_to_imports_older_than_the_newest_ones(leads: Leads, database_url: str) -> None:
    """`imports list` showed the newest 50 imports and nothing could show an older one: after a few months of
    daily files, the import to undo or to look into was out of reach unless its id was known. `--limit` shows
    more, `--before ID` the ones older than an import, and a full page says how to see the next."""
    ids = []
    for name in ("a", "b", "c"):
        leads.ok("lists", "create", name)
        ids.append(import_file(database_url, DEMO_FILE, name)["importId"])

    def listed(*args: str) -> list[str]:
        return [h["importId"] for h in leads.json("imports", "list", "--json", *args)]

    assert listed() == ids[::-1]
    assert listed("--limit", "2") == ids[:0:-1]
    assert listed("--limit", "2", "--before", ids[1]) == [ids[0]]
    assert listed("--list", "c", "--before", ids[2]) == []
    paged = leads.run("imports", "list", "--limit", "2")
    assert paged.exit_code == 0 and paged.stderr.strip() == f"more: --before {ids[1]}"
    assert leads.run("imports", "list", "--limit", "3").stderr == "", "the whole history fits: nothing more"


def test_the_import_progress_bar_draws_before_the_rows_are_counted_and_after(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal every `leads import` printed a TypeError traceback from its progress bar's thread, and showed
    no bar: the bar's first drawing formatted the row count as a number while it was None, before the file's
    rows were counted."""
    leads.ok("lists", "create", "fair")
    imported = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")
    rows = f"{imported['progress']['processed']}/{imported['progress']['total']} rows"
    terminal = io.StringIO()
    monkeypatch.setattr(cli, "errors", Console(file=terminal, force_terminal=True, width=120))
    for batch_key, shown in (("import-not-recorded-yet", "0/? rows"), (imported["batchId"], rows)):
        stop = _stop_once_shown(terminal, shown)
        cli._watch_progress(database_url, batch_key, stop)
        assert shown in terminal.getvalue()


def _stop_once_shown(terminal: io.StringIO, shown: str, timeout_s: float = 30) -> threading.Event:
    """An event set once ``shown`` is on the terminal (or after ``timeout_s``): the bar looks every 0.5 s, and on
    a loaded machine its first look came after a fixed 0.8 s stop."""
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while shown not in terminal.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_the_import_progress_bar_of_a_small_file_shows_its_rate_not_zero(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file's import is recorded complete by the bar's first look at it: one update, from which Rich
    knows no speed, and the bar ended on "36/36 rows 0 rows/s". Its rate is the rows over the bar's time."""
    leads.ok("lists", "create", "fair")
    imported = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")
    terminal = io.StringIO()
    monkeypatch.setattr(cli, "errors", Console(file=terminal, force_terminal=True, width=120))
    cli._watch_progress(database_url, imported["batchId"], _stop_once_shown(terminal, "36/36 rows"))
    rates = re.findall(r"36/36 rows\s+([\d,]+) rows/s", terminal.getvalue())
    assert rates and all(int(rate.replace(",", "")) > 0 for rate in rates), terminal.getvalue()


def test_an_import_starts_no_process_that_ctrl_c_would_make_print_a_traceback(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster captured the import step's output with a `tail` and a Python watcher per stream, in the terminal's
    process group: Ctrl-C printed a KeyboardInterrupt traceback from each watcher before the import's one line.
    The command's runs capture nothing: the step's output is the terminal's."""
    started: list[list[str]] = []
    popen = subprocess.Popen

    def recorded(args: Any, *rest: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        started.append([str(a) for a in args])
        return popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recorded)
    leads.ok("lists", "create", "fair")

    assert leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")["status"] == "completed"
    assert started == []


def test_an_interrupt_after_the_import_completed_reports_it_completed(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C as the import step stores its result, after the import completed: Dagster raises the interrupt out
    of the run, and `leads import` ended with its traceback and exit code 1, as if the import had not happened.
    It says the interrupt stopped nothing, and shows the completed import."""
    materialize = dg.materialize

    def interrupted_late(*args: Any, **kwargs: Any) -> dg.ExecuteInProcessResult:
        materialize(*args, **kwargs)
        raise dg.DagsterExecutionInterruptedError  # what the interrupt raises when the step stores its result

    monkeypatch.setattr(dg, "materialize", interrupted_late)
    leads.ok("lists", "create", "fair")

    result = leads.run("import", str(DEMO_FILE), "--list", "fair")
    assert result.exit_code == 0, result.output

    import_id = leads.json("imports", "list", "--json")[0]["importId"]
    assert result.stderr.strip() == f"the interrupt came after import {import_id} had completed: nothing was stopped"
    assert f"import {import_id} completed (36 rows)" in result.stdout
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 33


def test_the_errors_csv_is_formula_safe(leads: Leads, tmp_path: Path) -> None:
    """The problems file is opened in a spreadsheet to fix the rows: a cell the imported file had as a formula
    must not run there, as in an export; nor one after a ";", where Excel in most of Europe splits the cell."""
    leads.ok("lists", "create", "fair")
    path = tmp_path / "nasty.csv"
    path.write_text(
        'Email,Phone,First Name\nann@example.com,"=HYPERLINK(""http://x"")",Ann\nbob@example.com,"call;=1+1",Bob\n',
        encoding="utf-8",
    )
    status = leads.json("import", str(path), "--list", "fair", "--json")
    text = leads.ok("imports", "errors", status["importId"], "--csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["column"], row["value"]) for row in rows] == [
        ("Phone", '\'=HYPERLINK("http://x")'),
        ("Phone", "call;'=1+1"),
    ]
    assert '"call;\'=1+1"' in text, "every cell quoted"


def test_the_errors_are_shown_whole_at_80_columns(
    leads: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) the table cut the value to fix to a few letters, and to 50 at any width.
    There each problem takes two lines, every value whole."""
    leads.ok("lists", "create", "fair")
    phone = "call the front desk first, then ask for extension 4417 (not before 9 am CET)"
    path = tmp_path / "notes.csv"
    path.write_text(f'Email,Phone,First Name\nann@example.com,"{phone}",Ann\n', encoding="utf-8")
    status = leads.json("import", str(path), "--list", "fair", "--json")
    [row] = list(csv.DictReader(io.StringIO(leads.ok("imports", "errors", status["importId"], "--csv"))))
    monkeypatch.setattr(common, "console", Console(width=80))
    assert leads.ok("imports", "errors", status["importId"]).splitlines() == [
        f"row 2, column Phone: {phone}",
        f"  {row['severity']}: {row['reason']}",
    ]


def test_the_dry_run_and_the_first_problems_are_shown_whole_at_80_columns(
    leads: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) the dry run's mapping broke a long header over three lines, and its sample
    problems and the import's first problems cut the value to fix to a few words (and to 40 characters at any
    width). There each column and each problem takes two lines, every value whole; a wide terminal keeps the
    tables."""
    leads.ok("lists", "create", "fair")
    header = "Preferred Contact Channel For Follow Up After The Trade Fair"
    phone = "call the front desk first, then ask for extension 4417 (not before 9 am CET)"
    path = tmp_path / "notes.csv"
    path.write_text(f'Email,Phone,{header}\nann@example.com,"{phone}",fax\n', encoding="utf-8")
    plan = leads.json("import", str(path), "--list", "fair", "--dry-run", "--json")
    [problem] = plan["sampleErrors"]
    reasons = {s["column"]: s["reason"] for s in plan["suggestions"]}
    problem_lines = [f"row 2, column Phone: {phone}", f"  {problem['severity']}: {problem['reason']}"]
    narrow = Console(width=80)  # the tables and the file's line, as a pipe has them whatever the terminal
    monkeypatch.setattr(common, "console", narrow)
    monkeypatch.setattr(cli, "console", narrow)
    assert leads.ok("import", str(path), "--list", "fair", "--dry-run").splitlines() == [
        f"{path}: 1 row, encoding utf-8, delimiter ',', header on line 1",
        "Email -> email",
        f"  confidence 0.95: {reasons['Email']}",
        "Phone -> phone",
        f"  confidence 0.95: {reasons['Phone']}",
        f"{header} -> (custom)",
        f"  confidence 0.50: {reasons[header]}",
        "problems in the first 200 rows:",
        *problem_lines,
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    shown = leads.ok("import", str(path), "--list", "fair", "--dry-run")
    assert f"│ {header} │" in shown and f"│ {phone} │" in shown  # the tables
    monkeypatch.setattr(common, "console", narrow)
    lines = leads.ok("import", str(path), "--list", "fair").splitlines()
    at = lines.index("first problems:")
    assert lines[at + 1 : at + 3] == problem_lines
    assert lines[at + 3].startswith("all of them: leads imports errors ")


def test_undo_needs_the_editor_role_where_the_imports_leads_are_now(leads: Leads) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "vault")
    import_id = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")["importId"]
    leads.ok("bulk", "move", "--to", "vault", "--list", "fair", "--where", "country = ES")
    leads.ok("lists", "share", "fair", "ana", "--role", "editor")
    refused = leads.fails("imports", "undo", import_id, "--force", user="ana")
    wrote = f"a list holding leads import {import_id} wrote: not found or not shared with you"
    assert wrote in refused and "vault" not in refused
    assert leads.json("lists", "show", "vault", "--json")["leadCount"] == 1, "nothing was undone"


def test_an_unknown_default_region_is_one_line_and_records_no_import(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    for extra in ([], ["--dry-run"]):
        error = leads.fails("import", str(DEMO_FILE), "--list", "fair", "--default-region", "XX", *extra)
        assert "default region 'XX' is not a country code" in error
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 0


def test_leads_default_region_reads_national_numbers_unless_the_option_gives_one(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``--default-region`` set the region, so a UK team's `020 7946 0958` without a country was a warning
    (kept raw) unless every command repeated it: LEADS_DEFAULT_REGION sets it, the option still wins, and a value
    that is no region is refused in one line naming the variable before anything is recorded."""
    leads.ok("lists", "create", "uk")
    path = tmp_path / "uk.csv"
    path.write_text("email,phone\njohn@x.uk,020 7946 0958\n")
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "XX")
    for extra in ([], ["--dry-run"]):
        error = leads.fails("import", str(path), "--list", "uk", *extra)
        assert "LEADS_DEFAULT_REGION='XX' is not a country code" in error and len(error.strip().splitlines()) == 1
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 0
    assert "LEADS_DEFAULT_REGION='XX'" in leads.fails("bulk", "set", "phone", "020 7946 0957", "--list", "uk")

    monkeypatch.setenv("LEADS_DEFAULT_REGION", "gb")
    leads.ok("import", str(path), "--list", "uk")
    assert [lead["phone"] for lead in leads.json("search", "--json")["leads"]] == ["+442079460958"]
    leads.ok("bulk", "set", "phone", "020 7946 0957", "--list", "uk")
    assert [lead["phone"] for lead in leads.json("search", "--json")["leads"]] == ["+442079460957"]
    leads.ok("bulk", "set", "phone", "030 1234567", "--list", "uk", "--default-region", "DE")
    assert [lead["phone"] for lead in leads.json("search", "--json")["leads"]] == ["+49301234567"]


def test_import_into_an_unknown_list_is_one_line_and_writes_nothing(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    for extra in ([], ["--dry-run"], ["--json"]):
        error = leads.fails("import", str(DEMO_FILE), "--list", "nope", *extra)
        assert "list 'nope': not found or not shared with you" in error
        assert "fair" not in error  # names no other list: which lists exist is no one else's business
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 0
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b"Email,Name\n", "only a header row"),
        (b"\x00\x01\x02\x03PK\x03\x04" * 50, "binary"),
        (b"Email,Name,EMAIL\na@example.com,Ann,b@example.com\n", "duplicate header name"),
        (b'Email,Notes\nu1@x.com,"unterminated\nu2@x.com,fine\n', "line 2: a quote opens a field that is never closed"),
        (
            gzip.compress(b"Email,Name\na@example.com,Ann\n", mtime=0),
            "gzip-compressed, not CSV text; decompress it first",
        ),
    ],
    ids=[
        "empty",
        "header-only",
        "binary",
        "duplicate-headers",
        "unterminated-quote",
        "gzip",
    ],  # the same in each worker
)
def test_import_of_a_bad_file_is_one_line_and_writes_nothing(
    leads: Leads, database_url: str, tmp_path: Path, content: bytes, problem: str
) -> None:
    leads.ok("lists", "create", "fair")
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    for extra in ([], ["--dry-run"], ["--json"]):
        error = leads.fails("import", str(path), "--list", "fair", *extra)
        assert str(path) in error and problem in error
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 0
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0


def test_import_of_a_missing_file_is_one_line(leads: Leads, tmp_path: Path) -> None:
    leads.ok("lists", "create", "fair")
    missing = tmp_path / "missing.csv"
    error = leads.fails("import", str(missing), "--list", "fair")
    assert str(missing) in error and "no such file" in error


def test_import_of_standard_input_or_a_pipe_says_it_needs_a_file(leads: Leads, tmp_path: Path) -> None:
    """``curl ... | leads import - --list X`` or ``leads import <(curl ...)`` in a script: "no such file; check the
    path", of a path that was there."""
    leads.ok("lists", "create", "fair")
    fifo = tmp_path / "export.csv"
    os.mkfifo(fifo)
    for path in ("-", str(fifo)):
        for extra in ([], ["--dry-run"]):
            error = leads.fails("import", path, "--list", "fair", *extra)
            assert error.startswith(f"error: {path}: standard input, a pipe or a device is no file to import"), error
            assert error.endswith("save it to a file and import that")


def test_import_of_a_directory_says_it_is_one(leads: Leads, tmp_path: Path) -> None:
    leads.ok("lists", "create", "fair")
    for extra in ([], ["--dry-run"]):
        error = leads.fails("import", str(tmp_path), "--list", "fair", *extra)
        assert f"{tmp_path}: this is a directory, not a file" in error


def test_import_summary_without_problems_ends_without_a_colon(leads: Leads, tmp_path: Path) -> None:
    leads.ok("lists", "create", "fair")
    path = tmp_path / "clean.csv"
    path.write_text("Email,First Name\nann@example.com,Ann\n", encoding="utf-8")
    output = leads.ok("import", str(path), "--list", "fair")
    assert "  0 rejected, 0 warnings\n" in output
    # one line a log can be grepped, which an 80-column wrap broke before "or earlier in the file"
    assert (
        "  0 skipped: duplicates (by the list's dedupe key) of a lead already in the list or earlier in the file\n"
        in output
    )
    assert "first problems" not in output


def test_an_update_import_says_its_skipped_rows_changed_nothing(leads: Leads, tmp_path: Path) -> None:
    """With --on-duplicate update, a row found in the list is skipped when it brings no new value: the summary
    called the 10,000 rows of a file imported again "skipped: duplicates", as with skip, which read as the update
    not having happened; `imports show` said the same."""
    leads.ok("lists", "create", "fair")
    path = tmp_path / "fair.csv"
    path.write_text("Email,First Name\nann@example.com,Ann\nbob@example.com,Bob\n", encoding="utf-8")
    leads.ok("import", str(path), "--list", "fair")
    path.write_text("Email,First Name\nann@example.com,Ann\nbob@example.com,Robert\n", encoding="utf-8")
    status = leads.json("import", str(path), "--list", "fair", "--on-duplicate", "update", "--json")
    assert (status["results"]["updated"], status["results"]["skipped"], status["onDuplicate"]) == (1, 1, "update")
    line = "  1 skipped: already in the list or earlier in the file, with no new value for the lead\n"
    assert line in leads.ok("imports", "show", status["importId"])
    skipped = leads.ok("import", str(path), "--list", "fair", "--on-duplicate", "update")
    assert "  2 skipped: already in the list or earlier in the file, with no new value for the lead\n" in skipped


def test_bad_options_and_unknown_imports_are_one_line(leads: Leads) -> None:
    leads.ok("lists", "create", "fair")
    assert "--on-duplicate must be skip or update" in leads.fails(
        "import", str(DEMO_FILE), "--list", "fair", "--on-duplicate", "merge"
    )
    for command in ("show", "errors", "undo"):
        assert "import 4242: not found or not shared with you" in leads.fails("imports", command, "4242")


def test_a_strangers_refusal_of_an_import_is_the_refusal_of_one_that_does_not_exist(leads: Leads) -> None:
    """``imports show|errors|undo`` of another user's import named its list and owner ("user 'mallory' is not a
    member of list 'fair' ... an owner such as 'alice' can grant it") and, for undo, its status: now a stranger to
    the list reads what an unknown import id gives, and an import's list is never named to them."""
    leads.ok("lists", "create", "fair")
    import_id = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")["importId"]
    unknown = str(int(import_id) + 1000)
    for command in (["show"], ["errors", "--csv"], ["undo", "--force"]):
        refused = leads.fails("imports", command[0], import_id, *command[1:], user="mallory")
        missing = leads.fails("imports", command[0], unknown, *command[1:], user="mallory")
        assert refused.replace(import_id, unknown) == missing, command


def test_rerun_with_a_different_mapping_after_a_failed_import_uses_the_new_mapping(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an import fails, the user fixes the mapping and runs the command again: the leads must be stored
    with the mapping given now, not silently with the one of the failed attempt."""
    from leads_pipeline.lib.store import imports as store

    leads.ok("lists", "create", "fair")

    def broken_merge(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store, "merge_chunk", broken_merge)
        with pytest.raises(RuntimeError):
            import_file(database_url, DEMO_FILE, "fair", batch_id="import-fair-failed")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("City: null\n", encoding="utf-8")
    status = leads.json("import", str(DEMO_FILE), "--list", "fair", "--mapping", str(mapping), "--json")
    assert status["status"] == "completed"
    assert status["mapping"]["City"] is None
    with connect(database_url) as conn:
        ana = conn.execute(
            "SELECT city, custom FROM leads WHERE email_bidx = %s", (bidx("ana.garcia@acme.es"),)
        ).fetchone()
    assert ana is not None
    assert ana["city"] is None and ana["custom"]["City"] == "Madrid"


def test_an_import_of_one_row_is_listed_as_1_row(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns an import of one row was listed as "completed, 1 rows: ..."."""
    leads.ok("lists", "create", "one")
    import_text(database_url, tmp_path / "one.csv", "email,first_name\nsolo@example.com,Solo\n", "one")
    monkeypatch.setattr(common, "console", Console(width=80))
    assert "  completed, 1 row: 1 imported, 0 updated, 0 skipped, 0 rejected" in leads.ok("imports", "list")


def test_a_command_names_its_database_sessions_after_itself_never_its_arguments(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_stat_activity showed no application_name: an operator could not tell which command held a connection
    or a lock. A command's sessions are named ``leads <command>``, without the arguments (a person searched for)."""
    monkeypatch.delenv("PGAPPNAME", raising=False)
    names: list[str] = []
    opened = connect

    def watched(url: str, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
        conn = opened(url, **kwargs)
        query = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        names.append(str(conn.execute(query).fetchone()["application_name"]))  # type: ignore[index]
        return conn

    monkeypatch.setattr(db, "connect", watched)  # the commands import it when they run
    leads.ok("imports", "list")
    assert names and set(names) == {"leads imports list"}
    names.clear()
    leads.ok("search", "Ada Lovelace")
    assert names and set(names) == {"leads search"}


def test_names_paths_and_values_in_brackets_are_printed_as_written(leads: Leads, tmp_path: Path) -> None:
    """Lines were printed as rich markup with the names, paths and values in them: `leads lists create '[/x] Leads
    [red]EMEA'` created the list, then stopped with a MarkupError traceback ("closing tag '[/x]' ... doesn't match
    any open tag"), and 'Fair [red]2026' was said as "created list Fair 2026", the rest in red. Every line says
    them as written, as the tables do: create, a dry run, a refused mapping (its error line quotes the file's
    header), the import of a file named 'leads [v2].csv' (a value warned of), show, search, the enrichment's
    template and settings."""
    name = "[/x] Leads [red]EMEA"

    def ok(*args: str) -> str:
        result = leads.run(*args)
        assert result.exit_code == 0 and result.exception is None, result.output
        assert "Traceback" not in result.output and "Traceback" not in result.stderr
        return result.stdout

    assert re.fullmatch(rf"created list {re.escape(name)} \(id \d+, dedupe by email\)\n", ok("lists", "create", name))
    assert ok("lists", "create", "Fair [red]2026").startswith("created list Fair [red]2026 (id ")
    data = tmp_path / "leads [v2].csv"
    data.write_text(
        "Email [work],First Name,Company\n[/x]@bad,[/b]Ann,Acme\nann@acme.example,[/b]Ann,[red]Acme[/red] GmbH\n",
        encoding="utf-8",
    )
    planned = ok("import", str(data), "--list", name, "--dry-run")
    assert planned.startswith(f"{data}: 2 rows, encoding utf-8, delimiter ',', header on line 1\n")
    mapping = tmp_path / "mapping [1].yaml"
    mapping.write_text('"[/x] column": email\n', encoding="utf-8")
    refused = leads.fails("import", str(data), "--list", name, "--mapping", str(mapping))
    assert refused == (
        f"error: {mapping}: column '[/x] column' is not in the file's header. "
        "Expected one of: 'Email [work]', 'First Name', 'Company'"
    )
    mapping.write_text('"Email [work]": email\n', encoding="utf-8")
    imported = ok("import", str(data), "--list", name, "--mapping", str(mapping))
    assert "  2 imported as new leads\n" in imported and "  0 rejected, 1 warning:\n" in imported
    assert "Email [work]" in imported and "[/x]@bad" in imported  # the value warned of and its column
    assert name in ok("lists", "show", name)
    lead = leads.json("search", "--list", name, "--json")["leads"][0]
    assert ok("show", lead["id"]).startswith(f"lead {lead['id']} in {name}: stage new\n")
    found = ok("search", "--list", name)
    assert f"[/b]Ann in {name}" in found and "[red]Acme[/red] GmbH" in found
    template = tmp_path / "template [t].yaml"
    template.write_text("name: '[/t] fair'\nsources: [phone, linkedin]\n", encoding="utf-8")
    assert ok("templates", "validate", str(template)).startswith(f"{template}: OK (template [/t] fair, sources ")
    estimate = ok("enrich", "--list", name, "--template", str(template), "--estimate")
    assert "2 leads, template [/t] fair: ~" in estimate
    assert ok("enrich-after-import", name).startswith(f"enrichAfterImport for list {name}: on (")
    assert leads.fails("lists", "show", "[/x] nope").startswith("error: list '[/x] nope': not found")


def test_python_dash_m_leads_pipeline_runs_the_leads_command() -> None:
    """Where the venv's scripts folder is not on PATH, ``python -m leads_pipeline`` is the ``leads`` command."""
    shown = subprocess.run(
        [sys.executable, "-m", "leads_pipeline", "lists", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage: leads lists" in shown.stdout
    assert "create" in shown.stdout


def test_every_listing_answers_to_ls_and_to_list() -> None:
    """`leads lists ls` and `leads jobs ls` but `leads imports list` and `leads merges list`: `leads jobs list`
    failed with "No such command 'list'". Each group's listing answers to both names (the other one hidden)."""
    listings = {
        path: sorted(set(command.commands) & {"ls", "list"})
        for path, command in _commands(get_command(app), "leads")
        if set(getattr(command, "commands", {})) & {"ls", "list"}
    }
    assert {"leads lists", "leads imports", "leads merges", "leads jobs"} <= set(listings)
    assert all(names == ["list", "ls"] for names in listings.values()), listings
    assert "ls" in CliRunner().invoke(app, ["jobs", "--help"]).stdout
    assert " list " not in CliRunner().invoke(app, ["jobs", "--help"]).stdout, "the alias is hidden"
