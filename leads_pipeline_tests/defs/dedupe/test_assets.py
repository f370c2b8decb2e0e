"""Materializing ``duplicate_clusters`` for an import batch: clusters found, the check warns, merge clears it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from leads_pipeline.defs.dedupe.assets import duplicate_clusters
from leads_pipeline.defs.dedupe.checks import UNMERGED_CHECK
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.merges import merge_cluster
from leads_pipeline_tests.support import import_file, live_leads, materialize_batch, step_failure, while_uncommitted

ROWS = (
    "First Name,Last Name,Company,Email,Phone\n"
    "Ann,Lee,Acme Inc,ann@acme.example,+1 415 555 0101\n"
    "Ann,Lee,ACME,ann.lee@gmail.example,\n"
    "Bob,Ng,Globex,bob@globex.example,+1 415 555 0101\n"
)


def _materialize(database_url: str, batch: str, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    resources = {"database": LeadsDatabase(database_url=database_url)}
    return materialize_batch(
        [duplicate_clusters],
        batch,
        dg.DagsterInstance.ephemeral(),
        resources,
        {"duplicate_clusters": config},
        raise_on_error=False,
    )


def test_a_partition_no_import_wrote_is_refused_in_words_a_user_can_act_on(database_url: str) -> None:
    """The partition of a dropped file whose import was refused before it wrote anything: with a user given, it
    found no clusters and passed; without, it said the batch "has no list and no leads", not why."""
    for config in ({}, {"user": "tester"}):
        result = _materialize(database_url, "import-fair-0e6ccb-empty", config)
        assert not result.success
        assert step_failure(result) == (
            "batch 'import-fair-0e6ccb-empty' has no leads to look for duplicates in: it is no import's (one refused"
            " before it wrote anything, as its batch_leads run says, leaves none) and no selection's; import a file"
        )


def test_clusters_of_a_batch_then_merge_clears_the_check(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(ROWS, encoding="utf-8")
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
    import_file(database_url, path, "fair", batch_id="batch-fair")

    result = _materialize(database_url, "batch-fair", {})
    assert result.success
    [materialization] = result.asset_materializations_for_node("duplicate_clusters")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert (metadata["clusters"], metadata["duplicate_leads"], metadata["merged"]) == (1, 1, 0)
    assert "same first name" in str(metadata["preview"])
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (UNMERGED_CHECK, False)
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["unmerged_clusters"].value == 1

    denied = _materialize(database_url, "batch-fair", {"merge": True, "user": "stranger"})
    assert not denied.success

    merged = _materialize(database_url, "batch-fair", {"merge": True})
    assert merged.success
    [check] = merged.get_asset_check_evaluations()
    assert check.passed and check.metadata["unmerged_clusters"].value == 0
    assert live_leads(database_url) == 2


def test_a_merge_run_while_another_merges_the_same_cluster_skips_it(database_url: str, tmp_path: Path) -> None:
    """Two merging materializations of one batch at once: the second found the cluster before the first committed,
    waited for it, then failed ("fewer than two of them are live"), a failed run for work already done. It now
    skips the cluster the other merged, succeeds, and its check finds nothing left unmerged."""
    path = tmp_path / "leads.csv"
    path.write_text(ROWS, encoding="utf-8")
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
    import_file(database_url, path, "fair", batch_id="batch-fair")
    with connect(database_url) as conn:
        pair = [r["id"] for r in conn.execute("SELECT id FROM leads WHERE first_name = 'Ann' ORDER BY id")]

    result = while_uncommitted(  # the other run has merged the cluster and not committed yet
        database_url,
        lambda conn: merge_cluster(conn, pair, "tester", reasons=["same name"], score=1.0),
        lambda: _materialize(database_url, "batch-fair", {"merge": True}),
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("duplicate_clusters")
    assert (materialization.metadata["clusters"].value, materialization.metadata["merged"].value) == (1, 0)
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["unmerged_clusters"].value == 0
    assert live_leads(database_url) == 2
