"""MxResolver and SmtpProber on their own: configuration, caching, failures and fallbacks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from leads_pipeline.lib.clients.dns import MxResolver, parse_nameserver
from leads_pipeline.lib.clients.smtp import SmtpProber
from leads_pipeline.lib.errors import ConfigurationError, TransientError
from leads_pipeline.sandbox.dns import DnsSettings
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.smtp import SmtpSettings
from leads_pipeline.sandbox.world import Company, Person, World


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:5353", ("127.0.0.1", 5353)), ("10.0.0.1", ("10.0.0.1", 53)), ("[::1]:5300", ("::1", 5300))],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:port", ":53", "127.0.0.1:70000"])
def test_parse_nameserver_rejects_garbage(text: str) -> None:
    with pytest.raises(ConfigurationError, match="expected host:port"):
        parse_nameserver(text)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queries(sandbox: Sandbox, name: str) -> int:
    return sum(1 for e in sandbox.log.entries("dns") if e.details["name"] == f"{name}.")


def test_results_are_cached_per_domain_for_their_ttl(sandbox: Sandbox, sandbox_world: World) -> None:
    clock = _Clock()
    resolver = MxResolver(sandbox.env()["LEADS_DNS_SERVER"], max_ttl=60, clock=clock)
    domain = next(c.domain for c in sandbox_world.companies if c.mx_hosts)
    before = _queries(sandbox, domain)
    first = resolver.lookup_mx(domain)
    assert resolver.lookup_mx(domain.upper() + ".") == first
    assert _queries(sandbox, domain) == before + 1
    clock.now += 61
    assert resolver.lookup_mx(domain) == first
    assert _queries(sandbox, domain) == before + 2


def test_lookup_many_dedupes_keeps_order_and_reports_each_outcome(sandbox: Sandbox, sandbox_world: World) -> None:
    resolver = MxResolver(sandbox.env()["LEADS_DNS_SERVER"])
    with_mx = next(c for c in sandbox_world.companies if c.mx_hosts)
    without = next(c for c in sandbox_world.companies if c.mx_behaviour == "no_mx")
    domains = [with_mx.domain.upper(), "missing.example", without.domain, with_mx.domain]
    results = resolver.lookup_many(domains, concurrency=2)
    assert list(results) == [with_mx.domain, "missing.example", without.domain]
    assert results[with_mx.domain].hosts == with_mx.mx_hosts
    assert results["missing.example"].error is not None and "NXDOMAIN" in results["missing.example"].error
    assert results[without.domain].hosts == (without.domain,) and results[without.domain].fallback_a


@pytest.fixture
def silent_nameserver() -> Iterator[str]:
    """A UDP port that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sink.getsockname()[1]}"


def test_timeout_is_transient_and_not_cached(silent_nameserver: str) -> None:
    resolver = MxResolver(silent_nameserver, timeout=0.3)
    result = resolver.lookup_mx("example.com")
    assert result.transient and result.hosts == ()
    assert result.error is not None and "timeout" in result.error
    assert resolver._cache == {}


def test_prober_without_hosts_or_address_is_unknown() -> None:
    assert SmtpProber().probe("someone@example.com", []).status == "unknown"
    assert "not an email address" in SmtpProber().probe("someone.example.com", ["mx.test"]).message


def _free_port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_refused_host_falls_through_to_the_next_and_routes_win(sandbox: Sandbox, sandbox_world: World) -> None:
    company = next(c for c in sandbox_world.companies if c.mx_behaviour == "strict")
    person = sandbox_world.people_at(company.domain)[0]
    assert person.email is not None
    dead = "127.0.0.9"  # on loopback, nothing listens there: connection refused at once
    routes = {"dead.mx.test": dead, "MX.Alive.Test": sandbox.mail_addresses["strict"]}
    prober = SmtpProber(port=sandbox.smtp_port, timeout=1, routes=routes)
    result = prober.probe(person.email, ["dead.mx.test", "mx.alive.test"])
    assert (result.status, result.host) == ("deliverable", "mx.alive.test")
    nothing = SmtpProber(port=_free_port_nobody_listens_on(), timeout=1, routes=routes)
    failed = nothing.probe(person.email, ["dead.mx.test"])
    assert failed.status == "unknown" and "cannot be reached" in failed.message


def test_policy_rejection_is_unknown_not_undeliverable(sandbox: Sandbox) -> None:
    prober = SmtpProber(port=sandbox.smtp_port, timeout=1, routes={"mx.test": sandbox.mail_addresses["strict"]})
    result = prober.probe("someone@not-in-the-world.example", ["mx.test"])
    assert (result.status, result.code) == ("unknown", 550)
    assert "policy" in result.message


def test_catch_all_verdict_is_cached_per_domain(sandbox: Sandbox, sandbox_world: World) -> None:
    company = next(c for c in sandbox_world.companies if c.mx_behaviour == "catch_all")
    people = sandbox_world.people_at(company.domain)
    prober = SmtpProber(port=sandbox.smtp_port, timeout=1, routes={"mx.test": sandbox.mail_addresses["catch_all"]})

    def rcpts() -> int:
        return sum(1 for e in sandbox.log.entries("smtp") if (e.details["rcpt"] or "").endswith("@" + company.domain))

    before = rcpts()
    assert prober.probe(people[0].email or "", ["mx.test"]).status == "catch_all"
    assert rcpts() == before + 2
    assert prober.probe(f"other.{people[0].email}", ["mx.test"]).status == "catch_all"
    assert rcpts() == before + 3


# --- injected DNS and SMTP faults: always transient or unknown, never a verdict about the address ---------------


def _strict_person(world: World) -> Person:
    company = next(c for c in world.companies if c.mx_behaviour == "strict")
    return world.people_at(company.domain)[0]


@pytest.mark.parametrize(
    ("settings", "error"),
    [(DnsSettings(servfail=1.0), "SERVFAIL"), (DnsSettings(timeout=1.0), "timeout")],
    ids=["servfail", "timeout"],
)
def test_dns_faults_are_transient_and_not_cached(sandbox_world: World, settings: DnsSettings, error: str) -> None:
    domains = [next(c.domain for c in sandbox_world.companies if c.mx_behaviour == b) for b in ("strict", "no_mx")]
    with Sandbox.start(sandbox_world, http_emulators=False, dns_settings=settings) as box:
        resolver = MxResolver(box.env()["LEADS_DNS_SERVER"], timeout=0.2)
        for domain in domains:
            result = resolver.lookup_mx(domain)
            assert (result.transient, result.hosts, result.fallback_a) == (True, (), False)
            assert result.error is not None and error in result.error
        assert resolver._cache == {}
        with pytest.raises(TransientError, match=error):
            resolver.resolve_address(f"mx1.{domains[0]}")


@pytest.fixture
def mx_empty_then_servfail() -> Iterator[str]:
    """A nameserver that answers MX with NOERROR and no records, and every other type with SERVFAIL: the
    A-record fallback of a domain without MX is the query that fails."""
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.05)

        def serve() -> None:
            while not stop.is_set():
                try:
                    wire, client = server.recvfrom(512)
                except TimeoutError:
                    continue
                query = dns.message.from_wire(wire)
                response = dns.message.make_response(query)
                if query.question[0].rdtype != dns.rdatatype.MX:
                    response.set_rcode(dns.rcode.SERVFAIL)
                server.sendto(response.to_wire(), client)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield f"127.0.0.1:{server.getsockname()[1]}"
        stop.set()
        thread.join(1)


def test_servfail_on_the_address_fallback_is_transient_not_no_mail(mx_empty_then_servfail: str) -> None:
    result = MxResolver(mx_empty_then_servfail, timeout=0.5).lookup_mx("no-mx.example")
    assert result.transient and result.hosts == ()
    assert result.error is not None and "SERVFAIL" in result.error


@pytest.mark.parametrize(
    ("settings", "code", "message"),
    [
        (SmtpSettings(unavailable=1.0), 421, "refused the session"),
        (SmtpSettings(temporary_failure=1.0), 451, "temporary failure"),
        (SmtpSettings(dropped=1.0), None, "closed or stalled"),
    ],
    ids=["421-at-connect", "451-to-rcpt", "dropped"],
)
def test_smtp_faults_make_the_probe_unknown(
    sandbox_world: World, settings: SmtpSettings, code: int | None, message: str
) -> None:
    person = _strict_person(sandbox_world)
    assert person.email is not None
    with Sandbox.start(sandbox_world, http_emulators=False, smtp_settings=settings) as box:
        resolver = MxResolver(box.env()["LEADS_DNS_SERVER"])
        prober = SmtpProber(port=box.smtp_port, timeout=1, resolve=resolver.resolve_address)
        result = prober.probe(person.email, resolver.lookup_mx(person.email.rpartition("@")[2]).hosts)
    assert (result.status, result.code) == ("unknown", code)
    assert message in result.message
    assert (result.retry_after is not None) == (code is not None)  # a 4xx asks to come back later


def test_dns_failure_on_the_way_to_the_mail_host_makes_the_probe_unknown(sandbox_world: World) -> None:
    person = _strict_person(sandbox_world)
    assert person.email is not None
    hosts = next(c.mx_hosts for c in sandbox_world.companies if c.domain == person.company_domain)
    with Sandbox.start(sandbox_world, http_emulators=False, dns_settings=DnsSettings(servfail=1.0)) as box:
        resolver = MxResolver(box.env()["LEADS_DNS_SERVER"])
        prober = SmtpProber(port=box.smtp_port, timeout=1, resolve=resolver.resolve_address)
        result = prober.probe(person.email, hosts)
    assert (result.status, result.code) == ("unknown", None)
    assert "cannot be resolved" in result.message and "SERVFAIL" in result.message


# --- internationalized domains: DNS and RCPT carry them in A-labels ---------------------------------------------

IDN_WORLD = World(
    companies=(Company(name="Bücher Müller", domain="bücher.de", mx_hosts=("mx1.bücher.de",)),),
    people=(
        Person(id="p1", first_name="Anna", last_name="Weber", company_domain="bücher.de", email="anna@bücher.de"),
        Person(id="p2", first_name="Jörg", last_name="Müller", company_domain="bücher.de", email="jörg@bücher.de"),
    ),
)


@pytest.mark.parametrize(
    ("email", "status"),
    [
        ("anna@bücher.de", "deliverable"),
        ("ANNA@xn--bcher-kva.de", "deliverable"),
        ("nobody@bücher.de", "undeliverable"),
        ("jörg@bücher.de", "deliverable"),  # a local part in Unicode: SMTPUTF8, which the host offers
    ],
)
def test_an_address_at_an_internationalized_domain_is_verified(email: str, status: str) -> None:
    """Its RCPT was written with the domain in Unicode, which smtplib cannot send: every address at bücher.de
    was "unknown" however its mailbox answered."""
    with Sandbox.start(IDN_WORLD, http_emulators=False) as box:
        resolver = MxResolver(box.env()["LEADS_DNS_SERVER"])
        mx = resolver.lookup_mx(email.rpartition("@")[2])
        assert mx.hosts == ("mx1.xn--bcher-kva.de",)
        prober = SmtpProber(port=box.smtp_port, timeout=1, resolve=resolver.resolve_address)
        result = prober.probe(email, mx.hosts)
        rcpts = [e.details["rcpt"] for e in box.log.entries("smtp") if e.details["command"] == "RCPT"]
    assert result.status == status, result.message
    assert rcpts[0].rpartition("@")[2] == "xn--bcher-kva.de"
