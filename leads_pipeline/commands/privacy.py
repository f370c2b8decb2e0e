"""``leads privacy``: GDPR/CCPA requests for one person, named by an email address or phone number.

``export`` writes everything held about them as JSON, ``delete`` erases it everywhere and keeps them from being
imported again, ``opt-out`` records a do-not-sell request (their leads are left out of exports and CRM syncs).
Every request is audited under a keyed hash of the person, never their address.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leads_pipeline.commands.common import acting_user, console, environment, fail, print_json, run_or_fail

app = typer.Typer(help="GDPR/CCPA requests: export, erase or opt out one person.", no_args_is_help=True)
T = TypeVar("T")
Who = Annotated[str, typer.Argument(metavar="EMAIL|PHONE", help="The person's email address or phone number.")]


def _run(action: Callable[[Any, Any], T]) -> T:
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def run() -> T:
        with connect(env.database_url) as conn:
            return action(conn, env)

    return run_or_fail(run)


@app.command("export")
def privacy_export(
    who: Who,
    out: Annotated[Path | None, typer.Option("--out", help="JSON file to write (default: standard output).")] = None,
) -> None:
    """Everything held about the person (leads in all lists, facts, import errors and updates, merges, tags,
    audit entries, suppression and opt-out state) as JSON."""
    from leads_pipeline.lib.store import privacy

    document = _run(lambda conn, env: privacy.export_person(conn, who, acting_user()))
    if out is None:
        print_json(document)
        return
    out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"wrote the data held about {who} ({len(document['leadIds'])} leads) to {out}", highlight=False)


@app.command("delete")
def privacy_delete(
    who: Who,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was removed as JSON.")] = False,
) -> None:
    """Erase the person everywhere (leads in every list, facts, import errors and snapshots, merges, lines of
    import files in the inbox) and suppress them so that later imports skip them. Cannot be undone."""
    from leads_pipeline.lib.store import privacy

    if not yes and not typer.confirm(f"erase every trace of {who} for good?"):
        fail("nothing erased (confirm, or pass --yes)")
    result = _run(lambda conn, env: privacy.erase_person(conn, who, acting_user(), folders=[env.inbox]))
    if as_json:
        print_json(result)
        return
    rows = ", ".join(f"{n} {table}" for table, n in result["removed"].items() if n)
    console.print(
        f"erased {who}: {result['leads']} leads ({rows or 'no rows'}), {len(result['files'])} import files "
        f"rewritten; later imports skip them",
        highlight=False,
    )


@app.command("opt-out")
def privacy_opt_out(who: Who) -> None:
    """Record a do-not-sell/do-not-share request: the person's leads (now and imported later) are left out of
    exports and CRM syncs."""
    from leads_pipeline.lib.store import privacy

    flagged = _run(lambda conn, env: privacy.opt_out(conn, who, acting_user()))
    console.print(f"{who} opted out: {flagged} leads flagged, left out of exports and CRM syncs", highlight=False)
