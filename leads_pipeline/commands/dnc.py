"""``leads dnc import``: load a Do-Not-Call list (FTC area-code files or plain numbers) with its snapshot date."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from leads_pipeline.commands.common import (
    acting_user,
    environment,
    print_json,
    print_line,
    require_every_list,
    run_or_fail,
)
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Do-Not-Call lists the phone stage checks numbers against.", no_args_is_help=True)


@app.command("import")
def dnc_import(
    path: Path,
    fmt: Annotated[
        Literal["ftc", "plain"],
        typer.Option("--format", help="ftc: 'area code,number' lines; plain: one number per line."),
    ] = "ftc",
    kind: Annotated[
        Literal["full", "additions", "deletions"],
        typer.Option(help="A full list replaces the stored one; change lists add or remove."),
    ] = "full",
    snapshot: Annotated[
        str | None, typer.Option(help="The list's snapshot date (YYYY-MM-DD); default: the file's modification date.")
    ] = None,
    default_region: Annotated[
        str | None,
        typer.Option(
            help="Region of plain numbers written without a country code; default: $LEADS_DEFAULT_REGION, else US."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load a Do-Not-Call list; every phone the phone stage checks afterwards gets a dnc flag and this date."""
    from leads_pipeline.lib.contacts.dnc import read_dnc_file
    from leads_pipeline.lib.countries import configured_default_region
    from leads_pipeline.lib.errors import InputFileError
    from leads_pipeline.lib.store.contacts import load_dnc
    from leads_pipeline.lib.store.db import connect

    def given_date() -> date:
        if snapshot is None:
            try:
                return date.fromtimestamp(path.stat().st_mtime)
            except OSError as error:
                raise InputFileError(path, f"cannot read the DNC file ({error.strerror}); check the path") from error
        try:
            return date.fromisoformat(snapshot)
        except ValueError:
            raise InputFileError(path, f"--snapshot: expected a date like 2026-11-01, found {snapshot!r}") from None

    def snapshot_date() -> date:
        """The snapshot date, never in the future: a future date would keep the list "fresh" for the freshness
        check long after it is stale."""
        taken = given_date()
        if taken > date.today():
            what = "--snapshot" if snapshot is not None else "the file's modification date (no --snapshot given)"
            raise InputFileError(
                path, f"{what} {taken.isoformat()} is in the future; give the date the list was taken with --snapshot"
            )
        return taken

    env = run_or_fail(environment)
    # one registry for every list's phone stage: a full list replaces it, deletions unflag numbers everywhere
    run_or_fail(lambda: require_every_list(env.database_url, "loading a Do-Not-Call list"))

    def load() -> dict[str, Any]:
        taken = snapshot_date()
        region = configured_default_region(default_region)
        parsed = read_dnc_file(path, fmt, region)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with connect(env.database_url) as conn:
            list_id = load_dnc(
                conn,
                parsed.numbers,
                kind=kind,
                fmt=fmt,
                snapshot_date=taken,
                path=str(path.resolve()),
                sha256=digest,
                rejected=parsed.rejected,
                user=acting_user(),
            )
        return {
            "listId": list_id,
            "kind": kind,
            "snapshotDate": taken.isoformat(),
            "numbers": len(parsed.numbers),
            "rejected": parsed.rejected,
            "problems": parsed.problems,
        }

    result = run_or_fail(load)
    if as_json:
        print_json(result)
        return
    loaded = f"loaded {counted(result['numbers'], 'number')} ({kind}, snapshot {result['snapshotDate']})"
    print_line(f"{loaded}; {counted(result['rejected'], 'line')} rejected")
    for problem in result["problems"]:
        print_line(("warning:", "yellow"), f" {problem}", err=True)
