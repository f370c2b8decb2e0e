"""The ``leads`` command: lists, imports and (as they land) enrichment, scoring and sync, from a terminal.

Every command prepares the environment first (embedded PostgreSQL unless DATABASE_URL is set, migrations) and
launches the same Dagster assets the UI and sensors run; errors are one line, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text
from typer import _click  # Typer's own copy of Click (0.29), whose types TyperGroup's methods take

from leads_pipeline.commands import enrich as enrich_commands
from leads_pipeline.commands import score as score_commands
from leads_pipeline.commands.access import app as access_app
from leads_pipeline.commands.audit import audit_command
from leads_pipeline.commands.backup import backup as backup_command
from leads_pipeline.commands.backup import restore as restore_command
from leads_pipeline.commands.bulk import app as bulk_app
from leads_pipeline.commands.common import (
    Table,
    acting_user,
    console,
    csv_stdout,
    environment,
    errors,
    fail,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.commands.contacts import find_email, verify
from leads_pipeline.commands.crm import crm_app, sync_app
from leads_pipeline.commands.dedupe import dedupe_command
from leads_pipeline.commands.demo import demo
from leads_pipeline.commands.dnc import app as dnc_app
from leads_pipeline.commands.keys import app as keys_app
from leads_pipeline.commands.lists import app as lists_app
from leads_pipeline.commands.merges import app as merges_app
from leads_pipeline.commands.privacy import app as privacy_app
from leads_pipeline.commands.retention import app as retention_app
from leads_pipeline.commands.search import search_command
from leads_pipeline.lib.runtime import (
    Environment,
    leads_home,
    project_files,
    stop_embedded_postgres,
)
from leads_pipeline.lib.signals import handlers_restored
from leads_pipeline.lib.store.db import name_sessions
from leads_pipeline.lib.wording import counted
from leads_pipeline.sandbox.cli import app as sandbox_app


class _NamingGroup(typer.core.TyperGroup):
    """The ``leads`` group, which names the command's database sessions after it (``leads jobs show``, in
    ``pg_stat_activity``) once it knows which one runs: the arguments are walked only for the names of the
    subcommands, so none of their values (a file, a person searched for) is ever in the name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _summarize(self)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        words, group = ["leads", name or ""], command
        for word in rest:
            sub = group.get_command(ctx, word) if isinstance(group, typer.core.TyperGroup) else None
            if sub is None:
                break
            words.append(word)
            group = sub
        name_sessions(" ".join(words))
        return name, command, rest


def _summarize(group: _click.Command) -> None:
    """Give every command under ``group`` its summary: the first paragraph of its help on one line. A group's
    list of commands shows ``short_help`` or else the whole first paragraph, with the docstring's line breaks
    and what follows the form feed (the code's history, kept for readers): `leads --help` broke the credits
    line mid-sentence, and the dev line went on about ``dagster dev``."""
    for command in getattr(group, "commands", {}).values():
        if command.short_help is None and command.help:
            first = command.help.partition("\f")[0].strip().split("\n\n")[0]
            command.short_help = " ".join(first.split())
        _summarize(command)


app = typer.Typer(
    cls=_NamingGroup, help="Lead lists, imports, enrichment, scoring and CRM sync on Dagster.", no_args_is_help=True
)
imports_app = typer.Typer(help="Import history, errors and undo.", no_args_is_help=True)
db_app = typer.Typer(help="The project's PostgreSQL (embedded unless DATABASE_URL is set).", no_args_is_help=True)


PRIVATE_UMASK: Final = 0o077
"""The mode bits taken from every file and folder a command makes: its owner's only."""


@app.callback()
def before_every_command() -> None:
    """What every command (and the Dagster processes ``leads dev`` starts, which inherit the umask) runs first."""
    private_files()
    readable_output()


def private_files() -> None:
    """Files and folders made from here on are their owner's only (0600, 0700): Dagster's compute logs, run
    artifacts, the leads home, its inbox and logs, files written by a command. With the usual umask (022) they were
    readable by every account on the host, and the logs of a run name people (an import's errors preview, a failed
    lookup's error)."""
    os.umask(PRIVATE_UMASK)


def readable_output() -> None:
    """Output for people (tables, messages) shows a character the terminal's encoding lacks as "?": under a
    Latin-1 or ASCII locale a lead named İlker or 日本 KK stopped ``leads search`` with a UnicodeEncodeError.
    CSV goes out in UTF-8 (``csv_stdout``), JSON escapes every non-ASCII character there (``print_json``)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    for logger in _IGNORING_LOGGERS:
        logging.getLogger(logger).addFilter(_error_ignored)


_IGNORING_LOGGERS = ("psycopg", "psycopg.transaction")
"""The loggers psycopg warns on of an error it ignored: a logger's filter is not asked of the records of its
children, and a transaction's are psycopg.transaction's."""


def _error_ignored(record: logging.LogRecord) -> bool:
    """Drop psycopg's warning of an error it ignored ending a pipeline, a COPY or a transaction while another
    error was on its way out: that other error is the command's one line. With the database gone mid-way, ``leads
    score`` printed "error ignored terminating <psycopg.Pipeline [BAD] at 0x...>: the connection is lost" first."""
    return not record.getMessage().startswith("error ignored")


app.add_typer(lists_app, name="lists")
app.command("search")(search_command)
app.add_typer(bulk_app, name="bulk")
app.command("dedupe")(dedupe_command)
app.add_typer(merges_app, name="merges")
app.add_typer(imports_app, name="imports")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")
app.command("verify")(verify)
app.command("find-email")(find_email)
app.add_typer(dnc_app, name="dnc")
app.add_typer(keys_app, name="keys")
app.command("enrich")(enrich_commands.enrich)
app.add_typer(enrich_commands.jobs_app, name="jobs")
app.add_typer(enrich_commands.templates_app, name="templates")
app.command("credits")(enrich_commands.credits)
app.command("enrich-after-import")(enrich_commands.enrich_after_import)
app.command("score")(score_commands.score)
app.command("show")(score_commands.show)
app.add_typer(score_commands.stage_app, name="stage")
app.add_typer(score_commands.model_app, name="model")
app.add_typer(crm_app, name="crm")
app.add_typer(sync_app, name="sync")
app.command("audit")(audit_command)
app.add_typer(privacy_app, name="privacy")
app.add_typer(retention_app, name="retention")
app.add_typer(access_app, name="access")
app.command("demo")(demo)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (if DATABASE_URL is not set) and apply migrations."""
    env = run_or_fail(environment)
    where = "embedded server in " + str(env.home / "postgres") if env.embedded else "DATABASE_URL"
    print_line(f"database ready ({where})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    stopped = stop_embedded_postgres(leads_home())
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL the project uses (for psql and other tools).
    \f
    Written as it is, on one line: printed as text for a terminal, a URL longer than the terminal (or than 80
    characters, read by ``psql "$(leads db url)"``: a leads home a few folders deep) was broken over lines, and
    markup in it (a password holding ``[b]``) was taken as a style."""
    sys.stdout.write(f"{run_or_fail(environment).database_url}\n")


db_app.command("backup")(backup_command)
db_app.command("restore")(restore_command)


def _load_mapping(mapping_file: Path | None, file: Path) -> dict[str, str | None]:
    """The mapping file's entries, checked against the file's headers (which costs a full inspection, so only
    when there is a mapping file)."""
    from leads_pipeline.lib.csvfile import inspect_file
    from leads_pipeline.lib.mapping import load_mapping_file

    return load_mapping_file(mapping_file, inspect_file(file).headers) if mapping_file else {}


def _show_plan(plan_json: dict[str, Any]) -> None:
    """The dry run's table. A column mapped to null is kept in custom, except the bookkeeping columns of an
    export, which the import leaves out: the table said "(custom)" beside their reason "left out, not imported"."""
    from leads_pipeline.lib.mapping import unmapped_labels

    unmapped = unmapped_labels(list(plan_json["mapping"]))
    print_line(  # the file's path and all on one line, however narrow (a pipe: 80 columns)
        (plan_json["file"], "bold"),
        f": {counted(plan_json['totalRows'], 'row')}, encoding {plan_json['encoding']},"
        f" delimiter {plan_json['delimiter']!r}, header on line {plan_json['headerLine']}",
    )
    table = Table("column", "field", "confidence", "why")
    lines = []
    for s in plan_json["suggestions"]:
        chosen = plan_json["mapping"].get(s["column"])
        field = chosen or Text(unmapped[s["column"]], style="dim")
        table.add_row(s["column"], field, f"{s['confidence']:.2f}", s["reason"])
        # narrower than the table (80 columns: a pipe, a log) a long header was broken over lines and the reason
        # with it: each column takes two lines, every value whole
        why = f"confidence {s['confidence']:.2f}: {s['reason']}"
        lines.append((f"{s['column']} -> {chosen or unmapped[s['column']]}", why))
    print_table(table, lines)
    if plan_json["sampleErrors"]:
        _print_problems(plan_json["sampleErrors"], "problems in the first 200 rows")


def _print_problems(problems: list[dict[str, Any]], title: str | None = None) -> None:
    """A table of an import's problems (row, column, value, reason, severity), under ``title``. Narrower than it
    (80 columns: a pipe, a log) the value to fix was cut to a few letters (and to 40 or 50 characters at any
    width): each problem takes two lines, every value whole."""
    table = Table("row", "column", "value", "problem", "severity", title=title)
    lines = []
    for e in problems:
        value = str(e["value"] or "")
        table.add_row(str(e["row"]), e["column"] or "", value, e["reason"], e["severity"])
        column = f", column {e['column']}" if e["column"] else ""
        lines.append((f"row {e['row']}{column}" + (f": {value}" if value else ""), f"{e['severity']}: {e['reason']}"))
    print_table(table, lines)


def _print_status(status: dict[str, Any]) -> None:
    results = status["results"]
    print_line(f"import {status['importId']} {status['status']} ({counted(status['progress']['processed'], 'row')}):")
    print_line(f"  {results['imported']:,} imported as new leads")
    print_line(f"  {results['updated']:,} updated existing leads with new values")
    if status["onDuplicate"] == "update":  # a duplicate row was read, and updated nothing
        print_line(
            f"  {results['skipped']:,} skipped: already in the list or earlier in the file, with no new value for "
            "the lead"
        )
    else:
        print_line(
            f"  {results['skipped']:,} skipped: duplicates (by the list's dedupe key) of a lead already in the list "
            "or earlier in the file"
        )
    colon = ":" if status["errors"] else ""  # the table of problems follows
    print_line(f"  {results['errors']:,} rejected, {counted(status['warnings'], 'warning')}{colon}")
    if status["errors"]:
        _print_problems(status["errors"][:10], "first problems")
        print_line(f"all of them: leads imports errors {status['importId']}")
    if status["dagsterRunId"] is not None:  # the run's page in the Dagster UI: its log, its failure
        print_line(f"  Dagster run {status['dagsterRunId']}")
    if status["status"] == "interrupted":
        print_line(
            "  its process was killed: the same `leads import` of the file into the list resumes it;"
            f" `leads imports undo {status['importId']}` removes what it wrote instead"
        )


def _watch_progress(database_url: str, batch_key: str, stop: threading.Event) -> None:
    """Show a progress bar from the import's own progress record while the run works. Its row count is ``?``
    until the inspection has counted the rows: formatted as a number while there was none yet, the bar's first
    drawing failed, and on a terminal every `leads import` printed a TypeError traceback and showed no bar.
    Rich's speed needs two updates: a small file, imported between two looks at its record, has one, and the bar
    ended on "0 rows/s"; with one update the rate is the rows over the time since the bar started, with none it
    shows no rate."""
    from leads_pipeline.lib.store.db import connect

    columns = (
        TextColumn("importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.fields[rows]} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, console=errors, transient=True) as progress,
        connect(database_url, autocommit=True) as conn,
    ):
        task = progress.add_task("import", total=None, rate="", rows="?")
        while not stop.wait(0.5):
            row = conn.execute(
                "SELECT processed_rows, total_rows FROM imports WHERE batch_id = %s", (batch_key,)
            ).fetchone()
            if row is not None:
                total = int(row["total_rows"] or 0) or None
                rows = "?" if total is None else f"{total:,}"
                progress.update(task, completed=int(row["processed_rows"]), total=total, rows=rows)
                shown = progress.tasks[0]
                speed = shown.speed
                if speed is None and shown.completed and shown.elapsed:
                    speed = shown.completed / shown.elapsed
                progress.update(task, rate=f"{speed:,.0f} rows/s" if speed else "")


def run_cli_import(
    env: Environment,
    file: Path,
    list_name: str,
    *,
    on_duplicate: str,
    mapping: dict[str, str | None],
    default_region: str,
    show_progress: bool,
    create_list: bool = False,
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Import a file through Dagster, resuming an unfinished import of the same file into the same list."""
    from leads_pipeline.lib.workers import DEFAULT_CHUNK_ROWS, start_worker_server, worker_count

    chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    if worker_count(0, chunk_rows, file) > 1:  # its workers' server boots while Dagster starts the run
        start_worker_server()
    from dagster import DagsterExecutionInterruptedError

    from leads_pipeline.defs.imports.assets import UNMAPPED, ImportConfig
    from leads_pipeline.launcher import materialize_import
    from leads_pipeline.lib.batches import import_batch_key
    from leads_pipeline.lib.csvfile import file_sha256
    from leads_pipeline.lib.store import imports as store
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import ensure_list, get_list

    sha256 = file_sha256(file)  # the run inspects the file; here only its identity is needed
    with connect(env.database_url) as conn:
        lead_list = (
            ensure_list(conn, list_name, owner=acting_user())
            if create_list
            else get_list(conn, list_name, acting_user())
        )
        unfinished = store.unfinished_import(conn, lead_list.id, sha256)
    batch_key = unfinished["batch_id"] if unfinished else import_batch_key(lead_list.name, sha256)
    config = ImportConfig(
        path=str(file.resolve()),
        list_name=lead_list.name,
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        mapping={column: (target or UNMAPPED) for column, target in mapping.items()},
        default_region=default_region,
        user=acting_user(),
        chunk_rows=chunk_rows,
    )
    stop = threading.Event()
    watcher = None
    if show_progress:
        watcher = threading.Thread(target=_watch_progress, args=(env.database_url, batch_key, stop), daemon=True)
        watcher.start()
    late_interrupt = False
    try:
        materialize_import(batch_key, config)
    except DagsterExecutionInterruptedError as interrupt:
        # Dagster raises an interrupt that came while the step stored its result, after the import completed
        with connect(env.database_url) as conn:
            record = store.import_for_batch(conn, batch_key)
        if record is None or record["status"] != "completed":
            raise KeyboardInterrupt from interrupt
        late_interrupt = True
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    with connect(env.database_url) as conn:
        record = store.import_for_batch(conn, batch_key)
        assert record is not None
        if late_interrupt:
            print_line(f"the interrupt came after import {record['id']} had completed: nothing was stopped", err=True)
        return store.import_status(conn, record["id"])


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="The CSV file to import.")],
    list_name: Annotated[str, typer.Option("--list", help="The list to import into.")],
    mapping_file: Annotated[
        Path | None, typer.Option("--mapping", help="YAML {csvColumn: field or null} overriding suggestions.")
    ] = None,
    on_duplicate: Annotated[
        str,
        typer.Option(help="skip: keep the existing lead; update: fill and overwrite with new non-empty values."),
    ] = "skip",
    default_region: Annotated[
        str | None,
        typer.Option(
            help="Country (ISO alpha-2) for phone numbers of rows without one; default: $LEADS_DEFAULT_REGION, else US."
        ),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=100,
            help="Rows per committed chunk (default 50,000; fewer hold less memory). A re-run of an interrupted"
            " import resumes after its last committed chunk, at the size it began with.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show mapping, row count and sample errors only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import a CSV file of leads into a list (through the Dagster asset graph)."""
    from leads_pipeline.lib.countries import configured_default_region
    from leads_pipeline.lib.importer import ImportOptions, plan_import
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list

    if on_duplicate not in ("skip", "update"):
        fail(f"--on-duplicate must be skip or update; got {on_duplicate!r}")
    region = run_or_fail(lambda: configured_default_region(default_region))
    run_or_fail(lambda: ImportOptions(default_region=region))  # refused before anything is recorded
    env = run_or_fail(environment)

    def run() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            # a member of any role sees what an import would do (the plan uses the list's dedupe setting)
            lead_list = get_list(conn, list_name, acting_user())
            if not dry_run:
                access.require(conn, lead_list.id, acting_user(), "editor", "importing into it")
        mapping = _load_mapping(mapping_file, file)
        if dry_run:
            options = ImportOptions(on_duplicate=on_duplicate, mapping_overrides=mapping, default_region=region)  # type: ignore[arg-type]
            plan = plan_import(file, options, dedupe=lead_list.dedupe).as_json()
            # the file as the import records it (absolute): a relative one gave a script two names for one file
            return {**plan, "file": str(file.resolve())}
        return run_cli_import(
            env,
            file,
            list_name,
            on_duplicate=on_duplicate,
            mapping=mapping,
            default_region=region,
            show_progress=not as_json and sys.stderr.isatty(),
            chunk_rows=chunk_rows,
        )

    document = run_or_fail(run)
    if as_json:
        print_json(document)
    elif dry_run:
        _show_plan(document)
    else:
        _print_status(document)


@imports_app.command("ls", hidden=True)  # as `lists ls` and `jobs ls` name it
@imports_app.command("list")
def imports_list(
    list_name: Annotated[str | None, typer.Option("--list", help="Only imports into this list.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many imports (the newest).")] = 50,
    before: Annotated[int | None, typer.Option(min=1, help="Only imports older than this import id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent imports into the lists you can read, newest first; --before pages back to older ones."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store import imports as store
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list

    env = run_or_fail(environment)

    def fetch() -> list[dict[str, Any]]:
        user = acting_user()
        with connect(env.database_url) as conn:
            if list_name:
                lead_list = get_list(conn, list_name, user)
                access.require(conn, lead_list.id, user, "viewer", "reading its imports", write=False)
                return store.list_imports(conn, [lead_list.id], limit + 1, before)
            return store.list_imports(conn, access.readable_list_ids(conn, user), limit + 1, before)

    found = run_or_fail(fetch)  # one more than shown: whether there are older ones
    rows = found[:limit]
    if as_json:
        print_json([store.import_summary(r) for r in rows])
        return
    cells = [
        (
            str(r["id"]),
            r["list_name"],
            Path(r["file_path"]).name,
            r["status"],
            f"{r['total_rows'] or 0:,}",
            f"{r['imported']:,}",
            f"{r['updated']:,}",
            f"{r['skipped']:,}",
            f"{r['errors']:,}",
            f"{r['created_at']:%Y-%m-%d %H:%M}",
        )
        for r in rows
    ]
    table = Table("id", "list", "file", "status", "rows", "imported", "updated", "skipped", "rejected", "when")
    for row in cells:
        table.add_row(*row)
    print_table(
        table,
        [
            (
                f"{import_id}  {file} into {name}, {when}",
                f"{status}, {counted(r['total_rows'] or 0, 'row')}: {imported} imported, {updated} updated,"
                f" {skipped} skipped, {rejected} rejected",
            )
            for r, (import_id, name, file, status, _, imported, updated, skipped, rejected, when) in zip(
                rows, cells, strict=True
            )
        ],
        empty="no imports" + (f" before import {before}" if before else ""),
    )
    if len(found) > limit:  # how to see the older ones (only the newest 50 could be seen)
        print_line(f"more: --before {rows[-1]['id']}", err=True)


def _require_import_reader(conn: Any, import_id: int) -> None:
    """An import's status and problems (which hold the rejected values) are for those who may read its list."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store import imports as store

    record = store.find_import(conn, import_id)
    access.require(
        conn, record["list_id"], acting_user(), "viewer", "reading its imports", write=False,
        subject=f"import {import_id}", hint=store.IMPORTS_HINT,
    )  # fmt: skip


@imports_app.command("show")
def imports_show(import_id: int, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """An import's status, counts and first problems (the PRD's "Get Import Status")."""
    from leads_pipeline.lib.store import imports as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def fetch() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            _require_import_reader(conn, import_id)
            return store.import_status(conn, import_id)

    document = run_or_fail(fetch)
    if as_json:
        print_json(document)
    else:
        _print_status(document)


@imports_app.command("errors")
def imports_errors(
    import_id: int,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to standard output.")] = False,
) -> None:
    """Every problem an import found: row, column, value, reason, severity."""
    from leads_pipeline.lib.store import imports as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def fetch() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            _require_import_reader(conn, import_id)
            return store.import_errors(conn, import_id)

    rows = run_or_fail(fetch)
    if as_csv:
        from leads_pipeline.lib.export import write_csv

        # the values are the file's own cells, opened in a spreadsheet to fix them: formula-safe as an export
        cells = ((r["row_number"], r["column_name"], r["value"], r["reason"], r["severity"]) for r in rows)
        with csv_stdout() as out:
            write_csv(out, ["row", "column", "value", "reason", "severity"], cells)
        return
    _print_problems([{**r, "row": r["row_number"], "column": r["column_name"]} for r in rows])


@imports_app.command("undo")
def imports_undo(
    import_id: int,
    force: Annotated[
        bool, typer.Option("--force", help="Undo even though leads it wrote changed since (those changes are lost).")
    ] = False,
) -> None:
    """Remove the leads an import created and restore those it updated, exactly as they were. Refused while
    leads it wrote are in a merge, or (without --force) were changed since by a later import or otherwise; the
    message names what to undo first."""
    from leads_pipeline.lib.store import audit
    from leads_pipeline.lib.store import imports as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def undo() -> dict[str, int]:
        with connect(env.database_url) as conn:
            user = acting_user()
            result = store.undo_import(conn, import_id, user, force=force)
            audit.record(conn, user, "imports.undo", f"import:{import_id}", {**result, "forced": force})
            return result

    result = run_or_fail(undo)
    print_line(
        f"import {import_id} undone: {counted(result['removed'], 'lead')} removed, {result['restored']:,} restored"
    )


def main() -> None:
    app()


WEBSERVER_POOL = ("--db-pool-recycle", "1")
"""The webserver keeps a pooled connection to Dagster's storage (the daemon and the runs open one per use); one
older than this many seconds is replaced before use. A connection of the webserver's pool outlived a restart of
the database: the next UI launch failed, and the one after it left its run NOT_STARTED (the run was written, its
queueing was not). dagster-postgres has no pre-ping setting; a restart takes longer than a second, so every
connection from before it is replaced, at the cost of one new connection per second of UI use at most."""


@app.command("dev")
def dev(
    host: Annotated[str, typer.Option(help="Address for the UI.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for the UI.")] = 3000,
) -> None:
    """Start the Dagster webserver and daemon (sensors and schedules on) on the project's database; Ctrl-C,
    SIGTERM or closing the terminal stops both, and if one dies on its own the other is stopped and the command
    exits 1 naming it.
    \f
    The two processes are started directly rather than through ``dagster dev``, which ignores SIGTERM when
    started without job control. A process dying alone used to end the command with 0, leaving a UI without
    sensors (or a daemon without a UI) to look like a clean stop. They run in a process group of their own, and
    this command alone stops them: each is asked once (SIGTERM), not also by the terminal's SIGINT.
    """
    from leads_pipeline.launcher import instance
    from leads_pipeline.lib.countries import configured_default_region

    unusable = _cannot_listen(host, port)  # the webserver would exit at once, and take the daemon with it
    if unusable:
        fail(unusable)
    run_or_fail(configured_default_region)  # else refused only by the sensor's ticks, in the daemon's log
    env = run_or_fail(environment)
    # Dagster's storage tables made (or refused in one line) here: each process printed its own traceback
    run_or_fail(instance).dispose()
    # one line however narrow the terminal, or with none (a log file: 80 columns), so the path can be copied whole
    print_line(f"Dagster UI on http://{host}:{port} (Ctrl-C to stop); inbox: {env.inbox}")
    bin_dir = Path(sys.executable).parent
    location = ["-w", str(project_files() / "workspace.yaml")]  # names the code location as pyproject does
    commands = {
        "webserver": [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(port), *WEBSERVER_POOL, *location],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", *location],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    asked_to_stop = False
    stop_with_this = _stopped_with_this_process()

    def stop(*_: object) -> None:
        nonlocal asked_to_stop
        asked_to_stop = True
        for process in processes.values():
            process.terminate()

    died: dict[str, int] = {}
    # set before the processes start: a handler ends at exec (each starts with the signal's default), an
    # ignored signal does not (nohup's SIGHUP stays ignored in them as in this command)
    with handlers_restored(_stop_signals(), meanwhile=stop):
        try:
            # Dagster's processes give SIGTERM the handler SIGINT has: `leads dev` started in the background
            # (``make dev &`` in a script, where the shell ignores SIGINT) started them ignoring both, and waited
            # for good after asking them to stop. SIGINT is handled while they start, so that they start with it
            # at its default; this command keeps ignoring it then, as its shell asked (its processes never see
            # the terminal's Ctrl-C)
            with handlers_restored([signal.SIGINT], meanwhile=signal.default_int_handler):
                for name, command in commands.items():
                    processes[name] = subprocess.Popen(command, process_group=0, preexec_fn=stop_with_this)
            while not died and not asked_to_stop:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    processes["webserver"].wait(timeout=1)
                died = {name: code for name, process in processes.items() if (code := process.poll()) is not None}
        except KeyboardInterrupt:
            asked_to_stop = True
        finally:
            for process in processes.values():
                process.terminate()
            killed = [name for name, process in processes.items() if _stopped_or_killed(process)]
    if not asked_to_stop:
        name, code = next(iter(died.items()))
        others = [other for other in processes if other not in died]
        stopped = f"; the {others[0]} {_how_stopped(others[0] in killed)}" if others else ""
        fail(f"the Dagster {name} exited on its own (exit code {code}){stopped}; see its output above")
    for name in killed:
        print_line(("warning:", "yellow"), f" the Dagster {name} {_how_stopped(True)}", err=True)
    raise typer.Exit(0)


STOP_GRACE_SECONDS = 30.0
"""How long `leads dev` waits for a process it asked to stop (SIGTERM) before killing it (SIGKILL): the daemon
finishes its sensor ticks first, a few seconds. One stuck in its shutdown held the command for good, and a second
Ctrl-C ended it with a traceback, leaving both processes running."""


def _stop_signals() -> list[signal.Signals]:
    """The signals `leads dev` stops on: SIGTERM always; SIGHUP (the terminal closed) unless ignored, as ``nohup``
    has it. Its processes run in a process group of their own, which the terminal does not signal, so the command
    stops them itself."""
    return [signal.SIGTERM] + ([signal.SIGHUP] if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN else [])


PR_SET_PDEATHSIG: Final = 1
"""Linux's ``prctl`` option: the signal a process gets when the thread that started it ends."""


def _stopped_with_this_process() -> Callable[[], None] | None:
    """What a process `leads dev` starts runs before its program (``preexec_fn``): on Linux, it is sent SIGTERM
    when `leads dev` ends, however it ends. Killed outright (SIGKILL: the OOM killer, an editor closing its
    terminal hard), `leads dev` stopped nothing, and the webserver kept the port and the daemon ran the sensors
    until someone found them. Elsewhere None: nothing is asked of the process."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    this = os.getpid()

    def stop_with_this() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != this:  # `leads dev` ended before the line above: no signal will come
            os._exit(1)

    return stop_with_this


def _stopped_or_killed(process: subprocess.Popen[bytes]) -> bool:
    """Wait for ``process``, asked to stop, for `STOP_GRACE_SECONDS`, then kill it; whether it was killed."""
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True
    return False


def _how_stopped(killed: bool) -> str:
    return f"did not stop within {STOP_GRACE_SECONDS:g} s of SIGTERM and was killed" if killed else "is stopped"


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the webserver cannot listen on ``host:port`` (bound as uvicorn binds it, with SO_REUSEADDR), or None.
    Every bind error read as a port in use: a mistyped ``--host`` was called "in use (another `leads dev`?)"."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:
            return f"--host {host!r}: not an address or host name ({exc.strerror})"
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (  # `make dev` alone was named, which an install from a wheel has not
                    f"{host}:{port} is in use (another `leads dev`?); choose another port: `leads dev --port"
                    f" {port + 1}` (`make dev PORT={port + 1}` in a checkout)"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None
