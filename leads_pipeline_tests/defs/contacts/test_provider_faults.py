"""Provider faults during a stage: a retried error pays once, a provider that keeps failing is skipped for that
lead (reported, no fact, no cost) and the stage goes on."""

from __future__ import annotations

from typing import Any

from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import ZeroBounceResource
from leads_pipeline.lib.contacts.phone_batch import PhoneOptions, PhoneStage
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources


def _facts(database_url: str, field: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM lead_facts WHERE field = %s", (field,)))


def test_twilio_failing_for_one_number_skips_only_that_number(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    env = sandbox.env()
    twilio = TwilioLookupResource(
        account_sid=env["TWILIO_ACCOUNT_SID"],
        auth_token=env["TWILIO_AUTH_TOKEN"],
        base_url=env["TWILIO_LOOKUP_BASE_URL"],
        max_retries=1,
        backoff_base_s=0.01,
    )
    assert sandbox.http_app is not None
    logged: list[str] = []
    sandbox.http_app.inject("twilio", "500", "500")
    try:
        options = PhoneOptions(direct_dials=False, workers=1)
        stats = PhoneStage(database_url, world_batch.batch_id, twilio, None, options, logged.append).run()
    finally:
        sandbox.http_app.reset()
    assert stats.twilio_lookups >= 1 and any("Twilio lookup failed" in m for m in logged)
    paid = _facts(database_url, "phone_line_type")
    assert len(paid) == stats.twilio_lookups and all(float(f["cost"]) > 0 for f in paid)
    assert sum(1 for m in logged if "Twilio lookup failed" in m) == 1  # only the number that met both faults


def test_a_retried_verifier_error_is_paid_once(database_url: str, sandbox: Sandbox, world_batch: WorldBatch) -> None:
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    env = sandbox.env()
    resources["zerobounce"] = ZeroBounceResource(
        api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"], backoff_base_s=0.01
    )
    assert sandbox.http_app is not None
    sandbox.http_app.inject("zerobounce", "429", "503")
    try:
        meta = metadata(
            materialize([email_contacts], world_batch.batch_id, resources, {"email_contacts": {"discover": False}}),
            "email_contacts",
        )
    finally:
        sandbox.http_app.reset()
    paid = _facts(database_url, "email_status")
    assert len(paid) == meta["checked"] and len({f["details"]["email"] for f in paid}) == len(paid)
