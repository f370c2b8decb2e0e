"""The one Dagster ``Definitions`` of the project: every stage's assets, checks, sensors and resources."""

import dagster as dg

from leads_pipeline.defs.dedupe.assets import duplicate_clusters
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.resources import default_resources
from leads_pipeline.defs.security.assets import retention_run
from leads_pipeline.defs.security.jobs import retention_job
from leads_pipeline.defs.security.schedules import retention_schedule

defs = dg.Definitions(
    assets=[batch_leads, duplicate_clusters, retention_run],
    jobs=[retention_job],
    schedules=[retention_schedule],
    sensors=[inbox_sensor],
    resources=default_resources(),
)
