"""Retention as a Dagster asset: each materialization applies every retention policy and reports what it
removed in its metadata (the schedule in ``schedules.py`` runs it daily)."""

import dagster as dg

from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.runtime import inbox_folder
from leads_pipeline.lib.store import retention

SERVICE_ACTOR = "retention-schedule"
"""The actor of retention runs in the audit log when the config names none."""


class RetentionConfig(dg.Config):
    """``dry_run``: count what would be removed, remove nothing. ``actor``: who the audit log names."""

    dry_run: bool = False
    actor: str = SERVICE_ACTOR


@dg.asset(group_name="security", kinds={"postgres", "python"})
def retention_run(
    context: dg.AssetExecutionContext, config: RetentionConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """Applies the retention policies (`leads retention show`): deletes leads untouched for their list's
    number of days, empties raw provider payloads of old facts, deletes old import files from the inbox."""
    with database.connection() as conn:
        report = retention.apply(conn, inbox=inbox_folder(), actor=config.actor, dry_run=config.dry_run)
    summary = report.as_json()
    context.log.info(
        f"{'would remove' if report.dry_run else 'removed'} {summary['leadsDeleted']} leads, "
        f"purged {summary['factsPurged']} fact payloads, {summary['filesDeleted']} inbox files"
    )
    return dg.MaterializeResult(
        metadata={
            "dry_run": dg.MetadataValue.bool(report.dry_run),
            "leads_deleted": dg.MetadataValue.int(summary["leadsDeleted"]),
            "leads_deleted_by_list": dg.MetadataValue.json(report.leads),
            "fact_payloads_purged": dg.MetadataValue.int(summary["factsPurged"]),
            "fact_payloads_purged_by_list": dg.MetadataValue.json(report.facts),
            "inbox_files_deleted": dg.MetadataValue.int(summary["filesDeleted"]),
            "inbox_files": dg.MetadataValue.json(report.files),
        }
    )
