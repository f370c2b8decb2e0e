"""``leads crm`` (connection files: ls, show, test) and ``leads sync`` (run a sync, its history and errors).

A sync is launched the way every pipeline run is: the CLI adds the connection's partition and materializes
``crm_sync_plan`` and ``crm_sync`` in-process on the project's Dagster instance, so the run, its blocking check
and its counts show up in the UI like a scheduled one.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

from leads_pipeline.commands.common import (
    LOST_CONNECTION_ERRORS,
    Table,
    acting_user,
    csv_stdout,
    database_went_away,
    environment,
    field_text,
    one_output,
    print_fields,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.commands.selection import WhereOption
from leads_pipeline.lib.errors import ConfigurationError, LeadsError, PermanentError
from leads_pipeline.lib.filters import parse_filter
from leads_pipeline.lib.privacy.crypto import seal
from leads_pipeline.lib.wording import counted, plain_number

crm_app = typer.Typer(help="CRM connections: list, show and test them.", no_args_is_help=True)
sync_app = typer.Typer(help="Sync a list with a CRM connection; history and errors of past syncs.")


@crm_app.command("list", hidden=True)  # as `imports list` and `merges list` name it
@crm_app.command("ls")
def crm_ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the connection files (`LEADS_CRM_DIR`, default `$LEADS_HOME/crm`), with any file that does not parse and
    any schedule name two files would share."""
    from leads_pipeline.lib.crm.connection import (
        Connection,
        connections_folder,
        load_connection_file,
        schedule_clashes,
        schedule_name,
    )

    folder = connections_folder()
    rows: list[dict[str, Any]] = []
    loaded: list[tuple[Connection, dict[str, Any]]] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []:
        try:
            c = load_connection_file(path)
            rows.append({"name": c.name, "crm": c.crm, "object": c.object, "direction": c.direction,
                         "list": c.list_name, "schedule": c.schedule, "error": None})  # fmt: skip
            loaded.append((c, rows[-1]))
        except LeadsError as exc:
            rows.append({"name": path.stem, "crm": None, "object": None, "direction": None, "list": None,
                         "schedule": None, "error": str(exc)})  # fmt: skip
    clashes = schedule_clashes([c for c, _ in loaded])
    for c, row in loaded:
        if c.name in clashes:
            row["error"] = (
                f"{c.path}: schedule: not scheduled: {clashes[c.name].path} already has schedule "
                f"{schedule_name(c.name)} (- and _ give the same name); rename one of the files"
            )
    if as_json:
        print_json(rows)
        return
    if not rows:
        print_line(f"no CRM connections in {folder}: add one YAML file per connection (see README, CRM sync)")
        return
    table = Table("name", "crm", "object", "direction", "list", "schedule", "problem")
    lines = []
    for row in rows:
        table.add_row(*[str(row[k] or "") for k in ("name", "crm", "object", "direction", "list", "schedule", "error")])
        # narrower than the table (80 columns: a pipe, cron's mail) a file's problem was cut to a few words: each
        # connection takes two lines, every value whole
        settings = (
            f"{row['crm']} {row['object']}, {row['direction']}, list {row['list']},"
            f" schedule {row['schedule'] or 'none'}"
            if row["crm"]
            else ""
        )
        problem = f"problem: {row['error']}" if row["error"] else ""
        lines.append((row["name"], "; ".join(part for part in (settings, problem) if part)))
    print_table(table, lines)


@crm_app.command("show")
def crm_show(name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show a connection's settings and link count (never credentials: they live in the environment)."""
    from leads_pipeline.lib.crm.connection import load_connection
    from leads_pipeline.lib.store.db import connect

    connection = run_or_fail(lambda: load_connection(name))
    env = run_or_fail(environment)

    def describe() -> dict[str, Any]:
        document = connection.describe()
        with connect(env.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) AS links, max(synced_at) AS last_synced FROM crm_links WHERE connection = %s",
                (name,),
            ).fetchone()
        document["links"] = row["links"] if row else 0
        document["lastSynced"] = row["last_synced"] if row else None
        return document

    document = run_or_fail(describe)
    if as_json:
        print_json(document)
        return
    print_fields([(key, _setting_text(key, value)) for key, value in document.items()])


def _setting_text(key: str, value: Any) -> str:
    """A setting of ``crm show`` in words: the nested ones were printed as Python dictionaries
    ("{'email': {'crmField': 'email', 'transforms': []}}"), which a reader had to decode and grep could not."""
    if key == "matchKey":
        return f"{value['field']} -> {value['crmField']}"
    if key == "mapping":
        return ", ".join(
            f"{local} -> {m['crmField']}" + (f" ({', '.join(m['transforms'])})" if m["transforms"] else "")
            for local, m in value.items()
        )
    if key == "pullFields":
        return ", ".join(f"{remote} -> {local}" for remote, local in value.items()) or "-"
    if key == "conflict":
        return ", ".join([value["default"], *(f"{field}: {rule}" for field, rule in value["fields"].items())])
    if key == "rateLimit":
        quota = value["dailyQuota"]
        per = f"{value['requests']} requests per {plain_number(value['perSeconds'])} s"
        return per if quota is None else f"{per}, {quota:,} a day"
    return field_text(value)


@crm_app.command("test")
def crm_test(name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Check the credentials and the field mapping against the CRM's own field list."""
    from leads_pipeline.defs.crm.checks import describe_unknown, unknown_fields
    from leads_pipeline.lib.crm.connection import load_connection
    from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
    from leads_pipeline.lib.crm.sync import crm_fields

    def test() -> dict[str, Any]:
        connection = load_connection(name)
        limiter = limiter_for(connection)
        connector = resource_from_env(connection.crm).connector(connection, limiter)
        fields = crm_fields(connection, connector, limiter)
        unknown = unknown_fields(connection, fields)
        if unknown:
            raise ConfigurationError(
                f"{connection.path or name}: {describe_unknown(connection, unknown)};"
                f" it has {counted(len(fields), 'field')}, "
                f"e.g. {', '.join(f.label if f.by_label else f.name for f in fields[:12])}"
            )
        return {"connection": name, "crm": connection.crm, "object": connection.object, "ok": True,
                "crmFields": len(fields), "mappedFields": len(connection.mapping)}  # fmt: skip

    document = run_or_fail(test)
    if as_json:
        print_json(document)
    else:
        print_line(
            ("ok", "green"),
            f": {name} reaches {document['crm']} {document['object']}; "
            f"all {counted(document['mappedFields'], 'mapped field')} exist"
            f" ({counted(document['crmFields'], 'field')} in the CRM)",
        )


@sync_app.callback(invoke_without_command=True)
def sync(
    context: typer.Context,
    crm: Annotated[str | None, typer.Option("--crm", help="The CRM connection (its file name).")] = None,
    list_name: Annotated[str | None, typer.Option("--list", help="The list to sync (default: the file's).")] = None,
    where: WhereOption = None,
    direction: Annotated[
        str | None, typer.Option(help="push, pull or bidirectional (default: the file's direction).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {syncId, status, leadsToSync, ...}.")] = False,
) -> None:
    """Run a sync now: ``leads sync --crm CONNECTION --list NAME [--direction push|pull|bidirectional]``."""
    if context.invoked_subcommand is not None:
        return
    if crm is None:
        _missing_crm()
    env = run_or_fail(environment)
    report = run_or_fail(lambda: launch_sync(env.database_url, crm, list_name, direction, where or []))
    if as_json:
        print_json(report)
        return
    print_line(  # one line for a log to grep ("0 failed"), which an 80-column wrap split as "0 \nfailed"
        f"sync {report['syncId']} of {crm}: ",
        (report["status"], "bold"),
        f"; {report['leadsToSync']} to sync, "
        f"{report['created']} created, {report['updated']} updated, {report['unchanged']} unchanged, "
        f"{report['failed']} failed, {report['invalid']} invalid, {report['pulled']} pulled "
        f"({report['pulledToSurvivors']} into merge survivors), {counted(report['pullSkipped'], 'pulled record')} "
        f"skipped, {counted(report['conflicts'], 'conflict')} ({counted(report['requests'], 'request')})",
    )
    if report["recreated"]:
        print_line(
            f"{counted(report['recreated'], 'linked record')} gone from {crm} (deleted or merged there since the "
            "last sync): sent again, created anew or to the record holding the lead's match key"
        )
    if report.get("message"):
        print_line(report["message"])
    if report["failed"] or report["invalid"] or report["pullSkipped"] or report["recreated"]:
        print_line(f"see `leads sync errors {report['syncId']}`")


def _missing_crm() -> NoReturn:
    """Say in one line that ``--crm`` is missing and which connections there are, exiting 2 as a missing option
    does. The whole help came first: two screens of it before the one line that said what was wrong, and that line
    named the folder to look in, not the names to give."""
    from leads_pipeline.lib.crm.connection import connection_names, connections_folder

    folder = connections_folder()
    names = connection_names(folder)
    known = (
        f"one of {', '.join(names)} (the files in {folder})"
        if names
        else f"none in {folder} yet: add one YAML file per connection (see README, CRM sync)"
    )
    print_line(("error:", "red"), f" missing option --crm: the CRM connection to sync, {known}", err=True)
    raise typer.Exit(code=2)


def launch_sync(
    database_url: str, name: str, list_name: str | None, direction: str | None, where: list[str]
) -> dict[str, Any]:
    from leads_pipeline.defs.crm.assets import CRM_CONNECTIONS, crm_sync, crm_sync_plan
    from leads_pipeline.defs.executor import materialize_here
    from leads_pipeline.defs.resources import default_resources
    from leads_pipeline.launcher import instance
    from leads_pipeline.lib.crm.connection import DIRECTIONS, load_connection
    from leads_pipeline.lib.store import crm as store
    from leads_pipeline.lib.store.db import connect

    connection = load_connection(name)
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigurationError(f"--direction: expected one of {', '.join(DIRECTIONS)}, found {direction!r}")
    # a bad filter is refused here, naming the field, before Dagster starts; one on a person's details goes into
    # the run's config sealed (the run opens it, sync.push_filters): Dagster keeps and shows the config as launched
    filters = [seal(text) if parse_filter(text).names_a_person else text for text in where]
    config: dict[str, Any] = {"list_name": list_name, "direction": direction, "user": acting_user(), "where": filters}
    config = {k: v for k, v in config.items() if v is not None}
    dagster_instance = instance()
    dagster_instance.add_dynamic_partitions(CRM_CONNECTIONS, [connection.name])
    result = materialize_here(
        [crm_sync_plan, crm_sync],
        partition_key=connection.name,
        instance=dagster_instance,
        resources=default_resources(),
        run_config={"ops": {"crm_sync_plan": {"config": config}, "crm_sync": {"config": config}}},
        tags={"leads/crm": connection.name},
    )
    materialized = result.asset_materializations_for_node("crm_sync")
    if not materialized:
        raise PermanentError(_failure(result, name))
    sync_id = int(materialized[0].metadata["sync_id"].value)  # type: ignore[arg-type]
    with connect(database_url) as conn:
        run = store.get_run(conn, sync_id)
    return _run_json(run)


def _failure(result: Any, name: str) -> str:
    """The one-line reason a sync run did not reach ``crm_sync``: the blocking check, or the failed step (its
    innermost error; the database gone is said as every command says it, it read "terminating connection due to
    administrator command" alone)."""
    import dagster as dg

    from leads_pipeline.defs.executor import failed_step_error

    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            reason = evaluation.metadata.get("reason")
            return f"{name}: the push was blocked by its check: {reason.value if reason else 'see the Dagster UI'}"
    failed = failed_step_error(result)
    if failed:
        error, reason = failed
        return database_went_away(reason) if error in LOST_CONNECTION_ERRORS else reason
    return f"{name}: the sync did not run; see the run in the Dagster UI"


def _run_json(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "syncId": str(run["id"]),
        "status": run["status"],
        "leadsToSync": run["leads_to_sync"],
        "connection": run["connection"],
        "direction": run["direction"],
        "created": run["created"],
        "updated": run["updated"],
        "unchanged": run["unchanged"],
        "failed": run["failed"],
        "invalid": run["invalid"],
        "pulled": run["pulled"],
        "pulledToSurvivors": run["pulled_to_survivors"],
        "pullSkipped": run["pull_skipped"],
        "recreated": run["recreated"],
        "conflicts": run["conflicts"],
        "requests": run["requests"],
        "message": run["message"],
        "startedBy": run["started_by"],
        "startedAt": run["started_at"],
        "finishedAt": run["finished_at"],
    }


@sync_app.command("history")
def sync_history(
    crm: Annotated[str | None, typer.Option("--crm", help="Only this connection.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Past sync runs with their counts: those of the lists you can read, and those you started."""
    from leads_pipeline.lib.store import crm as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def history() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            return [_run_json(run) for run in store.list_runs(conn, crm, limit, user=acting_user())]

    runs = run_or_fail(history)
    if any(run["status"] == "interrupted" for run in runs):
        run_or_fail(lambda: _fail_killed_runs(env.database_url))
    if as_json:
        print_json(runs)
        return
    table = Table("sync", "connection", "direction", "status", "to sync", "created", "updated", "failed",
                  "invalid", "pulled", "conflicts", "started")  # fmt: skip
    lines = []
    for r in runs:
        started = str(r["startedAt"])[:19]
        table.add_row(r["syncId"], r["connection"], r["direction"], r["status"], str(r["leadsToSync"]),
                      str(r["created"]), str(r["updated"]), str(r["failed"]), str(r["invalid"]), str(r["pulled"]),
                      str(r["conflicts"]), started)  # fmt: skip
        # narrower than the table (80 columns: a pipe, cron's mail) the status was cut to "fa…" and every count to
        # a letter: each run takes two lines, every value whole
        lines.append((
            f"{r['syncId']}  {r['connection']} {r['direction']}, started {started}",
            f"{r['status']}: {r['leadsToSync']} to sync, {r['created']} created, {r['updated']} updated,"
            f" {r['failed']} failed, {r['invalid']} invalid, {r['pulled']} pulled, {r['conflicts']} conflicts",
        ))  # fmt: skip
    print_table(table, lines, empty="no sync runs")


def _fail_killed_runs(database_url: str) -> None:
    """What a reader finding a sync interrupted does: report failed the Dagster runs of the killed syncs, which
    Dagster still showed started (Dagster is loaded only when there is one)."""
    from leads_pipeline.lib.store import crm as store
    from leads_pipeline.lib.store.db import connect

    with connect(database_url) as conn:
        if not store.killed_dagster_runs(conn):
            return
    from leads_pipeline.defs.crm.assets import fail_killed_runs
    from leads_pipeline.launcher import instance

    fail_killed_runs(database_url, instance())


@sync_app.command("errors")
def sync_errors(
    sync_id: int,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The records a sync could not send or pulled and did not apply, and those it sent again to a record gone from
    the CRM: lead, email, action, category, message and attempts (viewers of its list)."""
    from leads_pipeline.lib.store import crm as store
    from leads_pipeline.lib.store.db import connect

    one_output(as_json, as_csv)
    env = run_or_fail(environment)

    def errors() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            store.require_run_readable(conn, store.get_run(conn, sync_id), acting_user())
            return store.run_errors(conn, sync_id)

    rows = run_or_fail(errors)
    columns = ["lead_id", "email", "action", "category", "message", "attempts"]
    if as_csv:
        from leads_pipeline.lib.export import write_csv

        # CRM messages quote what the CRM was sent (emails, names): formula-safe as an export
        with csv_stdout() as out:
            write_csv(out, columns, ([row[c] for c in columns] for row in rows))
        return
    if as_json:
        print_json(rows)
        return
    if not rows:
        print_line(f"sync {sync_id} has no failed, invalid, skipped or recreated records")
        return
    table = Table(*columns)
    lines = []
    for row in rows:
        table.add_row(*[str(row[c] if row[c] is not None else "") for c in columns])
        # narrower than the table (80 columns: cron's mail) the message was cut to a few words and the address to
        # a dozen letters: each record takes two lines, every value whole
        lines.append((
            f"lead {row['lead_id']} {row['email'] or ''}: {row['action']}",
            f"{row['category']}, {counted(row['attempts'], 'attempt')}: {row['message']}",
        ))  # fmt: skip
    print_table(table, lines)
