"""A contact stage's paid calls keep the provider's rate: over the wire, against an emulator that answers 429 above
it (the sliding window the sandbox's ``RateLimit`` counts per API key)."""

from __future__ import annotations

from pathlib import Path

from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.lib.clients.verifiers import ZeroBounceResource
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings
from leads_pipeline.sandbox.http.common import RateLimit
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import make_world_batch, materialize, metadata, sandbox_resources


def test_the_email_stage_keeps_zerobounces_rate_with_16_workers(
    database_url: str, sandbox_world: World, tmp_path: Path
) -> None:
    settings = EmulatorSettings(providers={"zerobounce": ProviderSettings(rate_limit=RateLimit(10, 1.0))})
    with Sandbox.start(sandbox_world, http_settings=settings) as sandbox:
        batch = make_world_batch(database_url, sandbox_world, tmp_path, {"email": 0.9})
        resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
        env = sandbox.env()
        resources["zerobounce"] = ZeroBounceResource(
            api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"], requests_per_second=9.0
        )
        config = {"email_contacts": {"discover": False, "workers": 16}}
        meta = metadata(materialize([email_contacts], batch.batch_id, resources, config), "email_contacts")
        assert sandbox.http_app is not None
        log = sandbox.http_app.log
    assert meta["checked"] == len(log.records("zerobounce")) == 30  # one call each: none refused and asked again
    assert [r.fault for r in log.records("zerobounce")].count("rate_limit") == 0  # unpaced: 26 of 56 refused
    assert log.busiest("zerobounce", 1.0) <= 10  # unpaced: 26 in one second
