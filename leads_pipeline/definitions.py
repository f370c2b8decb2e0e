"""The one Dagster ``Definitions`` of the project: every stage's assets, checks, sensors and resources."""

import dagster as dg

from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.resources import default_resources
from leads_pipeline.defs.scoring.assets import lead_fit_model, lead_scores
from leads_pipeline.defs.scoring.schedules import daily_rescore, rescore_job

defs = dg.Definitions(
    assets=[batch_leads, lead_scores, lead_fit_model],
    jobs=[rescore_job],
    schedules=[daily_rescore],
    sensors=[inbox_sensor],
    resources=default_resources(),
)
