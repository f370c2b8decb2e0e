"""Helpers shared by the test modules: importing a file the way the pipeline does, without Dagster; the
environment the ``leads`` command runs in; connecting as another database user; a web server on 127.0.0.1 that
webhooks and downloads are sent to."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psutil
import psycopg
import pytest
import urllib3.util.connection
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from typer.testing import CliRunner, Result

from leads_pipeline.cli import app
from leads_pipeline.commands.common import AS_STORED_KEYS, ID_LISTS, ID_MAPS, keeps_keys
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.lib.importer import AfterMerge, Alongside, ImportOptions, run_import
from leads_pipeline.lib.prepare import OnDuplicate
from leads_pipeline.lib.runtime import PROJECT_ROOT, dagster_postgres_url
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.enrichment import Job, create_job, set_list_settings
from leads_pipeline.lib.store.migrations import apply_migrations, discover, sql_dir
from leads_pipeline.sandbox.http.serve import serve_in_thread


@contextlib.contextmanager
def database_before(postgres_server: str, version: int, scratch: Path) -> Iterator[str]:
    """The URL of a new database migrated up to, not including, migration ``version`` (to store rows as an
    earlier version did, then apply the rest); dropped afterwards."""
    name = f"before_{version:03d}_{os.getpid()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    before = scratch / f"sql_before_{version:03d}"
    before.mkdir()
    for migration in discover(sql_dir()):
        if migration.version < version:
            shutil.copy(migration.path, before)
    apply_migrations(url, before)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def sql_rows(database_url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    """Run one statement on a connection of its own, committed: its rows (sealed values opened), none for a
    statement that returns none."""
    with connect(database_url) as conn:
        cursor = conn.execute(query, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def sql_value(database_url: str, query: str, *params: Any) -> Any:
    """The value of a query that must return one row of one column."""
    [row] = sql_rows(database_url, query, *params)
    [value] = row.values()
    return value


def live_leads(database_url: str, list_id: int | None = None) -> int:
    """How many leads are stored and not deleted, in all lists or in one."""
    if list_id is None:
        return int(sql_value(database_url, "SELECT count(*) FROM leads WHERE deleted_at IS NULL"))
    return int(sql_value(database_url, "SELECT count(*) FROM leads WHERE list_id = %s AND deleted_at IS NULL", list_id))


def connect_as(database_url: str, user: str) -> str:
    """``database_url`` with ``user`` as its login (the embedded server trusts local connections)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))


def import_file(
    database_url: str,
    path: Path,
    list_name: str = "prospects",
    *,
    batch_id: str | None = None,
    on_duplicate: OnDuplicate = "skip",
    workers: int = 1,
    chunk_rows: int = 50_000,
    default_region: str = "US",
    after_merge: AfterMerge | None = None,
    alongside_index_build: Alongside | None = None,
) -> dict[str, Any]:
    """``run_import`` in this process (one worker unless asked), as user "tester"; returns the import status."""
    return run_import(
        database_url,
        batch_id=batch_id or f"batch-{path.stem}-{time.monotonic_ns()}",
        path=path,
        list_name=list_name,
        options=ImportOptions(
            on_duplicate=on_duplicate, workers=workers, chunk_rows=chunk_rows, default_region=default_region
        ),
        user="tester",
        after_merge=after_merge,
        alongside_index_build=alongside_index_build,
    )


def import_text(
    database_url: str, path: Path, text: str, list_name: str = "prospects", **options: Any
) -> dict[str, Any]:
    """Write ``text`` to ``path`` (UTF-8) and import it as ``import_file`` does; returns the import status."""
    path.write_text(text, encoding="utf-8")
    return import_file(database_url, path, list_name, **options)


def await_lock_wait(database_url: str, timeout_s: float = 20.0) -> None:
    """Return once a session of the test database waits for a lock: the concurrent writer a test started in a
    thread has reached the row or list another of its transactions holds."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting is not None and waiting[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"no session waited for a lock within {timeout_s} s")


def service_bypasses_row_security(conn: psycopg.Connection[dict[str, Any]]) -> bool:
    """Whether this connection's role is the explicit service role: BYPASSRLS (or superuser), or the owner of
    the leads table (which the policies do not restrict unless FORCE is set, and it is not)."""
    row = conn.execute(
        "SELECT r.rolbypassrls OR r.rolsuper OR c.relowner = r.oid AS bypasses FROM pg_roles r,"
        " pg_class c WHERE r.rolname = current_user AND c.oid = 'leads.leads'::regclass"
    ).fetchone()
    return bool(row and row["bypasses"])


T = TypeVar("T")


def while_uncommitted(
    database_url: str, hold: Callable[[psycopg.Connection[Any]], object], action: Callable[[], T]
) -> T:
    """Run ``action`` (a writer opening its own connection) in a thread while ``hold`` has written in another
    transaction (a delete, a merge, a bulk edit), committed once ``action`` waits for its lock; returns what
    ``action`` returned and raises what it raised."""
    results: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            results.append(action())
        except BaseException as exc:
            failed.append(exc)

    with connect(database_url) as holding:
        holding.execute("SELECT 1")  # one transaction around what ``hold`` writes, as its command's
        hold(holding)
        thread = threading.Thread(target=run)
        thread.start()
        try:
            await_lock_wait(database_url)
        finally:
            holding.commit()
            thread.join()
    if failed:
        raise failed[0]
    return results[0]


def write_while_deleted(database_url: str, lead_id: int, write: Callable[[], T]) -> T:
    """``write`` run while another transaction deletes the lead, as ``leads imports undo`` or a purge does
    (``while_uncommitted``)."""
    return while_uncommitted(database_url, lambda c: c.execute("DELETE FROM leads WHERE id = %s", (lead_id,)), write)


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    """The description of the run's first step failure: what a ``dg.Failure`` raised by the step said."""
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None, "the step failed without a dg.Failure"
    return str(failure.description)


def materialize_batch(
    assets: Sequence[dg.AssetsDefinition],
    batch: str | None,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` in this process for the batch (a partition the instance is given if it lacks it),
    each op with its ``config`` by name; Dagster's warnings about its preview APIs are silenced."""
    if batch and batch not in instance.get_dynamic_partitions(BATCHES):
        instance.add_dynamic_partitions(BATCHES, [batch])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            list(assets),
            partition_key=batch,
            instance=instance,
            resources=dict(resources),
            run_config={"ops": {name: {"config": dict(c)} for name, c in (config or {}).items()}},
            tags=tags,
            raise_on_error=raise_on_error,
        )


@contextlib.contextmanager
def instance_of_a_run_at_once() -> Iterator[dg.DagsterInstance]:
    """A test instance for one of several runs at once in this process's threads, opened and closed in its
    run's thread (its SQLite storage is the thread's).

    Dagster starts each run of an instance with settings (a test instance's turn telemetry off) by configuring the
    ``python_logs`` handlers of the instance with ``logging.config.dictConfig``, even when there are none: that
    holds logging's module lock while it flushes and closes every handler of the process, among them the other
    run's event-log handler, whose thread holds that handler's lock while SQLAlchemy, storing the event, waits for
    the module lock (to read a logger's level): both runs hung for ever. This instance has no such handlers and
    leaves logging alone. ``DAGSTER_HOME`` stays as it is: each of two instances setting it on open and putting
    back what it found on close leaves it naming the first one's deleted folder when the first closes first. Nor
    are a step's stdout and stderr captured: each step pointed the process's file descriptors at its log file and
    put back what it found, and after the first run ended, the other's output went to the first's file, never to
    the test's captured output."""
    overrides = {"compute_logs": {"module": NoOpComputeLogManager.__module__, "class": "NoOpComputeLogManager"}}
    with dg.instance_for_test(overrides, set_dagster_home=False) as instance, pytest.MonkeyPatch.context() as patch:
        patch.setattr(instance, "get_yaml_python_handlers", list)
        yield instance


def enrich_after_import(
    conn: psycopg.Connection[dict[str, Any]],
    list_id: int,
    *,
    notify_url: str | None = None,
    priority: str = "normal",
    max_credits: float | None = None,
    template: str = "basic",
) -> None:
    """Have the list enriched after each import, from the company source with the template (basic: free)."""
    set_list_settings(
        conn,
        list_id,
        enrich_after_import=True,
        sources=["company"],
        template=template,
        priority=priority,
        max_credits=max_credits,
        notify_url=notify_url,
    )


def company_job(
    conn: psycopg.Connection[dict[str, Any]],
    batch_id: str,
    *,
    notify_url: str | None,
    template: str = "basic",
    plan: dict[str, Any] | None = None,
) -> Job:
    """A queued job enriching the batch from the company source, created by "tester": ``plan`` is its estimate
    (``jobs.estimate``), whose leads it queues; by default nothing is estimated or queued."""
    plan = plan or {"estimatedCredits": 0, "estimatedTime": 0}
    return create_job(
        conn,
        batch_id,
        sources=["company"],
        template=template,
        overwrite=False,
        priority="normal",
        max_credits=None,
        estimate=plan,
        leads_queued=plan.get("leads", 0),
        notify_url=notify_url,
        created_by="tester",
    )


def stored(**fields: Any) -> dict[str, Any]:
    """Lead column values as the store writes them: emails, phones and street sealed, with their blind indexes
    (for tests that write leads with plain SQL)."""
    from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, lead_columns

    columns: dict[str, Any] = {}
    for name, value in fields.items():
        columns.update(lead_columns(name, value) if name in SEALED_FIELDS else {name: value})
    return columns


def set_clause(**fields: Any) -> tuple[str, list[Any]]:
    """``SET`` assignments and their parameters for ``stored(**fields)``."""
    columns = stored(**fields)
    return ", ".join(f"{name} = %s" for name in columns), list(columns.values())


def bidx(value: str, field: str = "email") -> str:
    """The blind index a sealed field is looked up by: ``WHERE email_bidx = %s``."""
    from leads_pipeline.lib.privacy.crypto import blind_index

    digest = blind_index(field, value)
    assert digest is not None
    return digest


SANDBOX_RATE = 1000.0
"""The sandbox limits no provider's rate unless a test asks: the stages pace through their keys' buckets, as they
do in production, at a rate that never holds a call back (the defaults would make a stage of 300 leads wait)."""

SANDBOX_PACING: Final = {
    variable: str(SANDBOX_RATE)
    for variable in (
        "ZEROBOUNCE_REQUESTS_PER_SECOND",
        "NEVERBOUNCE_REQUESTS_PER_SECOND",
        "TWILIO_REQUESTS_PER_SECOND",
        "APIFY_REQUESTS_PER_SECOND",
    )
}
"""The same for the ``leads`` command, which reads the rates from the environment (``defs/resources.py``): at the
providers' default rates one command's test of enrichment waited 17 s on its buckets."""


def cli_environment(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    home: Path,
    *,
    user: str | None = "tester",
    extra: dict[str, str] | None = None,
) -> None:
    """The environment of the ``leads`` command on the test database, with everything it derives set explicitly
    (``prepare_environment`` writes to ``os.environ``, so nothing may leak between tests): the leads home and
    its inbox, Dagster's instance and storage on the same database, the acting user, the providers' pacing at
    :data:`SANDBOX_RATE`, and ``extra`` (the sandbox's provider endpoints, a CRM folder)."""
    for name, value in {
        "DATABASE_URL": database_url,
        "LEADS_HOME": str(home),
        "LEADS_INBOX": str(home / "inbox"),
        "DAGSTER_HOME": str(PROJECT_ROOT),
        "DAGSTER_PG_URL": dagster_postgres_url(database_url),
        "LEADS_DAGSTER_STORAGE": str(home / "dagster"),
        **({"LEADS_USER": user} if user else {}),
        **SANDBOX_PACING,
        **(extra or {}),
    }.items():
        monkeypatch.setenv(name, value)


_FRESH_PROBE = """
import json, sys
from leads_pipeline.cli import app
commands, modules = json.loads(sys.argv[1])
codes = [app(args, standalone_mode=False) for args in commands]
print(json.dumps({"codes": codes, "loaded": [name for name in modules if name in sys.modules]}))
"""


def leads_in_fresh_interpreter(commands: Sequence[Sequence[str]], modules: Sequence[str]) -> tuple[str, list[str]]:
    """Run ``leads`` commands one after the other in a new interpreter, as a user runs them (the environment's
    database and user); each must succeed. Their output, and which of ``modules`` they loaded: the test session
    itself has loaded every module already."""
    run = subprocess.run(
        [sys.executable, "-c", _FRESH_PROBE, json.dumps([commands, modules])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr  # what failed, not only that it did
    *output, last = run.stdout.splitlines()
    report = json.loads(last)
    assert report["codes"] == [None] * len(commands), run.stderr
    return "\n".join(output), report["loaded"]


@dataclass
class Leads:
    """Runs ``leads ...`` as ``user`` (default "tester", the owner of what the tests create)."""

    runner: CliRunner

    def run(self, *args: str, user: str = "tester", stdin: str | None = None) -> Result:
        return self.runner.invoke(app, list(args), env={"LEADS_USER": user}, input=stdin)

    def ok(self, *args: str, user: str = "tester", stdin: str | None = None) -> str:
        result = self.run(*args, user=user, stdin=stdin)
        assert result.exit_code == 0, f"leads {' '.join(args)}: {result.stderr or result.output}"
        return result.stdout

    def json(self, *args: str, user: str = "tester") -> Any:
        """The command's JSON output, which must have the API's shape (``api_shape_problems``)."""
        document = json.loads(self.ok(*args, user=user))
        assert not api_shape_problems(document), f"leads {' '.join(args)}: {api_shape_problems(document)}"
        return document

    def fails(self, *args: str, user: str = "tester", stdin: str | None = None) -> str:
        """Run a command that must fail with one ``error:`` line (after the question it asked, given ``stdin``),
        no traceback and no exception escaping it (one that did would exit 1 in the test runner too, its traceback
        unseen); return that line."""
        result = self.run(*args, user=user, stdin=stdin)
        assert result.exit_code == 1, result.output
        assert not isinstance(result.exception, Exception), repr(result.exception)
        assert "Traceback" not in result.output and "Traceback" not in result.stderr
        _, asked, answered = result.stderr.rpartition("[y/N]: ")
        stderr = answered.partition("\n")[2] if asked else result.stderr  # after the question and the answer read
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


def api_shape_problems(document: Any, path: str = "$", record: bool = False) -> list[str]:
    """Where a ``--json`` document leaves the PRD's shapes: a snake_case key, or an id that is not a string.

    Lead and company records and maps keyed by field or column names (``keeps_keys``) keep their keys
    and are checked for ids only; stored rows (under ``AS_STORED_KEYS``) are not checked."""
    problems: list[str] = []
    if isinstance(document, list):
        for item in document:
            problems += api_shape_problems(item, f"{path}[]", record)
    elif isinstance(document, dict):
        for key, value in document.items():
            if key in AS_STORED_KEYS and not record:
                continue
            if key in ID_MAPS and isinstance(value, dict):
                problems += [
                    f"{path}.{key}.{f}: id {v!r} is not a string" for f, v in value.items() if isinstance(v, int)
                ]
                continue
            if "_" in key and not record:
                problems.append(f"{path}.{key}: snake_case key")
            listed = key in ID_LISTS or key.endswith(("Ids", "_ids"))
            ids = value if listed and isinstance(value, list) else [value]
            if (listed or key == "id" or key.endswith(("Id", "_id"))) and any(
                isinstance(v, int) and not isinstance(v, bool) for v in ids
            ):
                problems.append(f"{path}.{key}: id {value!r} is not a string")
            problems += api_shape_problems(value, f"{path}.{key}", record or keeps_keys(key))
    return problems


class Rebinding:
    """A resolver whose answer for ``rebind.example`` is public the first time and this machine's after, as a
    hostile DNS server with a zero TTL answers; other names resolve as usual."""

    def __init__(self) -> None:
        self.lookups = 0
        self.resolve = socket.getaddrinfo

    def __call__(self, host: str, port: bytes | str | int | None, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return self.resolve(host, port, *args, **kwargs)
        self.lookups += 1
        address = "93.184.215.14" if self.lookups == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


class Offline:
    """The network as urllib3 connects to it: each address it opens a connection to is recorded and refused, so
    that the public address ``Rebinding`` answers is never reached for real."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        self.connects.append(address)
        raise ConnectionRefusedError(f"{address[0]}:{address[1]} is offline in the tests")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Offline:
        monkeypatch.setattr(urllib3.util.connection, "create_connection", self)
        return self


class Receiver(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and keeps what it was sent in ``received``: a POST's JSON body, a
    GET's path. Tests subclass it to answer otherwise; ``receiver`` gives each server a list of its own."""

    status = 200
    received: list[Any] = []  # noqa: RUF012 - replaced per server by ``receiver``

    def record(self) -> None:
        """Keep the request's JSON body (a POST) or its path (anything else)."""
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length)) if length else self.path)

    def do_POST(self) -> None:
        self.record()
        self.send_response(self.status)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def receiver(handler: type[Receiver] = Receiver, **attributes: Any) -> Iterator[tuple[str, list[Any]]]:
    """A server on 127.0.0.1 answering with ``handler`` (its class attributes set to ``attributes``): its base URL
    and what it received. Only the sandbox's setting (``ALLOW_PRIVATE_ENV``) lets a guarded client reach it."""
    received: list[Any] = []
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type(handler.__name__, (handler,), {"received": received, **attributes})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """The WSGI ``app`` (an emulator, a recorder) served on 127.0.0.1 in a thread: its base URL; stopped after."""
    server, port = serve_in_thread(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def drip(out: BinaryIO, pieces: Iterable[bytes], every: float) -> None:
    """Send ``pieces`` one at a time, ``every`` seconds apart (each well within any read timeout: only a deadline
    on the whole answer stops it), until the client hangs up, as it should."""
    try:
        for piece in pieces:
            out.write(piece)
            out.flush()
            time.sleep(every)
    except OSError:
        pass


def survivors(processes: list[psutil.Process], timeout_s: float) -> list[str]:
    """The command lines of ``processes`` still running (not ended, nor ended and not yet reaped) after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    running.append(" ".join(process.cmdline())[:80])
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.1)
