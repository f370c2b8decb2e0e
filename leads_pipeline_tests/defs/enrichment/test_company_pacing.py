"""``company_profiles`` paced under a rate-limited Gemini emulator: a whole batch, over the wire, with no 429."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.ratelimit import bucket_key
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings, build_http_app
from leads_pipeline.sandbox.http.common import RateLimit
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.enrichment.conftest import materialize_companies
from leads_pipeline_tests.lib.clients.test_gemini_pacing import Recorder
from leads_pipeline_tests.support import served

LIMIT = RateLimit(10, 1.0)


@pytest.fixture
def limited(sandbox_world: World) -> Iterator[tuple[Recorder, str]]:
    """The world's emulators with Gemini limited to 10 requests a second per key, like the real API's quota."""
    settings = EmulatorSettings(providers={"gemini": ProviderSettings(rate_limit=LIMIT)})
    recorder = Recorder(build_http_app(sandbox_world, settings))
    with served(recorder) as url:
        yield recorder, url


def test_a_batch_paced_under_the_limit_gets_no_429_and_every_company_answered(
    database_url: str, imported_batch: str, limited: tuple[Recorder, str], instance: dg.DagsterInstance
) -> None:
    recorder, url = limited
    resources = {
        "database": LeadsDatabase(database_url=database_url),
        "gemini": GeminiResource(api_key="sandbox-gemini-key", base_url=f"{url}/gemini", retry_attempts=3),
        "apify": ApifyResource(token="sandbox-apify-token", api_url=f"{url}/apify"),
    }
    config = {"concurrency": 8, "requests_per_second": {"gemini": 9.0}}

    result = materialize_companies(resources, instance, imported_batch, config)

    assert result.success
    with connect(database_url) as conn:
        lookups = conn.execute("SELECT count(*) AS n FROM company_profiles WHERE provider = 'gemini'").fetchone()
        failures = conn.execute("SELECT count(*) AS n FROM enrichment_failures").fetchone()
        buckets = [r["key"] for r in conn.execute("SELECT key FROM rate_buckets")]
    statuses = recorder.statuses()
    assert lookups is not None and len(statuses) == lookups["n"] >= 20
    assert statuses == [200] * len(statuses)  # eight workers, one bucket: never more than 10 in any second
    assert failures == {"n": 0}
    assert buckets == [bucket_key("gemini", "sandbox-gemini-key")]  # the rate is the key's, shared by all runs
    [materialization] = result.asset_materializations_for_node("company_profiles")
    assert 0 < materialization.metadata["requests_per_second"].value["gemini"] <= 10  # type: ignore[attr-defined]
