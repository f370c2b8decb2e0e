"""``leads bulk``: one action on every lead a selection matches (the same options as ``leads search``).

Each action is one transaction, needs the editor or owner role on every list it touches (export needs viewer),
and reports what it changed. ``delete`` shows the count and asks first (``--yes`` skips the question);
``restore`` undoes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from leads_pipeline.commands.common import (
    acting_user,
    confirmed,
    csv_stdout,
    environment,
    fail,
    output_file,
    print_json,
    print_line,
    run_or_fail,
)
from leads_pipeline.commands.selection import (
    IdOption,
    ListOption,
    ScoreMaxOption,
    ScoreMinOption,
    StageOption,
    TagOption,
    WhereOption,
    note_unheard_stages,
)
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.wording import counted

if TYPE_CHECKING:  # each command loads the store when it runs, not every `leads` at its start
    from leads_pipeline.lib.store.bulk import BulkResult
    from leads_pipeline.lib.store.lists import Connection

Outcome = TypeVar("Outcome", int, "BulkResult")
"""What an action returns: the count a delete asks about, or what it did."""

app = typer.Typer(help="Tag, edit, move, copy, delete or export many leads at once.", no_args_is_help=True)

QueryOption = Annotated[str | None, typer.Option("--query", help="Words that must appear (as in `leads search`).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _selection(
    query: str | None,
    lists: list[str] | None,
    where: list[str] | None,
    tags: list[str] | None,
    stages: list[str] | None,
    score_min: int | None,
    score_max: int | None,
    ids: list[int] | None,
) -> Selection:
    selection = run_or_fail(
        lambda: Selection.build(
            lists=lists,
            where=where,
            query=query,
            tags=tags,
            stages=stages,
            score_min=score_min,
            score_max=score_max,
            ids=ids,
        )
    )
    if selection == Selection():
        fail("say which leads: give --list, --where, --query, --tag, --stage, --score-min/--score-max or --id")
    return selection


def _run(action: Callable[[Connection], Outcome], selection: Selection | None = None) -> Outcome:
    """``action`` on a connection; with the ``selection`` it acted on, a result (or count) that matched no lead
    is followed by the note on stages no lead has (``note_unheard_stages``)."""
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def run() -> Outcome:
        with connect(env.database_url) as conn:
            result = action(conn)
            if selection is not None and not (result if isinstance(result, int) else result.matched):
                note_unheard_stages(conn, selection, acting_user())
            return result

    return run_or_fail(run)


def _report(result: BulkResult, as_json: bool, summary: str) -> None:
    """The result as JSON, or its summary on one line for the terminal to wrap: a summary holds a command to copy
    (`leads bulk restore --deleted-at TIME`), which wrapped by the console to its width was two lines."""
    if as_json:
        print_json(result.as_json())
    else:
        print_line(summary)


@app.command("tag")
def bulk_tag(
    tag_names: Annotated[list[str], typer.Argument(metavar="TAG...", help="Tags to add.")],
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add tags to the selected leads."""
    from leads_pipeline.lib.store import bulk

    selection = _selection(query, lists, where, tags, stages, score_min, score_max, ids)
    result = _run(lambda conn: bulk.tag(conn, selection, acting_user(), tag_names), selection)
    _report(result, as_json, f"tagged {counted(result.matched, 'lead')} ({counted(result.changed, 'new tag')})")


@app.command("untag")
def bulk_untag(
    tag_names: Annotated[list[str], typer.Argument(metavar="TAG...", help="Tags to remove.")],
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove tags from the selected leads."""
    from leads_pipeline.lib.store import bulk

    selection = _selection(query, lists, where, tags, stages, score_min, score_max, ids)
    result = _run(lambda conn: bulk.tag(conn, selection, acting_user(), tag_names, remove=True), selection)
    _report(result, as_json, f"removed {result.changed:,} tags from {result.matched:,} selected leads")


@app.command("set")
def bulk_set(
    field: Annotated[str, typer.Argument(help="A canonical field, stage, or custom.NAME.")],
    value: Annotated[str, typer.Argument(help="The new value ('' clears the field).")],
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    default_region: Annotated[
        str | None,
        typer.Option(
            help="Country (ISO alpha-2) a phone number is read in for a lead without one;"
            " default: $LEADS_DEFAULT_REGION, else US."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a field on the selected leads (normalized as an import would)."""
    from leads_pipeline.lib.countries import configured_default_region
    from leads_pipeline.lib.store import bulk

    selection = _selection(query, lists, where, tags, stages, score_min, score_max, ids)
    region = run_or_fail(lambda: configured_default_region(default_region))
    result = _run(
        lambda conn: bulk.set_field(conn, selection, acting_user(), field, value, default_region=region),
        selection,
    )
    _report(result, as_json, _set_summary(field, result))


def _set_summary(field: str, result: BulkResult) -> str:
    """What ``bulk set`` did, and which leads it left alone because the value would have duplicated a lead."""
    duplicates: list[int] = result.details["skippedAsDuplicates"]
    summary = f"set {field} on {result.changed:,} of {result.matched:,} selected leads"
    summary += f" ({result.skipped - len(duplicates):,} had it already)"
    if duplicates:
        shown = ", ".join(map(str, duplicates[:20])) + (", ..." if len(duplicates) > 20 else "")
        summary += (
            f"; {len(duplicates):,} skipped as duplicates: their list is deduplicated by {field} and another of its"
            f" leads has or would get that {field} (ids {shown})"
        )
    return summary


def _move_or_copy(copy: bool, target: str, selection: Selection, as_json: bool) -> None:
    from leads_pipeline.lib.store import bulk
    from leads_pipeline.lib.store.lists import get_list

    def act(conn: Connection) -> BulkResult:
        target_list = get_list(conn, target, acting_user())
        action = bulk.copy_to if copy else bulk.move_to
        return action(conn, selection, acting_user(), target_list)

    result = _run(act, selection)
    verb = "copied" if copy else "moved"
    _report(
        result,
        as_json,
        f"{verb} {result.changed:,} of {result.matched:,} selected leads to {target!r}; "
        f"{result.skipped:,} skipped as duplicates of leads already there",
    )


@app.command("move")
def bulk_move(
    to: Annotated[str, typer.Option("--to", help="The list to move the leads to.")],
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move the selected leads to another list (duplicates there by its dedupe key stay put)."""
    _move_or_copy(False, to, _selection(query, lists, where, tags, stages, score_min, score_max, ids), as_json)


@app.command("copy")
def bulk_copy(
    to: Annotated[str, typer.Option("--to", help="The list to copy the leads to.")],
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the selected leads into another list (skipping duplicates there by its dedupe key)."""
    _move_or_copy(True, to, _selection(query, lists, where, tags, stages, score_min, score_max, ids), as_json)


@app.command("delete")
def bulk_delete(
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete the selected leads (soft: `leads bulk restore --deleted-at TIME` brings them back)."""
    from leads_pipeline.lib.store import bulk

    selection = _selection(query, lists, where, tags, stages, score_min, score_max, ids)
    if not yes:  # the count the question shows is noted on, before it is asked
        matched = _run(lambda conn: bulk.count(conn, selection, acting_user(), "deleting its leads"), selection)
        if not confirmed(f"delete {counted(matched, 'lead')} ({selection.describe(values=True)})?"):
            fail("nothing deleted (confirm, or pass --yes)")
    result = _run(lambda conn: bulk.delete(conn, selection, acting_user()), selection if yes else None)
    restore = f"; `leads bulk restore --deleted-at {result.details['deletedAt']}` brings them back"
    _report(result, as_json, f"deleted {counted(result.changed, 'lead')}{restore if result.changed else ''}")


_EXAMPLE_TIME = "2026-11-30T01:35:47.509518+00:00"


@app.command("restore")
def bulk_restore(
    ids: Annotated[list[int] | None, typer.Option("--id", help="A deleted lead to restore (repeatable).")] = None,
    deleted_at: Annotated[
        str | None,
        typer.Option("--deleted-at", help="Restore every lead one `bulk delete` removed: the time it printed."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Restore leads deleted with `leads bulk delete`."""
    from datetime import datetime

    from leads_pipeline.lib.store import bulk

    if (ids is None) == (deleted_at is None):
        fail("say which leads: --id ID (repeatable) or --deleted-at TIME (the time `leads bulk delete` printed)")
    if deleted_at is not None:
        try:
            stamp = datetime.fromisoformat(deleted_at)
        except ValueError:
            fail(f"--deleted-at {deleted_at!r}: expected the time `leads bulk delete` printed, e.g. {_EXAMPLE_TIME}")
        if stamp.tzinfo is None:
            fail(f"--deleted-at {deleted_at!r}: give the time with its offset, as printed, e.g. {_EXAMPLE_TIME}")
        result = _run(lambda conn: bulk.restore_deleted_at(conn, stamp, acting_user()))
    else:
        result = _run(lambda conn: bulk.restore(conn, ids or [], acting_user()))
    _report(result, as_json, f"restored {result.changed:,} of {counted(result.matched, 'lead')}")


@app.command("export")
def bulk_export(
    out: Annotated[
        Path | None, typer.Option("--out", help="CSV file to write (default, or -: standard output).")
    ] = None,
    query: QueryOption = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
) -> None:
    """Export the selected leads to CSV, formula-safe (also where a spreadsheet splits cells at ";")."""
    import psycopg

    from leads_pipeline.lib.export import write_leads_csv, written_whole
    from leads_pipeline.lib.store import audit, bulk
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.search import LEAD_COLUMNS

    selection = _selection(query, lists, where, tags, stages, score_min, score_max, ids)
    out = output_file(out)
    env = run_or_fail(environment)

    def export() -> int:
        # One snapshot (REPEATABLE READ) for the ids the audit entry names and the rows written; the entry is
        # committed on its own connection before the first row leaves, so an export stopped half-way (Ctrl-C, a
        # closed pipe, a kill) still shows who took which leads.
        with connect(env.database_url) as conn, connect(env.database_url, autocommit=True) as log:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            exported = bulk.select_export(conn, selection, acting_user())
            if not exported.ids:
                note_unheard_stages(conn, selection, acting_user())
            columns = [c for c in LEAD_COLUMNS if c != "list_id"] + ["list", "tags", *exported.custom_columns]
            # with a BOM: Excel opens a UTF-8 file without one as the system's code page (García -> GarcÃ­a)
            target = written_whole(out, encoding="utf-8-sig", newline="") if out else csv_stdout()
            with target as handle:  # a file that cannot be written fails before the entry is made
                audit.record(  # the leads named: their lists' owners see who exported them, a privacy export finds it
                    log,
                    acting_user(),
                    "leads.export",
                    "selection",
                    {
                        "selection": selection.describe(),
                        "to": str(out) if out else "stdout",
                        **audit.lead_ids(exported.ids),
                    },
                    lists=selection.lists,
                )
                return write_leads_csv(handle, bulk.export_rows(conn), columns)

    written = run_or_fail(export)
    if out is not None:
        print_line(f"exported {counted(written, 'lead')} to {out}")
