"""``leads retention``: set, show and apply retention policies (global or per list).

``apply`` materializes the same Dagster asset the daily schedule runs (``retention_run``), so a manual run is
recorded in the UI with what it removed; ``--dry-run`` counts what would go and removes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    console,
    environment,
    print_json,
    print_line,
    print_table,
    require_every_list,
    run_or_fail,
)
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Retention policies: how long leads, raw payloads, import files and run logs are kept.")

KindArgument = Annotated[
    str,
    typer.Argument(
        help="leads (untouched leads), facts (raw provider payloads), inbox (import files) or logs (run logs on disk,"
        " global only)."
    ),
]
ListOption = Annotated[
    str | None,
    typer.Option(
        "--list", help="Only for this list (owner); default: global (an owner of every list, or a privacy officer)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _set(kind: str, days: int | None, list_name: str | None) -> None:
    from leads_pipeline.lib.store import access, retention
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list

    env = run_or_fail(environment)

    def run() -> None:
        with connect(env.database_url) as conn:
            list_id = None
            if list_name is not None:
                lead_list = get_list(conn, list_name, acting_user())
                access.require(conn, lead_list.id, acting_user(), "owner", "setting its retention", write=False)
                list_id = lead_list.id
            else:
                access.require_every_list(conn, acting_user(), "a global retention policy")
            retention.set_policy(conn, kind, days, list_id=list_id, actor=acting_user())

    run_or_fail(run)


@app.command("set")
def retention_set(
    kind: KindArgument,
    days: Annotated[int, typer.Argument(help="Keep for this many days.")],
    list_name: ListOption = None,
) -> None:
    """Set a policy: delete untouched leads / purge fact payloads / delete inbox files / delete run logs after DAYS
    days."""
    _set(kind, days, list_name)
    print_line(f"retention of {kind} {'in ' + repr(list_name) if list_name else 'globally'}: {days} days")


@app.command("unset")
def retention_unset(kind: KindArgument, list_name: ListOption = None) -> None:
    """Remove a policy (a list then follows the global one)."""
    _set(kind, None, list_name)
    print_line(f"retention of {kind} {'in ' + repr(list_name) if list_name else 'globally'}: none")


@app.command("show")
def retention_show(as_json: JsonOption = False) -> None:
    """The global policies, then those of the lists the user can read."""
    from leads_pipeline.lib.store import access, retention
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def read() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            readable = set(access.readable_list_ids(conn, acting_user()))
            return [r for r in retention.policies(conn) if r["list_id"] is None or r["list_id"] in readable]

    rows = run_or_fail(read)
    if as_json:
        print_json(
            [
                {"kind": r["kind"], "days": r["days"], "list": r["list"], "setBy": r["set_by"], "setAt": r["set_at"]}
                for r in rows
            ]
        )
        return
    if not rows:
        console.print("no retention policies")
        return
    table = Table("scope", "kind", "days", "set by", "set at")
    lines = []
    for r in rows:
        scope, set_at = r["list"] or "(global)", f"{r['set_at']:%Y-%m-%d}"
        table.add_row(scope, r["kind"], str(r["days"]), r["set_by"], set_at)
        # narrower than the table (80 columns: a pipe, cron's mail) a long list name was broken over lines: each
        # policy takes two lines, every value whole
        lines.append((f"{scope}: {r['kind']}", f"{counted(r['days'], 'day')}, set by {r['set_by']} on {set_at}"))
    print_table(table, lines)


@app.command("apply")
def retention_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply every policy now, through the Dagster asset the daily schedule runs (an owner of every list, or a
    privacy officer: it deletes in every list and reports on every list)."""
    env = run_or_fail(environment)
    run_or_fail(lambda: require_every_list(env.database_url, "applying the retention policies"))
    summary = run_or_fail(lambda: _materialize(dry_run))
    if as_json:
        print_json(summary)
        return
    from leads_pipeline.lib.store.retention import removal_sentence

    print_line(removal_sentence(dry_run, summary))


def _materialize(dry_run: bool) -> dict[str, Any]:
    import dagster as dg

    from leads_pipeline.defs.executor import materialize_here
    from leads_pipeline.defs.resources import default_resources
    from leads_pipeline.defs.security.assets import retention_run
    from leads_pipeline.lib.errors import PermanentError

    config = {"dry_run": dry_run, "actor": acting_user()}
    try:
        result = materialize_here(
            [retention_run],
            instance=dg.DagsterInstance.get(),
            resources=default_resources(),
            run_config={"ops": {"retention_run": {"config": config}}},
            raise_on_error=True,
        )
    except dg.Failure as failure:
        raise PermanentError(failure.description or str(failure)) from failure
    [materialization] = result.asset_materializations_for_node("retention_run")
    return {name: value.value for name, value in materialization.metadata.items()}
