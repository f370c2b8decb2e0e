"""``leads search``: find leads by text and filters, a page at a time."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    csv_stdout,
    environment,
    one_output,
    print_json,
    print_line,
    print_table,
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
from leads_pipeline.lib.wording import counted


def search_command(
    query: Annotated[
        str | None, typer.Argument(help="Words that must all appear in name, email, company or title.")
    ] = None,
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: IdOption = None,
    sort: Annotated[str | None, typer.Option(help="Sort field; prefix '-' for descending (default: id).")] = None,
    limit: Annotated[int, typer.Option(help="Leads per page.")] = 50,
    after: Annotated[str | None, typer.Option(help="The cursor a previous page printed: the next page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: {leads, nextCursor}.")] = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv", help="Write the page as CSV (formula-safe; opted-out leads left out; audited) to standard output."
        ),
    ] = False,
) -> None:
    """Search leads: substring text query plus exact filters, keyset-paginated (--after CURSOR for more)."""
    from leads_pipeline.lib.export import write_leads_csv
    from leads_pipeline.lib.filters import Selection, Sort
    from leads_pipeline.lib.store import audit
    from leads_pipeline.lib.store.bulk import export_custom_columns, sellable_ids
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.search import LEAD_COLUMNS, Page, search

    one_output(as_json, as_csv)
    env = run_or_fail(environment)

    def run() -> tuple[Page, list[str]]:
        selection = Selection.build(
            lists=lists,
            where=where,
            query=query,
            tags=tags,
            stages=stages,
            score_min=score_min,
            score_max=score_max,
            ids=ids,
        )
        with connect(env.database_url) as conn:
            page = search(conn, selection, acting_user(), sort=Sort.parse(sort), limit=limit, after=after)
            custom: list[str] = []
            if as_csv:  # an export like `leads bulk export`: opted-out leads left out, audited
                with conn.transaction():
                    sellable = sellable_ids(conn, [r["id"] for r in page.leads])
                    page = dataclasses.replace(page, leads=[r for r in page.leads if r["id"] in sellable])
                    details = {"selection": selection.describe(), "to": "stdout", **audit.lead_ids(sorted(sellable))}
                    audit.record(conn, acting_user(), "leads.export", "selection", details, lists=selection.lists)
                # the whole selection's custom fields, not this page's: every page of one export lines up
                custom = export_custom_columns(conn, selection, acting_user())
            if not page.leads and not after:
                note_unheard_stages(conn, selection, acting_user())
            return page, custom

    page, custom = run_or_fail(run)
    if as_json:
        print_json({"leads": page.leads, "nextCursor": page.next_cursor})
        return
    if as_csv:
        # the columns of `leads bulk export`: an import of the file leaves the bookkeeping ones out
        # (mapping.left_out_columns), where a segment shared without its tags lost them
        columns = [c for c in LEAD_COLUMNS if c != "list_id"] + ["list", "tags", *custom]
        with csv_stdout() as out:
            write_leads_csv(out, page.leads, columns)
    else:
        _print_table(page.leads)
    if page.next_cursor:
        # on one line however long (it holds the sort value), to be copied or read by a script whole
        print_line(f"more: --after {page.next_cursor}", err=True)


def _print_table(rows: list[dict[str, Any]]) -> None:
    """The page as a table where the terminal is wide enough, else two lines a lead (``print_table``): at 80
    columns (a pipe, a log) the nine columns cut every email to a dozen letters ("ann@acme…"), and a script or
    a person grepping the output for an address found nothing."""
    from leads_pipeline.lib.fields import full_name

    table = Table("id", "list", "name", "email", "phone", "company", "title", "stage", "score")
    lines = []
    for r in rows:
        name = full_name(r["first_name"], r["last_name"]) or (r["full_name"] or "")
        score = "" if r["score"] is None else str(r["score"])
        cells = (r["email"] or "", r["phone"] or "", r["company"] or "", r["title"] or "")
        table.add_row(str(r["id"]), r["list"], name, *cells, r["stage"], score)
        values = [cell for cell in cells if cell] + [f"stage {r['stage']}"] + ([f"score {score}"] if score else [])
        lines.append((f"{r['id']}  {name} in {r['list']}", ", ".join(values)))
    print_table(table, lines)
    print_line(counted(len(rows), "lead"))
