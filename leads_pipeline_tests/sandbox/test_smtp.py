"""The sandbox mail hosts, probed over the wire by the project's own ``SmtpProber`` and ``MxResolver``."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.smtp import SmtpProber
from leads_pipeline.sandbox.faults import Latency
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


@contextmanager
def _strict_host(world: World, settings: SmtpSettings) -> Iterator[tuple[Sandbox, Person]]:
    """A sandbox of its own with these settings, and someone whose mailbox is on a strict host."""
    with Sandbox.start(world, http_emulators=False, smtp_settings=settings) as box:
        yield box, _staff(world, "strict")[1]


def _connect(box: Sandbox) -> smtplib.SMTP:
    return smtplib.SMTP(box.mail_addresses["strict"], box.smtp_port, "t.test", timeout=2)


def _faults(box: Sandbox) -> list[tuple[str, int | None, str | None]]:
    return [(e.details["command"], e.details["code"], e.details["fault"]) for e in box.log.entries("smtp")]


def test_unavailable_host_greets_421_and_hangs_up(sandbox_world: World) -> None:
    with _strict_host(sandbox_world, SmtpSettings(unavailable=1.0)) as (box, _):
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            _connect(box)
        assert refused.value.smtp_code == 421
        assert _faults(box) == [("CONNECT", 421, "unavailable")]


def test_temporary_failure_answers_rcpt_451(sandbox_world: World) -> None:
    with _strict_host(sandbox_world, SmtpSettings(temporary_failure=1.0)) as (box, person):
        with _connect(box) as client:
            client.ehlo()
            assert client.mail("sender@leads.test")[0] == 250
            code, message = client.rcpt(person.email or "")
        assert (code, message[:5]) == (451, b"4.3.0")
        assert _faults(box) == [("RCPT", 451, "temporary_failure")]
        assert box.log.entries("smtp")[0].details["rcpt"] == person.email


def test_dropped_connection_closes_without_a_reply(sandbox_world: World) -> None:
    with _strict_host(sandbox_world, SmtpSettings(dropped=1.0)) as (box, _):
        client = _connect(box)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.ehlo()
        client.close()
        assert _faults(box) == [("EHLO", None, "dropped")]


def test_latency_delays_every_reply(sandbox_world: World) -> None:
    with _strict_host(sandbox_world, SmtpSettings(latency=Latency(median_s=0.1, p95_s=0.1))) as (box, _):
        started = time.monotonic()
        with _connect(box) as client:
            client.ehlo()  # the greeting and the EHLO reply: two delays
        assert time.monotonic() - started >= 0.2


def test_fault_rates_are_seeded_shares(sandbox_world: World) -> None:
    def outcomes(seed: int) -> list[int]:
        settings = SmtpSettings(temporary_failure=0.3, seed=seed)
        with _strict_host(sandbox_world, settings) as (box, person), _connect(box) as client:
            client.ehlo()
            client.mail("sender@leads.test")
            return [client.rcpt(person.email or "")[0] for _ in range(60)]

    first = outcomes(seed=4)
    assert 8 <= first.count(451) <= 30
    assert set(first) == {250, 451}
    assert outcomes(seed=4) == first


@pytest.mark.parametrize("rates", [{"unavailable": 2.0}, {"temporary_failure": -1.0}, {"dropped": 1.01}])
def test_rates_must_be_probabilities(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"SmtpSettings.{next(iter(rates))}: expected a probability"):
        SmtpSettings(**rates)
