"""The security jobs: ``retention_job`` materializes ``retention_run``, ``crm_erasures_job`` ``crm_erasures``,
``database_backup_job`` ``database_backup`` (the schedules' targets)."""

import dagster as dg

from leads_pipeline.defs.security.assets import crm_erasures, database_backup, retention_run

retention_job = dg.define_asset_job(
    "retention_job",
    selection=[retention_run],
    description="Applies the retention policies: removes the leads, raw payloads and inbox files past their time.",
)
crm_erasures_job = dg.define_asset_job(
    "crm_erasures_job",
    selection=[crm_erasures],
    description="Sends the deletions queued by erasure requests (leads privacy delete) to each connected CRM.",
)
database_backup_job = dg.define_asset_job(
    "database_backup_job",
    selection=[database_backup],
    description="Backs the whole database up to a new file in the backups folder, keeping the newest ones.",
)
