"""The one Dagster ``Definitions`` of the project: every stage's assets, checks, sensors and resources."""

import dagster as dg

from leads_pipeline.defs.contacts.assets import email_contacts, linkedin_profiles, phone_contacts
from leads_pipeline.defs.crm.assets import crm_sync, crm_sync_job, crm_sync_plan
from leads_pipeline.defs.crm.schedules import crm_schedules
from leads_pipeline.defs.crm.sensors import crm_connections_sensor
from leads_pipeline.defs.dedupe.assets import duplicate_clusters
from leads_pipeline.defs.enrichment.assets import company_profiles
from leads_pipeline.defs.enrichment.jobs import enrichment_job
from leads_pipeline.defs.enrichment.sensors import (
    enrich_after_import_sensor,
    enrichment_canceled_sensor,
    enrichment_failed_sensor,
    enrichment_succeeded_sensor,
)
from leads_pipeline.defs.executor import executor
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.imports.jobs import import_job
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.resources import default_resources
from leads_pipeline.defs.scoring.assets import lead_fit_model, lead_scores
from leads_pipeline.defs.scoring.schedules import daily_rescore, rescore_job
from leads_pipeline.defs.security.assets import crm_erasures, database_backup, retention_run
from leads_pipeline.defs.security.jobs import crm_erasures_job, database_backup_job, retention_job
from leads_pipeline.defs.security.schedules import (
    crm_erasures_schedule,
    database_backup_schedule,
    retention_schedule,
)

assets = [
    batch_leads,
    duplicate_clusters,
    email_contacts,
    phone_contacts,
    linkedin_profiles,
    company_profiles,
    lead_scores,
    lead_fit_model,
    crm_sync_plan,
    crm_sync,
    retention_run,
    crm_erasures,
    database_backup,
]

defs = dg.Definitions(
    assets=assets,
    jobs=[
        enrichment_job(key.to_user_string() for a in assets for key in a.keys),
        import_job,
        rescore_job,
        crm_sync_job,
        retention_job,
        crm_erasures_job,
        database_backup_job,
    ],
    schedules=[daily_rescore, retention_schedule, crm_erasures_schedule, database_backup_schedule, *crm_schedules()],
    sensors=[
        inbox_sensor,
        enrich_after_import_sensor,
        enrichment_succeeded_sensor,
        enrichment_canceled_sensor,
        enrichment_failed_sensor,
        crm_connections_sensor,
    ],
    resources=default_resources(),
    executor=executor,
)
