"""``leads keys``: the encryption keys of PII at rest: which are in use, adding one, rotating to the active one.

Adding a key and rotating act on every list's data (and a lost or wrong key loses it), so both need an owner of
every list or a privacy officer (``require_every_list``), as other instance-wide actions do; each rotation is
audited.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import (
    acting_user,
    environment,
    fail,
    print_json,
    print_line,
    require_every_list,
    run_or_fail,
)
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Encryption keys of PII at rest: status, add, rotate.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("status")
def keys_status(as_json: JsonOption = False) -> None:
    """The keyring (ids, the active one, where it comes from) and how many lead values each key seals."""
    from leads_pipeline.lib.privacy import crypto
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.keys import key_usage

    env = run_or_fail(environment)

    def run() -> dict[str, Any]:
        ring = crypto.keyring()
        with connect(env.database_url) as conn:
            usage = key_usage(conn)
        source = crypto.KEYS_VAR if os.environ.get(crypto.KEYS_VAR) else str(crypto.keyring_file())
        missing = [key for key, count in usage.items() if count and key not in ring.keys]
        return {
            "keys": list(ring.keys),
            "active": ring.active,
            "source": source,
            "valuesByKey": usage,
            "missingKeys": missing,
        }

    status = run_or_fail(run)
    if as_json:
        print_json(status)
        return
    print_line(f"keys: {', '.join(status['keys'])} (active: {status['active']}) from {status['source']}")
    for key, count in status["valuesByKey"].items():
        missing = (" ", ("not in the keyring: these cannot be opened; add the key back", "red"))
        print_line(f"  {key}: {counted(count, 'lead value')}", *(missing if key in status["missingKeys"] else ()))


@app.command("add")
def keys_add(key_id: Annotated[str | None, typer.Argument(help="Id of the new key (default: k<n+1>).")] = None) -> None:
    """Add a random key to the key file and make it active (then run `leads keys rotate`). With keys in the
    environment, add the key there instead."""
    from leads_pipeline.lib.privacy import crypto

    env = run_or_fail(environment)
    run_or_fail(lambda: require_every_list(env.database_url, "adding an encryption key"))
    if os.environ.get(crypto.KEYS_VAR):
        fail(
            f"the keys come from {crypto.KEYS_VAR}: add ID:BASE64KEY there (e.g. from `openssl rand -base64 32`), "
            f"set {crypto.ACTIVE_VAR} to its id, then run `leads keys rotate`"
        )
    ring = run_or_fail(crypto.keyring)
    chosen = key_id or f"k{len(ring.keys) + 1}"
    if chosen in ring.keys or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", chosen):
        fail(f"key id {chosen!r} is taken or invalid; use letters, digits, - or _ and a new id")
    crypto.add_file_key(crypto.keyring_file(), chosen)
    print_line(f"added key {chosen} to {crypto.keyring_file()}; it is now active: run `leads keys rotate`")


@app.command("rotate")
def keys_rotate(
    pages: Annotated[
        int, typer.Option("--pages", min=1, max=1_000_000, help="Table pages re-sealed per transaction.")
    ] = 256,
    as_json: JsonOption = False,
) -> None:
    """Re-seal every stored PII value under the active key, in batches; an interrupted rotation resumes."""
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.keys import rotate

    env = run_or_fail(environment)
    run_or_fail(lambda: require_every_list(env.database_url, "rotating the encryption keys"))

    shown: list[str] = []

    def progress(table: str, done: int, total: int) -> None:
        """A line when the count moves: the walk goes on over the pages re-sealed rows moved to, past the count
        it started with, and printed "lead_facts: 74/74 pages" ten times over, as if it were stuck."""
        line = f"  {table}: {done:,}/{total:,} pages"
        if not as_json and shown[-1:] != [line]:
            shown.append(line)
            print_line(line)

    def run() -> dict[str, Any]:
        with connect(env.database_url, autocommit=True) as conn:
            return rotate(conn, acting_user(), pages_per_batch=pages, on_batch=progress)

    summary = run_or_fail(run)
    if as_json:
        print_json(summary)
        return
    print_line(
        f"rotation {summary['rotationId']}: {counted(summary['resealed'], 'row')} re-sealed"
        f" under key {summary['activeKey']}"
    )
