"""Fixtures for enrichment: the sandbox world's people imported as leads, and resources pointed at the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.enrichment.assets import company_profiles
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.support import SANDBOX_RATE, import_file, materialize_batch


@pytest.fixture
def imported_batch(database_url: str, world_leads_csv: Path) -> str:
    """The world's leads imported into list "prospects"; returns the import's batch id."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    status = import_file(database_url, world_leads_csv, batch_id="import-world")
    assert status["results"]["imported"] == 300
    return "import-world"


def sandbox_resources(database_url: str, sandbox: Sandbox, **gemini: Any) -> dict[str, Any]:
    env = sandbox.env()
    return {
        "database": LeadsDatabase(database_url=database_url),
        "gemini": GeminiResource(
            api_key="sandbox-gemini-key",
            base_url=env["GOOGLE_GEMINI_BASE_URL"],
            retry_attempts=3,
            retry_initial_delay_s=0.01,
            retry_max_delay_s=0.05,
            **gemini,
        ),
        "apify": ApifyResource(  # paced as the stages are, at a rate that never holds a call back
            token="sandbox-apify-token",
            api_url=env["APIFY_API_URL"],
            min_delay_between_retries_s=0.01,
            requests_per_second=SANDBOX_RATE,
        ),
    }


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def materialize_companies(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    partition: str,
    config: dict[str, Any] | None = None,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return materialize_batch(
        [company_profiles],
        partition,
        instance,
        resources,
        {"company_profiles": config or {}},
        raise_on_error=raise_on_error,
    )


def leads_by_email(database_url: str) -> dict[str, dict[str, Any]]:
    with connect(database_url) as conn:
        return {r["email"]: r for r in conn.execute("SELECT * FROM leads WHERE email IS NOT NULL")}
