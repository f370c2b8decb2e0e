"""The sandbox mail hosts, probed over the wire by the project's own ``SmtpProber`` and ``MxResolver``."""

from __future__ import annotations

import smtplib
import time

import pytest

from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.smtp import SmtpProber
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.smtp import SmtpSettings
from leads_pipeline.sandbox.world import Company, Person, World

PROBE_TIMEOUT = 0.5


@pytest.fixture
def resolver(sandbox: Sandbox) -> MxResolver:
    return MxResolver(sandbox.env()["LEADS_DNS_SERVER"], timeout=2.0)


@pytest.fixture
def prober(sandbox: Sandbox, resolver: MxResolver) -> SmtpProber:
    """A prober routed the way LEADS_SMTP_ROUTES=dns says: MX host names resolved through the sandbox DNS."""
    return SmtpProber(
        helo_name="probe.leads.test",
        port=sandbox.smtp_port,
        timeout=PROBE_TIMEOUT,
        resolve=resolver.resolve_address,
    )


def _staff(world: World, behaviour: str) -> tuple[Company, Person]:
    company = next(c for c in world.companies if c.mx_behaviour == behaviour)
    return company, world.people_at(company.domain)[0]


def _probe(prober: SmtpProber, resolver: MxResolver, email: str) -> tuple[str, int | None]:
    mx = resolver.lookup_mx(email.rpartition("@")[2])
    result = prober.probe(email, mx.hosts)
    return result.status, result.code


def test_strict_host_knows_its_mailboxes(prober: SmtpProber, resolver: MxResolver, sandbox_world: World) -> None:
    company, person = _staff(sandbox_world, "strict")
    assert person.email is not None
    assert _probe(prober, resolver, person.email) == ("deliverable", 250)
    assert _probe(prober, resolver, f"no.such.person@{company.domain}") == ("undeliverable", 550)


@pytest.mark.parametrize("behaviour", ["catch_all", "accepts"])
def test_hosts_accepting_everything_are_detected_as_catch_all(
    prober: SmtpProber, resolver: MxResolver, sandbox_world: World, behaviour: str
) -> None:
    company, person = _staff(sandbox_world, behaviour)
    assert person.email is not None
    assert _probe(prober, resolver, person.email) == ("catch_all", 250)
    assert _probe(prober, resolver, f"no.such.person@{company.domain}") == ("catch_all", 250)


def test_greylisting_is_unknown_then_deliverable_on_retry(
    prober: SmtpProber, resolver: MxResolver, sandbox_world: World
) -> None:
    _, person = _staff(sandbox_world, "greylist")
    assert person.email is not None
    hosts = resolver.lookup_mx(person.email.rpartition("@")[2]).hosts
    first = prober.probe(person.email, hosts)
    assert (first.status, first.code) == ("unknown", 451)
    assert first.retry_after == 0.0  # the sandbox's default greylist delay, read from the 451 text
    retry = prober.probe(person.email, hosts)
    assert (retry.status, retry.code) == ("deliverable", 250)


def test_greylist_delay_is_honoured(sandbox_world: World) -> None:
    with Sandbox.start(sandbox_world, http_emulators=False, smtp_settings=SmtpSettings(greylist_delay=30)) as box:
        resolver = MxResolver(box.env()["LEADS_DNS_SERVER"])
        prober = SmtpProber(port=box.smtp_port, timeout=PROBE_TIMEOUT, resolve=resolver.resolve_address)
        _, person = _staff(sandbox_world, "greylist")
        assert person.email is not None
        hosts = resolver.lookup_mx(person.email.rpartition("@")[2]).hosts
        assert prober.probe(person.email, hosts).retry_after == 30.0
        early = prober.probe(person.email, hosts)
        assert (early.status, early.code) == ("unknown", 451)
        assert early.retry_after is not None and 0 < early.retry_after <= 30


def test_timeout_host_is_unknown_within_the_timeout(
    prober: SmtpProber, resolver: MxResolver, sandbox_world: World
) -> None:
    _, person = _staff(sandbox_world, "timeout")
    assert person.email is not None
    started = time.monotonic()
    assert _probe(prober, resolver, person.email) == ("unknown", None)
    assert time.monotonic() - started < PROBE_TIMEOUT + 1.0


def test_domain_without_mx_is_probed_on_its_address_record(
    prober: SmtpProber, resolver: MxResolver, sandbox_world: World
) -> None:
    company, person = _staff(sandbox_world, "no_mx")
    assert person.email is not None
    assert resolver.lookup_mx(company.domain).fallback_a
    assert _probe(prober, resolver, person.email) == ("deliverable", 250)
    assert _probe(prober, resolver, f"nobody@{company.domain}") == ("undeliverable", 550)


def test_protocol_errors_data_and_rcpt_log(sandbox: Sandbox, sandbox_world: World) -> None:
    _, person = _staff(sandbox_world, "strict")
    with smtplib.SMTP(sandbox.mail_addresses["strict"], sandbox.smtp_port, "t.test", timeout=2) as client:
        assert client.rcpt("a@b.test")[0] == 503
        client.ehlo()
        assert client.docmd("BOGUS")[0] == 502
        assert client.mail("sender@leads.test")[0] == 250
        assert client.rcpt(person.email or "")[0] == 250
        assert client.docmd("DATA")[0] == 554
    logged = [e.details for e in sandbox.log.entries("smtp") if e.details["rcpt"] == person.email]
    assert {"host": sandbox.mail_addresses["strict"], "behaviour": "strict", "code": 250}.items() <= logged[-1].items()
