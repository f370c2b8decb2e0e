"""``leads privacy``: GDPR/CCPA requests for one person, named by an email address or phone number.

``export`` writes everything held about them as JSON, ``delete`` erases it everywhere and keeps them from being
imported again (and queues the deletion of their records in connected CRMs, which ``crm-erasures --process``
sends), ``opt-out`` records a do-not-sell request (their leads are left out of exports and CRM syncs).
Every request is audited under a keyed hash of the person, never their address.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leads_pipeline.commands.common import (
    acting_user,
    api_shape,
    confirmed,
    environment,
    fail,
    json_text,
    output_file,
    print_json,
    print_line,
    require_every_list,
    run_or_fail,
)
from leads_pipeline.lib.runtime import log_folders
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="GDPR/CCPA requests: export, erase or opt out one person.", no_args_is_help=True)
T = TypeVar("T")
Who = Annotated[str, typer.Argument(metavar="EMAIL|PHONE", help="The person's email address or phone number.")]
Everyone = Annotated[
    bool,
    typer.Option(
        "--all",
        help="A number the leads of several people hold (a switchboard): act on all of them as one person "
        "(refused without it).",
    ),
]


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
    out: Annotated[
        Path | None, typer.Option("--out", help="JSON file to write (default, or -: standard output).")
    ] = None,
    everyone: Everyone = False,
) -> None:
    """Everything held about the person (leads in all lists, facts, import errors and updates, merges, tags,
    audit entries, suppression and opt-out state) as JSON."""
    from leads_pipeline.lib.export import written_whole
    from leads_pipeline.lib.store import privacy

    out = output_file(out)
    document = _run(lambda conn, env: privacy.export_person(conn, who, acting_user(), everyone=everyone))
    if out is None:
        print_json(document)
        return

    def write(target: Path) -> None:
        with written_whole(target, encoding="utf-8") as handle:
            handle.write(json_text(api_shape(document)))  # the same document as without --out

    run_or_fail(lambda: write(out))
    held = counted(len(document["leadIds"]), "lead")
    print_line(f"wrote the data held about {who} ({held}) to {out}")


@app.command("delete")
def privacy_delete(
    who: Who,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was removed as JSON.")] = False,
    everyone: Everyone = False,
) -> None:
    """Erase the person everywhere (leads in every list, facts, import errors and snapshots, merges, lines of
    import files in the inbox and of run logs, stored photos) and suppress them so that later imports skip them;
    their records in connected CRMs are queued for deletion. Cannot be undone."""
    from leads_pipeline.lib.store import privacy

    if not yes:
        _run(lambda conn, env: privacy.erasable_person(conn, who, acting_user(), everyone=everyone))
        if not confirmed(f"erase every trace of {who} for good?"):
            fail("nothing erased (confirm, or pass --yes)")

    def erase(conn: Any, env: Any) -> dict[str, Any]:
        return privacy.erase_person(
            conn, who, acting_user(), folders=[env.inbox], log_folders=log_folders(env.home), everyone=everyone
        )

    result = _run(erase)
    if as_json:
        print_json(result)
        return
    rows = ", ".join(f"{n} {table}" for table, n in result["removed"].items() if n)
    print_line(
        f"erased {who}: {counted(result['leads'], 'lead')} ({rows or 'no rows'}), "
        f"{counted(len(result['files']), 'import file')} rewritten, {counted(len(result['logs']), 'log file')} "
        f"cleaned, {counted(result['media'], 'photo')} deleted; "
        "later imports skip them"
    )
    if result["crmErasures"]:
        print_line(
            f"{result['crmErasures']} CRM records queued for deletion (sent hourly, or now with "
            "`leads privacy crm-erasures --process`)"
        )


@app.command("opt-out")
def privacy_opt_out(who: Who, everyone: Everyone = False) -> None:
    """Record a do-not-sell/do-not-share request: the person's leads (now and imported later) are left out of
    exports and CRM syncs."""
    from leads_pipeline.lib.store import privacy

    flagged = _run(lambda conn, env: privacy.opt_out(conn, who, acting_user(), everyone=everyone))
    print_line(f"{who} opted out: {counted(flagged, 'lead')} flagged, left out of exports and CRM syncs")


@app.command("crm-erasures")
def privacy_crm_erasures(
    process: Annotated[
        bool, typer.Option("--process", help="Send the pending deletions now (the hourly run's Dagster asset).")
    ] = False,
    status: Annotated[str | None, typer.Option("--status", help="Only pending, done or failed requests.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The deletions erasure requests owe connected CRMs (connection and CRM record id only), and their state;
    --process sends the pending ones through each CRM's API (a record the CRM no longer has counts as done). The
    queue spans every list: an owner of every list or a privacy officer."""
    from leads_pipeline.lib.store import crm_erasures

    if status is not None and status not in ("pending", "done", "failed"):
        fail(f"--status: expected pending, done or failed, found {status!r}")
    env = run_or_fail(environment)  # also points Dagster at the project's instance
    # the queue holds the CRM records of people erased from any list: shown and sent as the audit log is read
    run_or_fail(lambda: require_every_list(env.database_url, "the CRM erasure queue"))
    report = run_or_fail(lambda: launch_crm_erasures(acting_user())) if process else None
    rows = _run(lambda conn, env: crm_erasures.listing(conn, status))
    if as_json:
        print_json({"processed": report, "requests": rows})
        return
    if report is not None:
        print_line(
            f"deleted {report['deleted']}, already absent {report['absent']}, refused {report['failed']}, "
            f"still pending {report['pending']}"
        )
        for name, reason in report["blocked"].items():
            print_line(f"connection {name}: left pending: {reason}")
    for row in rows:
        state = row["outcome"] or row["status"]
        error = f"  ({row['last_error']})" if row["last_error"] and row["status"] != "done" else ""
        print_line(
            f"{row['id']:>6}  {row['connection']}  {row['crm']}  {row['remote_id']}  {state}  "
            f"{row['attempts']} attempts{error}"
        )
    if not rows:
        print_line("no CRM erasure requests" + (f" {status}" if status else ""))


def launch_crm_erasures(actor: str) -> dict[str, Any]:
    """Materialize ``crm_erasures`` through Dagster on the project's instance (the run shows in the UI)."""
    from leads_pipeline.defs.executor import failed_step_error, materialize_here
    from leads_pipeline.defs.resources import default_resources
    from leads_pipeline.defs.security.assets import crm_erasures
    from leads_pipeline.launcher import instance
    from leads_pipeline.lib.errors import PermanentError

    result = materialize_here(
        [crm_erasures],
        instance=instance(),
        resources=default_resources(),
        run_config={"ops": {"crm_erasures": {"config": {"actor": actor}}}},
    )
    materialized = result.asset_materializations_for_node("crm_erasures")
    if not materialized:
        failed = failed_step_error(result)
        raise PermanentError(f"the crm_erasures run failed: {failed[1] if failed else 'see the run'}")
    metadata = {key: value.value for key, value in materialized[0].metadata.items()}
    return {
        "deleted": metadata["deleted"],
        "absent": metadata["absent"],
        "failed": metadata["failed"],
        "retryLater": metadata["retry_later"],
        "pending": metadata["pending"],
        "blocked": metadata["blocked_connections"],
    }
