"""Provider faults during a stage: a retried error pays once, a provider that keeps failing is skipped for that
lead (reported, no fact, no cost) and the stage goes on."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs import executor
from leads_pipeline.defs.contacts.assets import email_contacts, linkedin_profiles, phone_contacts
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.mail import MailCheckResource
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import ZeroBounceResource
from leads_pipeline.lib.contacts.phone_batch import PhoneOptions, PhoneStage
from leads_pipeline.lib.enrichment.jobs import summary
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources
from leads_pipeline_tests.support import SANDBOX_RATE, materialize_batch


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
        requests_per_second=SANDBOX_RATE,
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


def test_leads_a_provider_failed_for_are_asked_again_by_the_steps_retry(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, no_retry_wait: None
) -> None:
    """A Twilio blip failed two leads, which the step left failed for the user to run the stage again: the step is
    retried for them, and the job counts only leads still failed (none, the provider answering again)."""
    instance = dg.DagsterInstance.ephemeral()
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    env = sandbox.env()
    resources["twilio"] = TwilioLookupResource(
        account_sid=env["TWILIO_ACCOUNT_SID"],
        auth_token=env["TWILIO_AUTH_TOKEN"],
        base_url=env["TWILIO_LOOKUP_BASE_URL"],
        max_retries=0,
        requests_per_second=SANDBOX_RATE,
    )
    assert sandbox.http_app is not None
    sandbox.http_app.inject("twilio", "503", "503")
    try:
        result = materialize_batch(
            [phone_contacts],
            world_batch.batch_id,
            instance,
            resources,
            {"phone_contacts": {"twilio": "always", "direct_dials": False, "workers": 1}},
        )
    finally:
        sandbox.http_app.reset()
    [warning] = [w for w in _warnings(instance, result) if "phone: " in w]
    assert "leads failed (twilio (TransientError): " in warning and warning.endswith("asking them again")
    retries = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.is_step_up_for_retry]
    assert len(retries) == 1 and result.success
    assert metadata(result, "phone_contacts")["failed_leads"] == 0 and _failures(database_url, "phone") == {}
    with connect(database_url) as conn:
        document = summary(conn, world_batch.batch_id)
    assert document["results"]["failed"] == 0
    assert next(s["note"] for s in document["sources"] if s["source"] == "phone") is None  # not "2 leads failed"


DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens, as when the sandbox (or the provider) is down
DOWN_DNS = "127.0.0.1:9"


def _down_resources(sandbox: Sandbox, database_url: str, dns: bool) -> dict[str, Any]:
    """The sandbox's resources with Twilio, Apify and ZeroBounce unreachable, retrying at once, and with ``dns``
    the nameserver too (no address is then verified further)."""
    env = sandbox.env()
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    if dns:
        resources["mail"] = MailCheckResource(dns_server=DOWN_DNS, smtp_probing="off", timeout_s=0.2)
    resources["twilio"] = TwilioLookupResource(
        account_sid=env["TWILIO_ACCOUNT_SID"],
        auth_token=env["TWILIO_AUTH_TOKEN"],
        base_url=DOWN,
        max_retries=0,
        requests_per_second=SANDBOX_RATE,
    )
    resources["apify"] = ApifyResource(
        token=env["APIFY_TOKEN"], api_url=DOWN, max_retries=0, requests_per_second=SANDBOX_RATE
    )
    resources["zerobounce"] = ZeroBounceResource(
        api_key=env["ZEROBOUNCE_API_KEY"], base_url=DOWN, max_retries=0, requests_per_second=SANDBOX_RATE
    )
    return resources


def _warnings(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]


def _failures(database_url: str, source: str) -> dict[int, str]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT lead_id, reason FROM enrichment_failures WHERE source = %s", (source,))
        return {r["lead_id"]: r["reason"] for r in rows}


@pytest.mark.parametrize(
    ("asset", "source", "provider", "config"),
    [
        (phone_contacts, "phone", "twilio (TransientError)", {}),
        (email_contacts, "email", "zerobounce (TransientError)", {"discover": False}),
        (email_contacts, "email", "dns (TransientError)", {}),
        (linkedin_profiles, "linkedin", "(TransientError)", {"download_photos": False}),
    ],
)
def test_leads_a_provider_down_could_not_answer_are_counted_failed_not_no_data(
    database_url: str,
    sandbox: Sandbox,
    world_batch: WorldBatch,
    asset: dg.AssetsDefinition,
    source: str,
    provider: str,
    config: dict[str, Any],
    no_retry_wait: None,
) -> None:
    """With the providers down, the stages said "searched 21, found 0" and succeeded: only INFO lines told the
    connection errors. Each failed lead is now counted (failed_leads), warned about by provider and error
    class, and failed on the job, so `leads jobs show` tells it from "no data"; the step's retries and a rerun ask
    it again."""
    instance = dg.DagsterInstance.ephemeral()
    name = asset.key.to_user_string()
    result = materialize_batch(
        [asset],
        world_batch.batch_id,
        instance,
        _down_resources(sandbox, database_url, dns=provider.startswith("dns")),
        {name: config},
    )
    meta = metadata(result, name)
    failed = _failures(database_url, source)
    assert result.success and meta["failed_leads"] == len(failed) > 0
    assert all("(TransientError): " in reason for reason in failed.values())
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert not [m for m in [*failed.values(), *logged] if re.search(r"\d{7,}", m)]  # no number a URL quoted
    *retried, warning = [w for w in _warnings(instance, result) if f"{source}: " in w]
    assert len(retried) == executor.TRANSIENT_RETRIES and all(w.endswith("asking them again") for w in retried)
    assert f"{len(failed):,} leads failed" in warning and provider in warning
    assert warning.endswith("run the stage again to retry them")
    assert "TOKEN" not in warning and sandbox.env()["APIFY_TOKEN"] not in warning
    with connect(database_url) as conn:
        document = summary(conn, world_batch.batch_id)
    assert document["results"]["failed"] == len(failed)
    assert f"{len(failed):,} leads failed" in next(s["note"] for s in document["sources"] if s["source"] == source)

    with connect(database_url) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) AS id FROM lead_facts").fetchone()
    again = metadata(
        materialize_batch(
            [asset],
            world_batch.batch_id,
            instance,
            sandbox_resources(sandbox, database_url, smtp_probing="off"),
            {name: config},
        ),
        name,
    )
    assert again["failed_leads"] == 0 and _failures(database_url, source) == {}
    with connect(database_url) as conn:
        asked = {
            r["lead_id"]
            for r in conn.execute(
                "SELECT lead_id FROM lead_facts WHERE lead_id = ANY(%s) AND id > %s", (list(failed), before["id"])
            )
        }
    assert before is not None and asked == set(failed)  # the failed leads were asked again, not skipped as done


def _probing(sandbox: Sandbox, database_url: str, *, port: int | None = None, routes: str = "") -> dict[str, Any]:
    """The sandbox's resources with SMTP probing on (on ``port`` with ``routes`` before the sandbox's DNS) and no
    paid verifier to fall back on."""
    env = sandbox.env()
    resources = sandbox_resources(sandbox, database_url)
    resources["zerobounce"] = ZeroBounceResource()
    resources["mail"] = MailCheckResource(
        dns_server=env["LEADS_DNS_SERVER"],
        smtp_port=port or int(env["LEADS_SMTP_PORT"]),
        smtp_routes=f"{routes},{env['LEADS_SMTP_ROUTES']}" if routes else env["LEADS_SMTP_ROUTES"],
        smtp_probing="on",
        timeout_s=2.0,
    )
    return resources


PROBING = {"email_contacts": {"people_search": False, "verifier": "none"}}


def test_mail_hosts_all_refusing_connections_count_their_leads_failed_as_probing_blocked(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, no_retry_wait: None
) -> None:
    """With the mail servers unreachable (a closed port), every address came back "unknown" and no lead failed,
    as if each host had blocked us: no host of the batch taking a connection points at our side (port 25
    blocked, the sandbox down). The leads are failed, with a warning naming LEADS_SMTP_PROBING=off, and the step
    is not retried (the same refusals would follow)."""
    instance = dg.DagsterInstance.ephemeral()
    resources = _probing(sandbox, database_url, port=9)
    result = materialize_batch([email_contacts], world_batch.batch_id, instance, resources, PROBING)
    meta = metadata(result, "email_contacts")
    failed = _failures(database_url, "email")
    assert result.success and meta["failed_leads"] == len(failed) > 0
    assert all(reason.startswith("smtp (probing blocked): ") for reason in failed.values())
    [blocked] = [w for w in _warnings(instance, result) if "probing looks blocked" in w]
    assert "on port 9" in blocked and "LEADS_SMTP_PROBING=off" in blocked
    assert not [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.is_step_up_for_retry]
    with connect(database_url) as conn:
        assert summary(conn, world_batch.batch_id)["results"]["failed"] == len(failed)


def test_one_mail_host_refusing_connections_leaves_its_addresses_unknown_not_failed(
    database_url: str, sandbox: Sandbox, sandbox_world: World, world_batch: WorldBatch
) -> None:
    """One host refusing while others answer is that host's doing: its addresses stay "unknown", as README says."""
    with connect(database_url) as conn:
        emails = {r["id"]: r["email"] for r in conn.execute("SELECT id, email FROM leads WHERE email IS NOT NULL")}
    strict = {c.domain: c for c in sandbox_world.companies if c.mx_behaviour == "strict"}
    lead_id, email = next((i, e) for i, e in sorted(emails.items()) if e.rpartition("@")[2] in strict)
    dead = ",".join(f"{host}=127.0.0.99" for host in strict[email.rpartition("@")[2]].mx_hosts)
    instance = dg.DagsterInstance.ephemeral()
    resources = _probing(sandbox, database_url, routes=dead)
    result = materialize_batch([email_contacts], world_batch.batch_id, instance, resources, PROBING)
    assert metadata(result, "email_contacts")["failed_leads"] == 0 and _failures(database_url, "email") == {}
    assert not [w for w in _warnings(instance, result) if "probing looks blocked" in w]
    [status] = [f for f in _facts(database_url, "email_status") if f["lead_id"] == lead_id]
    assert status["value"] == "unknown" and "cannot be reached" in json.dumps(status["details"])
