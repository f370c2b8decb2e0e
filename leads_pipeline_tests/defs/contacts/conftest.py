"""A batch of leads written from the sandbox world (some contacts blanked), and resources pointed at the sandbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.mail import MailCheckResource
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.generate import write_leads_csv
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.support import SANDBOX_RATE, import_file, materialize_batch


@dataclass(frozen=True)
class WorldBatch:
    batch_id: str
    truth: dict[int, dict[str, Any]]  # lead id -> {"person_id", "blanked", "true"}


def make_world_batch(database_url: str, world: World, folder: Path, missing: dict[str, float]) -> WorldBatch:
    csv_path, truth_path = folder / "leads.csv", folder / "truth.json"
    write_leads_csv(world, csv_path, truth_path, missing, seed=11)
    batch_id = "contacts-batch"
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_file(database_url, csv_path, batch_id=batch_id)
    rows = json.loads(truth_path.read_text())["rows"]
    with connect(database_url) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]
    assert len(ids) == len(rows)  # leads are created in file order
    return WorldBatch(batch_id, dict(zip(ids, rows, strict=True)))


@pytest.fixture
def world_batch(database_url: str, sandbox_world: World, tmp_path: Path) -> WorldBatch:
    return make_world_batch(database_url, sandbox_world, tmp_path, {"email": 0.6, "phone": 0.7, "linkedin": 0.8})


def sandbox_resources(sandbox: Sandbox, database_url: str, **mail: Any) -> dict[str, Any]:
    env = sandbox.env()
    return {
        "database": LeadsDatabase(database_url=database_url),
        "mail": MailCheckResource(
            dns_server=env["LEADS_DNS_SERVER"],
            smtp_port=int(env["LEADS_SMTP_PORT"]),
            smtp_routes=env["LEADS_SMTP_ROUTES"],
            timeout_s=2.0,
            **mail,
        ),
        "zerobounce": ZeroBounceResource(
            api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"], requests_per_second=SANDBOX_RATE
        ),
        "neverbounce": NeverBounceResource(),
        "apify": ApifyResource(
            token=env["APIFY_TOKEN"], api_url=env["APIFY_API_URL"], requests_per_second=SANDBOX_RATE
        ),
        "twilio": TwilioLookupResource(
            account_sid=env["TWILIO_ACCOUNT_SID"],
            auth_token=env["TWILIO_AUTH_TOKEN"],
            base_url=env["TWILIO_LOOKUP_BASE_URL"],
            requests_per_second=SANDBOX_RATE,
        ),
    }


def materialize(
    assets: list[Any], batch_id: str, resources: dict[str, Any], config: dict[str, dict[str, Any]] | None = None
) -> dg.ExecuteInProcessResult:
    return materialize_batch(assets, batch_id, dg.DagsterInstance.ephemeral(), resources, config)


def metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(node)
    return {key: value.value for key, value in materialization.metadata.items()}
