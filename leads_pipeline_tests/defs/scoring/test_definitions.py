"""The scoring stage in the project's Definitions: assets, check, job and schedule resolve."""

from __future__ import annotations

import dagster as dg

from leads_pipeline.definitions import defs
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.defs.scoring.checks import SCORES_CHECK


def test_scoring_assets_check_and_schedule_are_defined() -> None:
    graph = defs.resolve_asset_graph()
    scores = dg.AssetKey("lead_scores")
    node = graph.get(scores)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition) and node.partitions_def.name == BATCHES
    assert node.group_name == "scoring"
    assert dg.AssetKey("batch_leads") in node.parent_keys
    assert {check.name for check in graph.get_check_keys_for_assets({scores})} == {SCORES_CHECK}
    assert graph.get(dg.AssetKey("lead_fit_model")).partitions_def is None
    schedule = defs.resolve_schedule_def("daily_rescore")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 3 * * *", "rescore_leads")
    assert defs.resolve_job_def("rescore_leads").partitions_def is not None
