"""The daily rescore: one batch per configuration in use, idempotent per day, and scores decay with age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.defs.scoring.schedules import daily_rescore, due_tick, rescore_requests
from leads_pipeline.lib.scoring.batch import score_leads
from leads_pipeline.lib.scoring.config import parse_config
from leads_pipeline.lib.store import scoring as store
from leads_pipeline.lib.store.batches import batch_lead_ids
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.defs.scoring.test_assets import materialize
from leads_pipeline_tests.lib.scoring.support import add_leads

pytestmark = pytest.mark.integration
RECENCY_ONLY = {
    "weights": {"dataCompleteness": 0, "companyFit": 0, "engagement": 0, "recency": 1},
    "recency": {"dataHalfLifeDays": 10},
    "thresholds": {"mql": 30, "sql": 60},
    "stages": {"regression": True},
}


def test_daily_rescore_decays_scores_under_each_leads_configuration(database_url: str) -> None:
    now = datetime.now(UTC)
    recency = parse_config(RECENCY_ONLY)
    other = parse_config({**RECENCY_ONLY, "recency": {"dataHalfLifeDays": 20}})
    with connect(database_url) as conn:
        _, ids = add_leads(conn, [{"email": f"lead{i}@example.com"} for i in range(3)])
        conn.execute("UPDATE leads SET updated_at = %s", (now,))
        score_leads(conn, ids[:2], recency, now=now)
        score_leads(conn, ids[2:], other, now=now)
        assert {r["score"] for r in conn.execute("SELECT score FROM lead_scores")} == {100}

    tick = now + timedelta(days=10)
    with connect(database_url) as conn:
        requests = rescore_requests(conn, tick)
    keys = sorted(r.partition_key or "" for r in requests)
    assert keys == sorted(f"rescore-{tick:%Y%m%d}-{c.version}" for c in (recency, other))
    assert sorted(r.run_key or "" for r in requests) == keys  # one run per configuration and day
    with dg.instance_for_test() as instance:
        for request in requests:
            config = request.run_config["ops"]["lead_scores"]["config"]
            result = materialize(database_url, instance, lead_scores, config, request.partition_key, request.tags)
            assert result.success
    with connect(database_url) as conn:
        scores = {r["lead_id"]: r for r in conn.execute("SELECT * FROM lead_scores")}
        assert [scores[i]["score"] for i in ids] == [50, 50, 71]  # half-life 10 days; 20 days: 2^-0.5
        assert {scores[i]["config_version"] for i in ids[:2]} == {recency.version}
        assert [h["score"] for h in store.score_history(conn, ids[0])] == [100, 50]
        assert conn.execute("SELECT stage FROM leads WHERE id = %s", (ids[0],)).fetchone() == {"stage": "mql"}


def evaluate(database_url: str, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": LeadsDatabase(database_url=database_url)}
    ) as context:
        result = daily_rescore(context)
    assert isinstance(result, dg.SensorResult)
    return result


def batch_count(database_url: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM batches WHERE id LIKE 'rescore-%'").fetchone()
    assert row is not None
    return int(row["n"])


def test_evaluating_the_daily_rescore_writes_nothing(database_url: str) -> None:
    """Evaluating the daily rescore (the UI's test, a preview) created its batches and added their partitions:
    a dry run wrote both. Now it asks for the runs and the partitions; the daemon adds those, a run makes its
    batch as it starts. It fires once a day: the first evaluation only remembers the last 03:00 UTC."""
    with connect(database_url) as conn:
        _, ids = add_leads(conn, [{"email": "kept.score@example.com"}])
        score_leads(conn, ids, parse_config(RECENCY_ONLY), now=datetime.now(UTC))
    with dg.instance_for_test() as instance:
        first = evaluate(database_url, instance, None)
        assert (first.run_requests, first.skip_reason is not None) == ([], True)
        assert first.cursor is not None
        tick = datetime.fromisoformat(first.cursor)
        assert (tick.hour, tick.minute, tick <= datetime.now(UTC) < tick + timedelta(days=1)) == (3, 0, True)
        assert evaluate(database_url, instance, first.cursor).run_requests == []  # once a day

        due = evaluate(database_url, instance, (tick - timedelta(days=1)).isoformat())
        assert due.cursor is not None
        fired = datetime.fromisoformat(due.cursor)
        [request] = due.run_requests or []
        assert request.partition_key == f"rescore-{fired:%Y%m%d}-{parse_config(RECENCY_ONLY).version}"
        [partitions] = due.dynamic_partitions_requests or []
        assert isinstance(partitions, dg.AddDynamicPartitionsRequest)
        assert list(partitions.partition_keys) == [request.partition_key]
        assert instance.get_dynamic_partitions(BATCHES) == []
        assert batch_count(database_url) == 0

        config = request.run_config["ops"]["lead_scores"]["config"]
        result = materialize(database_url, instance, lead_scores, config, request.partition_key, request.tags)
        assert result.success
    assert batch_count(database_url) == 1
    with connect(database_url) as conn:
        assert batch_lead_ids(conn, request.partition_key or "") == ids


def test_no_scored_leads_means_no_run(database_url: str) -> None:
    with dg.instance_for_test() as instance:
        yesterday = (due_tick(datetime.now(UTC)) - timedelta(days=1)).isoformat()
        result = evaluate(database_url, instance, yesterday)
    assert (result.run_requests, result.skip_reason) == ([], dg.SkipReason("no scored leads to rescore"))
