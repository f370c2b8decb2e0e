"""Security assets. Retention: each materialization applies every retention policy and reports what it
removed in its metadata (the schedule in ``schedules.py`` runs it daily). CRM erasures: each materialization
sends the deletions erasure requests queued for connected CRMs (``lib/crm/erasure.py``), hourly and from
``leads privacy crm-erasures --process``. Backups: each materialization backs the whole database up to a new file
(``leads db backup``, ``lib/store/backup.py``) and deletes the oldest beyond the number kept."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from leads_pipeline.defs.config import RunConfig
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.crm.erasure import process_queue
from leads_pipeline.lib.crm.registry import CrmAccounts
from leads_pipeline.lib.runtime import inbox_folder, log_folders
from leads_pipeline.lib.store import audit, retention
from leads_pipeline.lib.store.backup import backup_folder, rotating_backup

SERVICE_ACTOR = "retention-schedule"
"""The actor of retention runs in the audit log when the config names none."""


class RetentionConfig(RunConfig):
    """Whether the run removes anything, and who the audit log names."""

    dry_run: bool = False
    """Count what would be removed and remove nothing."""
    actor: str = SERVICE_ACTOR
    """Who the audit log names for what is removed."""


@dg.asset(group_name="security", kinds={"postgres", "python"})
def retention_run(
    context: dg.AssetExecutionContext, config: RetentionConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """Applies the retention policies (`leads retention show`): deletes leads untouched for their list's
    number of days with the raw cells of old import errors and old imports' column names, empties raw provider
    payloads of old facts, deletes old import files from the inbox and old run logs."""
    with database.connection() as conn:
        policies = len(retention.policies(conn))
        report = retention.apply(
            conn, inbox=inbox_folder(), logs=log_folders(), actor=config.actor, dry_run=config.dry_run
        )
    if not policies:  # launched from the UI (the schedule skips such a day): its zeros read as nothing being old
        context.log.info("no retention policy is set (leads retention set): nothing is removed")
    summary = report.as_json()
    counts = {
        "leads_deleted": summary["leadsDeleted"],
        "fact_payloads_purged": summary["factsPurged"],
        "import_error_values_cleared": summary["importErrorsCleared"],
        "import_mappings_cleared": summary["importMappingsCleared"],
        "import_snapshots_removed": summary["importSnapshotsRemoved"],
        "inbox_files_deleted": summary["filesDeleted"],
        "log_files_deleted": summary["logFilesDeleted"],
    }
    context.log.info(retention.removal_sentence(report.dry_run, counts))
    return dg.MaterializeResult(
        metadata={
            "dry_run": dg.MetadataValue.bool(report.dry_run),
            "policies": dg.MetadataValue.int(policies),
            "leads_deleted": dg.MetadataValue.int(summary["leadsDeleted"]),
            "leads_deleted_by_list": dg.MetadataValue.json(report.leads),
            "fact_payloads_purged": dg.MetadataValue.int(summary["factsPurged"]),
            "fact_payloads_purged_by_list": dg.MetadataValue.json(report.facts),
            "import_error_values_cleared": dg.MetadataValue.int(summary["importErrorsCleared"]),
            "import_error_values_cleared_by_list": dg.MetadataValue.json(report.errors),
            "import_mappings_cleared": dg.MetadataValue.int(summary["importMappingsCleared"]),
            "import_mappings_cleared_by_list": dg.MetadataValue.json(report.mappings),
            "import_snapshots_removed": dg.MetadataValue.int(summary["importSnapshotsRemoved"]),
            "import_snapshots_removed_by_list": dg.MetadataValue.json(report.snapshots),
            "inbox_files_deleted": dg.MetadataValue.int(summary["filesDeleted"]),
            "inbox_files": dg.MetadataValue.json(report.files),
            "log_files_deleted": dg.MetadataValue.int(summary["logFilesDeleted"]),
            "log_files": dg.MetadataValue.json(report.logs),
        }
    )


class CrmErasuresConfig(RunConfig):
    """Who the audit log names for the deletions sent."""

    actor: str = "crm-erasure-queue"
    """Who the audit log names for each deletion sent."""


@dg.asset(group_name="security", kinds={"postgres", "python"})
def crm_erasures(
    context: dg.AssetExecutionContext, config: CrmErasuresConfig, database: LeadsDatabase, crm: CrmAccounts
) -> dg.MaterializeResult:
    """Deletes, in each connected CRM, the records of people erased by `leads privacy delete` (the queue in
    `crm_erasures`): through the CRM's client, with retries; a record the CRM no longer has counts as done.
    Every deletion is audited; what cannot be sent yet stays queued for the next run."""
    report = process_queue(database.database_url, crm.for_connection, actor=config.actor)
    summary = report.as_json()
    context.log.info(
        f"CRM erasures: {report.deleted} deleted, {report.absent} already absent, {report.failed} refused, "
        f"{report.pending} still pending"
    )
    for name, reason in report.blocked.items():
        context.log.warning(f"connection {name}: requests left pending: {reason}")
    return dg.MaterializeResult(
        metadata={
            "deleted": dg.MetadataValue.int(report.deleted),
            "absent": dg.MetadataValue.int(report.absent),
            "failed": dg.MetadataValue.int(report.failed),
            "retry_later": dg.MetadataValue.int(report.retry),
            "pending": dg.MetadataValue.int(report.pending),
            "blocked_connections": dg.MetadataValue.json(summary["blocked"]),
        }
    )


BACKUP_ACTOR = "backup-schedule"
"""The actor of scheduled backups in the audit log."""


class BackupConfig(RunConfig):
    """Where backups go and how many are kept."""

    folder: str = ""
    """The folder backups are written to (empty: LEADS_BACKUP_DIR, else backups/ in the leads home)."""
    keep: int = 7
    """How many of the newest backups in the folder are kept (at least 1); older ones are deleted after a backup."""


@dg.asset(group_name="security", kinds={"postgres"})
def database_backup(
    context: dg.AssetExecutionContext, config: BackupConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """Backs the whole database up to a new file in the backups folder (`leads db backup`: lists, leads, the audit
    log, Dagster's runs) and deletes the oldest backups there beyond the number kept. A backup opens only with the
    leads home's keys, which it does not hold."""
    folder = Path(config.folder) if config.folder else backup_folder()
    made, removed = rotating_backup(database.database_url, folder, config.keep, datetime.now(UTC))
    with database.connection() as conn:
        audit.record(conn, BACKUP_ACTOR, "db.backup", f"file:{made.path.name}", {"bytes": made.size})
    context.log.info(f"backup written to {made.path}; {len(removed)} older deleted")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(made.path)),
            "bytes": dg.MetadataValue.int(made.size),
            "lists": dg.MetadataValue.int(made.holdings.lists),
            "leads": dg.MetadataValue.int(made.holdings.leads),
            "keys_needed": dg.MetadataValue.json(made.keys),
            "deleted": dg.MetadataValue.json([path.name for path in removed]),
        }
    )
