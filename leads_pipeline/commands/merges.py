"""``leads merges``: the history of duplicate merges, and undo."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import Table, acting_user, console, environment, print_json, run_or_fail
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Merges of duplicate leads: history and undo.", no_args_is_help=True)


@app.command("list")
def merges_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Recent merges in lists you can read, newest first."""
    from leads_pipeline.lib.store import merges
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def fetch() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            return merges.list_merges(conn, acting_user())

    rows = run_or_fail(fetch)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "survivor", "merged", "filled", "by", "when", "undone")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["survivor_id"]),
            ", ".join(map(str, r["merged_ids"])),
            ", ".join(r["filled"]),
            r["created_by"],
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            f"{r['undone_at']:%Y-%m-%d %H:%M}" if r["undone_at"] else "",
        )
    console.print(table)


@app.command("undo")
def merges_undo(merge_id: int) -> None:
    """Undo a merge: every lead back exactly as it was, facts and tags included."""
    from leads_pipeline.lib.store import merges
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def undo() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            return merges.undo_merge(conn, merge_id, acting_user())

    result = run_or_fail(undo)
    console.print(
        f"merge {merge_id} undone: lead {result['survivorId']} restored,"
        f" {counted(result['restored'], 'merged lead')} back",
        highlight=False,
    )
