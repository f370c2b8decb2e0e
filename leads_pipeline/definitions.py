"""The one Dagster ``Definitions`` of the project: every stage's assets, checks, sensors and resources."""

import dagster as dg

from leads_pipeline.defs.contacts.assets import email_contacts, linkedin_profiles, phone_contacts
from leads_pipeline.defs.dedupe.assets import duplicate_clusters
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.imports.sensors import inbox_sensor
from leads_pipeline.defs.resources import default_resources

defs = dg.Definitions(
    assets=[batch_leads, duplicate_clusters, email_contacts, phone_contacts, linkedin_profiles],
    sensors=[inbox_sensor],
    resources=default_resources(),
)
