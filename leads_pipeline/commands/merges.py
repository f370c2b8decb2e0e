"""``leads merges``: the history of duplicate merges, and undo."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    environment,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Merges of duplicate leads: history and undo.", no_args_is_help=True)


@app.command("ls", hidden=True)  # as `lists ls` and `jobs ls` name it
@app.command("list")
def merges_list(
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many merges (the newest).")] = 50,
    before: Annotated[int | None, typer.Option(min=1, help="Only merges older than this merge id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent merges in lists you can read, newest first; --before pages back to older ones (a `dedupe --merge`
    makes one a cluster)."""
    from leads_pipeline.lib.store import merges
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def fetch() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            return merges.list_merges(conn, acting_user(), limit + 1, before)

    found = run_or_fail(fetch)  # one more than shown: whether there are older ones
    rows = found[:limit]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "survivor", "merged", "filled", "by", "when", "undone")
    lines = []
    for r in rows:
        merged, filled = ", ".join(map(str, r["merged_ids"])), ", ".join(r["filled"])
        when = f"{r['created_at']:%Y-%m-%d %H:%M}"
        undone = f"{r['undone_at']:%Y-%m-%d %H:%M}" if r["undone_at"] else ""
        table.add_row(str(r["id"]), str(r["survivor_id"]), merged, filled, r["created_by"], when, undone)
        undone_at = f", undone at {undone}" if undone else ""
        # narrower than the table (80 columns: a pipe, a log) the merged ids and filled fields were cut to a few
        # letters: each merge takes two lines, every value whole
        lines.append((
            f"merge {r['id']}: kept lead {r['survivor_id']}, merged {merged}",
            f"filled {filled or 'nothing'}, by {r['created_by']} at {when}{undone_at}",
        ))  # fmt: skip
    print_table(table, lines, empty="no merges" + (f" before merge {before}" if before else ""))
    if len(found) > limit:  # how to see the older ones (only the newest 50 could be seen)
        print_line(f"more: --before {rows[-1]['id']}", err=True)


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
    print_line(
        f"merge {merge_id} undone: lead {result['survivorId']} restored,"
        f" {counted(result['restored'], 'merged lead')} back"
    )
