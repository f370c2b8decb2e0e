"""The retention job: materializes ``retention_run`` (the schedule's target)."""

import dagster as dg

from leads_pipeline.defs.security.assets import retention_run

retention_job = dg.define_asset_job("retention_job", selection=[retention_run])
