"""The daily rescore: one batch per configuration in use, idempotent per day, and scores decay with age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.defs.scoring.schedules import daily_rescore, rescore_batch_key, rescore_requests
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


def evaluate(database_url: str, instance: dg.DagsterInstance, moment: datetime) -> dg.SkipReason | list[dg.RunRequest]:
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=moment,
        resources={"database": LeadsDatabase(database_url=database_url)},
    ) as context:
        return daily_rescore(context)  # type: ignore[no-any-return]


def batch_count(database_url: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM batches WHERE id LIKE 'rescore-%'").fetchone()
    assert row is not None
    return int(row["n"])


def test_evaluating_the_daily_rescore_writes_no_batch(database_url: str) -> None:
    """Evaluating the daily rescore (the UI's test, a preview) created its batches: a dry run wrote them. Now it
    only registers the partition key of the day's run; the run makes its batch as it starts."""
    with connect(database_url) as conn:
        _, ids = add_leads(conn, [{"email": "kept.score@example.com"}])
        score_leads(conn, ids, parse_config(RECENCY_ONLY), now=datetime.now(UTC))
    tick = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    with dg.instance_for_test() as instance:
        requests = evaluate(database_url, instance, tick)
        assert isinstance(requests, list)
        [request] = requests
        assert request.partition_key == f"rescore-{tick:%Y%m%d}-{parse_config(RECENCY_ONLY).version}"
        assert request.tags["dagster/priority"] == "-10", "queued after the runs people launch"
        assert evaluate(database_url, instance, tick) == requests  # a tick evaluated again asks for the same run
        assert instance.get_dynamic_partitions(BATCHES) == [request.partition_key]
        assert batch_count(database_url) == 0

        config = request.run_config["ops"]["lead_scores"]["config"]
        result = materialize(database_url, instance, lead_scores, config, request.partition_key, request.tags)
        assert result.success
    assert batch_count(database_url) == 1
    with connect(database_url) as conn:
        assert batch_lead_ids(conn, request.partition_key or "") == ids


def test_no_scored_leads_means_no_run(database_url: str) -> None:
    with dg.instance_for_test() as instance:
        result = evaluate(database_url, instance, datetime.now(UTC))
        assert result == dg.SkipReason("no scored leads to rescore")
        assert instance.get_dynamic_partitions(BATCHES) == []


def test_a_days_rescore_releases_the_members_of_earlier_days_batches(database_url: str) -> None:
    """Each day's rescore batch kept every scored lead as a member for good (60 days of 1,000 leads: 60,000 rows,
    12 MB). Making a day's batch now releases those of earlier days, every configuration's; the batches stay."""
    now = datetime.now(UTC)
    recency, other = parse_config(RECENCY_ONLY), parse_config({**RECENCY_ONLY, "recency": {"dataHalfLifeDays": 20}})
    with connect(database_url) as conn:
        _, ids = add_leads(conn, [{"email": f"daily{i}@example.com"} for i in range(3)])
        score_leads(conn, ids[:2], recency, now=now)
        score_leads(conn, ids[2:], other, now=now)

        def rescore(day: datetime, config_version: str) -> str:
            key = rescore_batch_key(day, config_version)
            store.create_rescore_batch(conn, key, config_version)
            return key

        first = [rescore(now + timedelta(days=1), c.version) for c in (recency, other)]
        assert [batch_lead_ids(conn, key) for key in first] == [ids[:2], ids[2:]]  # the same day's are kept
        second = rescore(now + timedelta(days=2), recency.version)
        assert [batch_lead_ids(conn, key) for key in first] == [[], []]  # the configuration without a run too
        assert batch_lead_ids(conn, second) == ids[:2]
        assert rescore(now + timedelta(days=1), recency.version) == first[0]
        assert batch_lead_ids(conn, first[0]) == [], "a superseded day re-run scores nothing"
        assert batch_lead_ids(conn, second) == ids[:2]
    assert batch_count(database_url) == 3
