"""What every connector must do the same way over the wire: honour Retry-After on a 429, and turn a refused
token into a configuration error naming the variable to fix (and leave the run recorded as failed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings
from leads_pipeline.sandbox.http.tls import serve_tls
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.lib.crm.helpers import connection, engine, import_leads, lead_rows

pytestmark = pytest.mark.integration
CRMS = ["hubspot", "salesforce", "pipedrive", "gohighlevel"]
TOKEN_VARIABLE = {
    "hubspot": "HUBSPOT_ACCESS_TOKEN",
    "salesforce": "SALESFORCE_ACCESS_TOKEN",
    "pipedrive": "PIPEDRIVE_API_TOKEN",
    "gohighlevel": "GOHIGHLEVEL_TOKEN",
}


@pytest.mark.parametrize("crm", CRMS)
def test_429_with_retry_after_is_waited_out_then_sent(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=130_000 + 10 * CRMS.index(crm)))
    assert sandbox.http_app is not None
    sandbox.http_app.inject(crm, "429")
    started = time.monotonic()
    report = engine(database_url, sandbox, connection(crm, f"{crm}-429"), **salesforce_env).run("push", list_id)
    assert (report.created + report.updated, report.failed) == (3, 0)
    assert time.monotonic() - started >= 1.0  # the emulator's Retry-After: 1, not the test's 10 ms backoff


@pytest.mark.parametrize("crm", CRMS)
def test_a_refused_token_names_the_variable_and_fails_the_run(
    crm: str, database_url: str, sandbox_world: World, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=140_000))
    settings = EmulatorSettings(providers={crm: ProviderSettings(api_keys=frozenset({"the-valid-token"}))})
    with Sandbox.start(sandbox_world, http_settings=settings) as box:
        assert box.http_app is not None
        front = serve_tls(box.http_app, "salesforce", tmp_path / "tls")
        env = {"SALESFORCE_INSTANCE_URL": front.url, "SALESFORCE_ACCESS_TOKEN": "expired-token",
               "SALESFORCE_CA_BUNDLE": str(front.ca_file)}  # fmt: skip
        try:
            with pytest.raises(ConfigurationError, match=TOKEN_VARIABLE[crm]):
                engine(database_url, box, connection(crm, f"{crm}-auth"), **env).run("push", list_id)
        finally:
            front.stop()
    with connect(database_url) as db:
        assert store.list_runs(db, f"{crm}-auth")[0]["status"] == "failed"
