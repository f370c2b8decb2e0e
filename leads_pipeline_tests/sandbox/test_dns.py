"""The sandbox DNS server, asked over the wire through dnspython, on UDP and on TCP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from leads_pipeline.sandbox.dns import DnsSettings
from leads_pipeline.sandbox.faults import Latency
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import Company, World


@pytest.fixture(params=[False, True], ids=["udp", "tcp"])
def tcp(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def resolver(sandbox: Sandbox) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [sandbox.host]
    resolver.port = sandbox.dns_port
    resolver.lifetime = 2.0
    resolver.cache = None
    return resolver


def _company(world: World, behaviour: str) -> Company:
    return next(c for c in world.companies if c.mx_behaviour == behaviour)


@pytest.mark.parametrize("behaviour", ["strict", "catch_all", "accepts", "greylist", "timeout"])
def test_mx_hosts_by_preference_resolve_to_the_behaviours_address(
    resolver: dns.resolver.Resolver, sandbox: Sandbox, sandbox_world: World, tcp: bool, behaviour: str
) -> None:
    company = _company(sandbox_world, behaviour)
    answer = resolver.resolve(company.domain.upper(), "MX", tcp=tcp)
    records = sorted(answer, key=lambda r: r.preference)
    assert [r.exchange.to_text(omit_final_dot=True).lower() for r in records] == list(company.mx_hosts)
    assert [r.preference for r in records] == [10 * (i + 1) for i in range(len(records))]
    for host in company.mx_hosts:
        address = resolver.resolve(host, "A", tcp=tcp)[0].address
        assert address == sandbox.mail_addresses[behaviour]


def test_domain_and_www_have_address_records(
    resolver: dns.resolver.Resolver, sandbox: Sandbox, sandbox_world: World, tcp: bool
) -> None:
    company = _company(sandbox_world, "strict")
    assert resolver.resolve(company.domain, "A", tcp=tcp)[0].address == sandbox.host
    assert resolver.resolve(f"www.{company.domain}", "A", tcp=tcp)[0].address == sandbox.host


def test_unknown_names_are_nxdomain(resolver: dns.resolver.Resolver, sandbox_world: World, tcp: bool) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("no-such-company.example", "MX", tcp=tcp)
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(f"mail.{sandbox_world.companies[0].domain}", "A", tcp=tcp)


def test_domain_without_mx_answers_noerror_and_its_a_record_is_the_strict_host(
    resolver: dns.resolver.Resolver, sandbox: Sandbox, sandbox_world: World, tcp: bool
) -> None:
    company = _company(sandbox_world, "no_mx")
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve(company.domain, "MX", tcp=tcp)
    assert resolver.resolve(company.domain, "A", tcp=tcp)[0].address == sandbox.mail_addresses["strict"]


def test_known_name_other_type_is_noerror_without_records(
    resolver: dns.resolver.Resolver, sandbox_world: World, tcp: bool
) -> None:
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve(sandbox_world.companies[0].domain, "AAAA", tcp=tcp)


def test_mx_answer_is_authoritative_with_glue(sandbox: Sandbox, sandbox_world: World) -> None:
    company = _company(sandbox_world, "strict")
    query = dns.message.make_query(company.domain, "MX")
    response = dns.query.udp(query, sandbox.host, port=sandbox.dns_port, timeout=2)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    glue = {rrset.name.to_text(omit_final_dot=True) for rrset in response.additional}
    assert glue == set(company.mx_hosts)


def test_malformed_packet_gets_formerr_and_queries_are_logged(sandbox: Sandbox) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(2)
        udp.sendto(b"\x12\x34" + b"\xff" * 14, (sandbox.host, sandbox.dns_port))
        reply = udp.recv(512)
    assert reply[:2] == b"\x12\x34"
    assert reply[3] & 0x0F == dns.rcode.FORMERR
    query = dns.message.make_query("logged-name.example", "MX")
    dns.query.udp(query, sandbox.host, port=sandbox.dns_port, timeout=2)
    logged = [e.details for e in sandbox.log.entries("dns") if e.details["name"] == "logged-name.example."]
    assert logged == [
        {"name": "logged-name.example.", "type": "MX", "rcode": "NXDOMAIN", "transport": "udp", "fault": None}
    ]


@contextmanager
def _dns_only(world: World, settings: DnsSettings) -> Iterator[Sandbox]:
    """A sandbox of its own: faults injected into the session's sandbox would break every other test."""
    with Sandbox.start(world, http_emulators=False, dns_settings=settings) as box:
        yield box


def _ask(box: Sandbox, name: str, tcp: bool, timeout: float = 2.0) -> dns.message.Message:
    query = dns.message.make_query(name, "MX")
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, box.host, port=box.dns_port, timeout=timeout)


def test_servfail_is_injected_and_logged(sandbox_world: World, tcp: bool) -> None:
    company = _company(sandbox_world, "strict")
    with _dns_only(sandbox_world, DnsSettings(servfail=1.0)) as box:
        response = _ask(box, company.domain, tcp)
        assert response.rcode() == dns.rcode.SERVFAIL
        assert not response.answer
        logged = [e.details for e in box.log.entries("dns")]
    transport = "tcp" if tcp else "udp"
    expected = {"name": f"{company.domain}.", "type": "MX", "rcode": "SERVFAIL", "transport": transport}
    assert logged == [{**expected, "fault": "servfail"}]


def test_timeout_fault_leaves_the_query_unanswered(sandbox_world: World, tcp: bool) -> None:
    company = _company(sandbox_world, "strict")
    with _dns_only(sandbox_world, DnsSettings(timeout=1.0)) as box:
        started = time.monotonic()
        with pytest.raises(dns.exception.Timeout):
            _ask(box, company.domain, tcp, timeout=0.3)
        assert time.monotonic() - started < 1.5
        assert [(e.details["rcode"], e.details["fault"]) for e in box.log.entries("dns")] == [(None, "timeout")]


def test_latency_delays_every_answer(sandbox_world: World, tcp: bool) -> None:
    company = _company(sandbox_world, "strict")
    with _dns_only(sandbox_world, DnsSettings(latency=Latency(median_s=0.15, p95_s=0.15))) as box:
        started = time.monotonic()
        assert _ask(box, company.domain, tcp).rcode() == dns.rcode.NOERROR
        assert _ask(box, company.domain, tcp).rcode() == dns.rcode.NOERROR
        assert time.monotonic() - started >= 0.3


def test_fault_rate_is_a_seeded_share_of_queries(sandbox_world: World) -> None:
    domain = _company(sandbox_world, "strict").domain

    def rcodes(seed: int) -> list[int]:
        with _dns_only(sandbox_world, DnsSettings(servfail=0.3, seed=seed)) as box:
            return [_ask(box, domain, tcp=False).rcode() for _ in range(60)]

    first = rcodes(seed=4)
    assert 8 <= first.count(dns.rcode.SERVFAIL) <= 30
    assert set(first) == {dns.rcode.SERVFAIL, dns.rcode.NOERROR}
    assert rcodes(seed=4) == first


@pytest.mark.parametrize("rates", [{"servfail": 1.5}, {"timeout": -0.1}])
def test_rates_must_be_probabilities(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"DnsSettings.{next(iter(rates))}: expected a probability"):
        DnsSettings(**rates)
