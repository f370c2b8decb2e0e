"""The one Dagster ``Definitions`` of the project: every stage's assets, checks, sensors and resources."""

import dagster as dg

from leads_pipeline.defs.crm.assets import crm_sync, crm_sync_job, crm_sync_plan
from leads_pipeline.defs.crm.schedules import crm_schedules
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.resources import default_resources

defs = dg.Definitions(
    assets=[batch_leads, crm_sync_plan, crm_sync],
    sensors=[inbox_sensor],
    jobs=[crm_sync_job],
    schedules=crm_schedules(),
    resources=default_resources(),
)
