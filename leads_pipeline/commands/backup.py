"""``leads db backup`` and ``leads db restore``: the whole database to one file and back (``lib/store/backup``).

A backup holds every list's data, so it needs an owner of every list or a privacy officer, as the other
instance-wide actions do (``require_every_list``); so does a restore over a database holding lists. Both are
audited: a backup in the database it copied, a restore in the database it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

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

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write (pg_dump's custom format).")],
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Back up the whole database to one file: lists, leads, their history, the audit log and Dagster's runs.
    \f
    The file holds PII sealed as stored: it opens only with this leads home's keys, which it does not hold; the
    command says which and where they are."""
    from leads_pipeline.lib.store import audit
    from leads_pipeline.lib.store import backup as backups
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)
    run_or_fail(lambda: require_every_list(env.database_url, "a backup of the database"))
    made = run_or_fail(lambda: backups.backup(env.database_url, file, replace=force))
    report: dict[str, Any] = {
        "file": str(made.path),
        "bytes": made.size,
        **made.holdings.as_json(),
        "encryptionKeys": [name.partition(":")[2] for name in made.keys if name.startswith("encryption:")],
        **_key_sources(env.home),
    }
    with connect(env.database_url) as conn:
        audit.record(conn, acting_user(), "db.backup", f"file:{made.path.name}", {"bytes": made.size})
    if as_json:
        print_json(report)
        return
    print_line(
        f"backup written to {made.path} ({_size(made.size)}): {counted(made.holdings.lists, 'list')},"
        f" {counted(made.holdings.leads, 'lead')}, their history, the audit log and Dagster's runs"
    )
    if made.keys:
        ids = report["encryptionKeys"]
        print_line(
            f"it opens only with this leads home's keys, which it does not hold: encryption"
            f" {'keys' if len(ids) > 1 else 'key'} {', '.join(ids)} from"
            f" {report['encryptionKeysFrom']} and the suppression key from {report['suppressionKeyFrom']};"
            " keep copies of them apart from the backup"
        )


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `leads db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the lists and leads the database holds with the backup's.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into the database, replacing what it holds, in one transaction (all or nothing).
    \f
    Refused while other sessions use the database (stop ``leads dev`` and jobs first), over lists or leads
    without --force, and before anything changes when this leads home's keys are not the backup's."""
    from leads_pipeline.lib.store import audit
    from leads_pipeline.lib.store import backup as backups
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(lambda: environment(check_keys=False))
    archive = run_or_fail(lambda: backups.read_archive(file))
    keys_not_here = run_or_fail(lambda: backups.require_archive_keys(archive))
    if force and run_or_fail(lambda: backups.holdings(env.database_url)).lists:
        run_or_fail(lambda: require_every_list(env.database_url, "replacing the database with a backup"))
    restored = run_or_fail(lambda: backups.restore(env.database_url, archive, replace=force))
    report: dict[str, Any] = {
        "file": str(restored.path),
        "replaced": restored.replaced.as_json(),
        "restored": restored.holdings.as_json(),
        "migrationsApplied": restored.migrations_applied,
        "keysNotHere": keys_not_here,
    }
    with connect(env.database_url) as conn:
        audit.record(
            conn,
            acting_user(),
            "db.restore",
            f"file:{restored.path.name}",
            {"replaced": report["replaced"], "restored": report["restored"]},
        )
    if as_json:
        print_json(report)
        return
    replaced = restored.replaced
    print_line(
        f"restored {restored.path}: {counted(restored.holdings.lists, 'list')},"
        f" {counted(restored.holdings.leads, 'lead')}"
        + (
            f" (replacing {counted(replaced.lists, 'list')}, {counted(replaced.leads, 'lead')})"
            if replaced.lists or replaced.leads
            else ""
        )
    )
    if restored.migrations_applied:
        print_line(f"brought up to date: {counted(len(restored.migrations_applied), 'migration')} applied")
    if keys_not_here:
        print_line(
            ("warning:", "yellow"),
            f" the backup's database also knew encryption keys {', '.join(keys_not_here)}, not in this keyring:"
            " values still sealed under them do not open (`leads keys status` counts them)",
        )


def _key_sources(home: Path) -> dict[str, str]:
    """Where this process's keys come from: the environment's variables, or the leads home's files."""
    from leads_pipeline.lib.privacy import crypto
    from leads_pipeline.lib.privacy import keys as suppression

    return {
        "encryptionKeysFrom": crypto.KEYS_VAR if os.environ.get(crypto.KEYS_VAR) else str(crypto.keyring_file()),
        "suppressionKeyFrom": (
            suppression.ENV_VAR if os.environ.get(suppression.ENV_VAR) else str(home / suppression.KEY_FILE)
        ),
    }


def _size(size: int) -> str:
    """A file's size as people read it: 367.3 KB, 1.2 GB."""
    if size < 1024:
        return counted(size, "byte")
    value, unit = float(size) / 1024, "KB"
    for larger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"
