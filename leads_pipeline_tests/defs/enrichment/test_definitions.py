"""The enrichment objects in the one Definitions: the asset with its pool, retries and checks, the job, sensors."""

from __future__ import annotations

import dagster as dg

from leads_pipeline.definitions import defs
from leads_pipeline.defs.enrichment.checks import BUDGET_CHECK, FACTS_CHECK
from leads_pipeline.defs.enrichment.jobs import ENRICHMENT_JOB, enrichment_job
from leads_pipeline.defs.partitions import BATCHES


def test_company_profiles_is_a_batch_partitioned_pooled_asset_with_retries_and_checks() -> None:
    key = dg.AssetKey("company_profiles")
    graph = defs.resolve_asset_graph()
    node = graph.get(key)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition) and node.partitions_def.name == BATCHES
    assert node.group_name == "enrichment"
    assert {c.name for c in graph.get_check_keys_for_assets({key})} == {FACTS_CHECK, BUDGET_CHECK}
    assets_def = defs.resolve_assets_def(key)
    assert assets_def.op.pool == "gemini"
    assert assets_def.op.retry_policy is not None and assets_def.op.retry_policy.backoff == dg.Backoff.EXPONENTIAL


def test_enrichment_job_and_sensors_resolve() -> None:
    job = defs.resolve_job_def(ENRICHMENT_JOB)
    assert isinstance(job.partitions_def, dg.DynamicPartitionsDefinition)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "email_contacts",
        "phone_contacts",
        "linkedin_profiles",
        "company_profiles",
    }
    for name in ("enrich_after_import_sensor", "enrichment_succeeded_sensor", "enrichment_failed_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_the_job_takes_contact_assets_once_they_are_deployed() -> None:
    job = enrichment_job(key for key in ("batch_leads", "company_profiles", "email_contacts", "lead_scores"))
    assert str(job.selection) == 'key:"email_contacts" or key:"company_profiles"'
