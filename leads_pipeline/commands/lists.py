"""``leads lists``: create lead lists and look at them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leads_pipeline.commands.common import acting_user, console, environment, print_json, run_or_fail

app = typer.Typer(help="Create and inspect lead lists.", no_args_is_help=True)


@app.command("create")
def lists_create(
    name: str,
    dedupe: Annotated[str, typer.Option(help="Duplicate key within the list: email, phone or both.")] = "email",
    description: Annotated[str | None, typer.Option(help="What the list is for.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PRD's JSON shape.")] = False,
) -> None:
    """Create a lead list."""
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import create_list

    env = run_or_fail(environment)

    def create() -> dict[str, object]:
        with connect(env.database_url) as conn:
            return create_list(conn, name, owner=acting_user(), dedupe=dedupe, description=description).as_json(0)  # type: ignore[arg-type]

    document = run_or_fail(create)
    if as_json:
        print_json(document)
    else:
        console.print(f"created list [bold]{document['name']}[/bold] (id {document['listId']}, dedupe by {dedupe})")


@app.command("show")
def lists_show(name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show a list and its lead count."""
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list, lead_count

    env = run_or_fail(environment)

    def show() -> dict[str, object]:
        with connect(env.database_url) as conn:
            lead_list = get_list(conn, name)
            return lead_list.as_json(lead_count(conn, lead_list.id))

    document = run_or_fail(show)
    if as_json:
        print_json(document)
        return
    table = Table(show_header=False)
    for key, value in document.items():
        table.add_row(key, str(value))
    console.print(table)
