"""Retention policies and applying them: how long leads, raw provider payloads, import files and run logs are kept.

Four kinds of policy, each global (``list_id`` NULL) or per list (overriding the global one for that list), but
``logs``, global only:

- ``leads``: delete leads untouched for N days (not updated and no new fact in that time), with their facts,
  tags and snapshots (going with the lead), and clear the raw cells kept in the import errors of files
  imported more than N days ago (rejected rows never become leads, so nothing else would remove them) and the
  column names of those finished imports (``imports.mapping``: a file without a header row had its first data
  row, a person's name and details, read as the column names, and a name is nothing erasure can search by), and
  the previous values of the leads those imports updated (``import_updates``, kept for their undo: such an import
  can no longer be undone);
- ``facts``: empty ``lead_facts.details`` (the raw provider payloads) of facts observed more than N days ago,
  keeping the value, source, confidence and cost;
- ``inbox``: delete import files in the drop folder (``inbox/<list name>/...``) modified more than N days ago;
- ``logs``: delete run logs on disk (enrichment jobs' ``logs/<job>.log``, Dagster's compute logs) modified more
  than N days ago, those of runs Dagster no longer has included. They can name people (erasure rewrites them), and
  a run's log spans lists, so the policy is global.

``apply`` does all of it in one transaction and records an audit entry; with ``dry_run`` it counts the same
rows in a transaction that is rolled back, and deletes no file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import audit
from leads_pipeline.lib.store.lists import Connection, clear_import_traces, release_merged_orphans
from leads_pipeline.lib.store.privacy import LOG_SUFFIXES
from leads_pipeline.lib.wording import counted

Kind = Literal["leads", "facts", "inbox", "logs"]
KINDS: Final[tuple[Kind, ...]] = ("leads", "facts", "inbox", "logs")
_COMPLETE: Final = ".complete"
"""The marker Dagster writes beside a finished step's compute logs; it goes with them."""
_DAY_S: Final = 86_400
MAX_DAYS: Final = 36_500
"""A hundred years. Far more days reached before year 1 (``now() - DAYS``), so every ``retention apply`` then
failed on the policy; more than an integer holds was a traceback. Keeping for good is ``unset``."""

# The days that apply to each live list for one kind: its own policy, else the global one.
_EFFECTIVE: Final = (
    "SELECT l.id AS list_id, l.name, coalesce(p.days, g.days) AS days FROM lists l"
    " LEFT JOIN retention_policies p ON p.list_id = l.id AND p.kind = %(kind)s"
    " LEFT JOIN retention_policies g ON g.list_id IS NULL AND g.kind = %(kind)s"
    " WHERE coalesce(p.days, g.days) IS NOT NULL"
)


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ConfigurationError(f"a retention policy is one of {', '.join(KINDS)}; got {kind!r}")
    return kind  # type: ignore[return-value]


def set_policy(conn: Connection, kind: str, days: int | None, *, list_id: int | None, actor: str) -> None:
    """Set (or with ``days`` None remove) the global or a list's policy of one kind; audited."""
    checked = check_kind(kind)
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ConfigurationError(
            f"DAYS must be from 1 to {MAX_DAYS} (100 years; `leads retention unset {checked}` keeps them for good);"
            f" got {days}"
        )
    if checked == "logs" and list_id is not None:
        raise ConfigurationError("a logs policy is global (a run's log spans lists): set it without --list")
    with conn.transaction():
        conn.execute(
            "DELETE FROM retention_policies WHERE kind = %s AND list_id IS NOT DISTINCT FROM %s", (checked, list_id)
        )
        if days is not None:
            conn.execute(
                "INSERT INTO retention_policies (list_id, kind, days, set_by) VALUES (%s, %s, %s, %s)",
                (list_id, checked, days, actor),
            )
        scope = f"list:{list_id}" if list_id is not None else "global"
        audit.record(conn, actor, "retention.set", scope, {"kind": checked, "days": days})


def policies(conn: Connection) -> list[dict[str, Any]]:
    """Every policy: global ones first, then by list name and kind."""
    return list(
        conn.execute(
            "SELECT p.kind, p.days, p.list_id, l.name AS list, p.set_by, p.set_at FROM retention_policies p"
            " LEFT JOIN lists l ON l.id = p.list_id ORDER BY p.list_id IS NOT NULL, l.name, p.kind"
        )
    )


def removal_sentence(dry_run: bool, counts: Mapping[str, int]) -> str:
    """What a run removed, or would remove, in one sentence whose one verb governs every count: the counts of the
    ``retention_run`` asset's metadata (``leads retention apply`` prints it, the run logs it). The run's own line
    read "would remove 0 leads, purged 12 fact payloads, cleared 5 import error values" for a dry run launched
    from the UI: nothing was purged or cleared."""
    snapshots = counts["import_snapshots_removed"]
    # the previous values an import kept of the leads it updated are its undo: say which imports lose it
    undo = " (their imports can no longer be undone)" if snapshots else ""
    return (
        f"{'would remove' if dry_run else 'removed'} {counted(counts['leads_deleted'], 'lead')},"
        f" {counted(counts['import_error_values_cleared'], 'import error value')},"
        f" the column names of {counted(counts['import_mappings_cleared'], 'import')},"
        f" the previous values of {counted(snapshots, 'updated lead')}{undo},"
        f" {counted(counts['fact_payloads_purged'], 'fact payload')},"
        f" {counted(counts['inbox_files_deleted'], 'inbox file')}"
        f" and {counted(counts['log_files_deleted'], 'log file')}"
    )


@dataclass
class RetentionReport:
    """What a run removed (or with a dry run, would remove)."""

    dry_run: bool
    leads: dict[str, int] = field(default_factory=dict)
    facts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    mappings: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "leadsDeleted": sum(self.leads.values()),
            "leadsDeletedByList": self.leads,
            "factsPurged": sum(self.facts.values()),
            "factsPurgedByList": self.facts,
            "importErrorsCleared": sum(self.errors.values()),
            "importErrorsClearedByList": self.errors,
            "importMappingsCleared": sum(self.mappings.values()),
            "importMappingsClearedByList": self.mappings,
            "importSnapshotsRemoved": sum(self.snapshots.values()),
            "importSnapshotsRemovedByList": self.snapshots,
            "filesDeleted": len(self.files),
            "files": self.files,
            "logFilesDeleted": len(self.logs),
            "logFiles": self.logs,
        }


def _per_list(conn: Connection, kind: Kind, change: str) -> dict[str, int]:
    """Run ``change``, a DELETE or UPDATE of the rows past their list's ``kind`` policy (the lists and their days
    are ``eff``) returning each changed row's ``list_id``, and count what it changed by list name (in one pass:
    a count per list, each reading every changed row, grew with lists times rows)."""
    rows = conn.execute(
        f"WITH eff AS ({_EFFECTIVE}), changed AS ({change})"
        " SELECT eff.name, count(*) AS n FROM changed JOIN eff ON eff.list_id = changed.list_id GROUP BY eff.name",
        {"kind": kind},
    )
    return {r["name"]: int(r["n"]) for r in rows}


def apply(
    conn: Connection, *, inbox: Path, actor: str, logs: Sequence[Path] = (), dry_run: bool = False
) -> RetentionReport:
    """Apply every policy (see the module doc), the logs one to the files under ``logs``; returns what was
    removed."""
    report = RetentionReport(dry_run)
    try:
        with conn.transaction():
            report.leads = _per_list(
                conn,
                "leads",
                "DELETE FROM leads d USING eff WHERE d.list_id = eff.list_id"
                " AND d.updated_at < now() - make_interval(days => eff.days)"
                " AND NOT EXISTS (SELECT 1 FROM lead_facts f WHERE f.lead_id = d.id"
                " AND f.observed_at >= now() - make_interval(days => eff.days))"
                " RETURNING d.list_id",
            )
            release_merged_orphans(conn)
            report.errors, report.mappings, report.snapshots = clear_import_traces(
                conn,
                f"SELECT list_id, name, now() - make_interval(days => days) AS before FROM ({_EFFECTIVE}) eff",
                {"kind": "leads"},
            )
            report.facts = _per_list(
                conn,
                "facts",
                "UPDATE lead_facts f SET details = '{}' FROM leads d, eff"
                " WHERE f.lead_id = d.id AND d.list_id = eff.list_id AND f.details <> '{}'"
                " AND f.observed_at < now() - make_interval(days => eff.days) RETURNING d.list_id",
            )
            expired = _expired_files(conn, inbox)
            report.files = [str(p) for p in expired]
            old_logs = _expired_logs(conn, logs)
            report.logs = [str(p) for p in old_logs]
            if dry_run:
                raise _DryRun
            for path in expired + old_logs:
                path.unlink(missing_ok=True)
            _drop_empty_folders(old_logs, logs)
            audit.record(conn, actor, "retention.apply", "retention", _summary(report))
    except _DryRun:
        pass
    return report


class _DryRun(Exception):
    """Rolls the dry run's transaction back."""


def _summary(report: RetentionReport) -> dict[str, Any]:
    document = report.as_json()
    document.pop("files")
    document.pop("logFiles")
    return document


def _expired_files(conn: Connection, inbox: Path) -> list[Path]:
    """Files under ``inbox/<folder>/`` older than the inbox policy of the list the folder names (or the global
    one; a folder naming no list follows the global policy). Symbolic links are passed over, as the inbox sensor
    passes them over: through ``inbox/x -> /home/bob`` (or the leads home, key files and all) anyone who may drop a
    file had the daemon delete every old file of the folder the link names."""
    if not inbox.is_dir():
        return []
    per_list = {r["name"].lower(): int(r["days"]) for r in conn.execute(_EFFECTIVE, {"kind": "inbox"})}
    global_row = conn.execute("SELECT days FROM retention_policies WHERE list_id IS NULL AND kind = 'inbox'").fetchone()
    default = int(global_row["days"]) if global_row else None
    now = time.time()
    expired: list[Path] = []
    for folder in sorted(p for p in inbox.iterdir() if p.is_dir() and not p.is_symlink()):
        days = per_list.get(folder.name.lower(), default)
        if days is None:
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime > days * _DAY_S:
                expired.append(path)
    return expired


def _expired_logs(conn: Connection, folders: Sequence[Path]) -> list[Path]:
    """Run logs (``LOG_SUFFIXES``, and Dagster's ``.complete`` markers beside them) under ``folders`` modified
    more than the logs policy's days ago; none without one. Symbolic links are passed over, as in the inbox."""
    row = conn.execute("SELECT days FROM retention_policies WHERE list_id IS NULL AND kind = 'logs'").fetchone()
    if row is None:
        return []
    before = time.time() - int(row["days"]) * _DAY_S
    suffixes = (*LOG_SUFFIXES, _COMPLETE)
    expired: list[Path] = []
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.rglob("*")):
            if (
                path.suffix.lower() in suffixes
                and path.is_file()
                and not path.is_symlink()
                and path.stat().st_mtime < before
            ):
                expired.append(path)
    return expired


def _drop_empty_folders(removed: list[Path], roots: Sequence[Path]) -> None:
    """Remove the folders the deleted logs left empty (Dagster's ``<run id>/compute_logs/``), up to the log
    folders themselves, which stay."""
    kept = {root.resolve() for root in roots}
    for folder in sorted({p.parent for p in removed}, key=lambda p: len(p.parts), reverse=True):
        while folder.resolve() not in kept and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
