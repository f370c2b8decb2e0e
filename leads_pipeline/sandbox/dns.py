"""The sandbox DNS server: MX and A records of the world's domains, over UDP and TCP, on any host and port.

Email discovery and verification need MX lookups that answer like the internet does: a domain's mail hosts by
preference, NXDOMAIN for names that do not exist, NOERROR without records for a domain that has no MX. The
server answers from a zone computed once from the world, so a lookup costs a parse and a serialization (well
over 1,000 lookups/s on one core). It runs on an asyncio loop that the caller owns (``Sandbox`` runs one).
Like the HTTP emulators it can be slow and fail on purpose (``DnsSettings``): the failures a resolver meets on
the internet are a SERVFAIL from a broken authoritative server and a query that is never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from leads_pipeline.sandbox.faults import Latency, check_rates, draw_fault
from leads_pipeline.sandbox.world import World

Recorder = Callable[[str, str, dict[str, Any]], None]
"""Receives (service, client address, details) for every query: the sandbox's request log."""

TTL = 300

DnsFault = Literal["servfail", "timeout"]


@dataclass(frozen=True)
class DnsSettings:
    """How the DNS server degrades: per query, a delay drawn from ``latency``, then at most one fault.

    servfail: share of queries answered SERVFAIL (no records), what a broken or overloaded authoritative
    server answers; a resolver must treat it as "try again later", never as "no such domain". timeout: share
    of queries never answered (UDP and TCP alike), so the client's own timeout has to fire. seed: the same seed
    fails the same queries of the same sequence.
    """

    latency: Latency = field(default_factory=Latency)
    servfail: float = 0.0
    timeout: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        check_rates("DnsSettings", servfail=self.servfail, timeout=self.timeout)


class Zone:
    """Every answer the server can give, keyed by (lower-case absolute name, record type).

    - ``<domain>``: MX (preference 10, 20, ... in the world's order) unless the behaviour is no_mx, and an A
      record: the web address, or for no_mx domains the strict mail host (RFC 5321 falls back to it).
    - ``www.<domain>``: A web address. Each MX host name: A the address of the mail server for its behaviour.
    - Anything else: NXDOMAIN. A known name asked for another type: NOERROR with no records.
    """

    def __init__(self, world: World, mail_addresses: Mapping[str, str], web_address: str = "127.0.0.1") -> None:
        missing = {c.mx_behaviour for c in world.companies} - set(mail_addresses) - {"no_mx"}
        if missing or "strict" not in mail_addresses:
            raise ValueError(f"mail_addresses: expected an address for each of {sorted(missing | {'strict'})}")
        self._records: dict[str, dict[int, dns.rrset.RRset]] = {}
        for company in world.companies:
            domain = company.domain.lower()
            if company.mx_hosts:
                exchanges = [f"{10 * (i + 1)} {host.lower()}." for i, host in enumerate(company.mx_hosts)]
                self._add(domain, dns.rdatatype.MX, exchanges)
                for host in company.mx_hosts:
                    self._add(host.lower(), dns.rdatatype.A, [mail_addresses[company.mx_behaviour]])
                self._add(domain, dns.rdatatype.A, [web_address])
            else:
                self._add(domain, dns.rdatatype.A, [mail_addresses["strict"]])
            self._add(f"www.{domain}", dns.rdatatype.A, [web_address])

    def _add(self, name: str, rdtype: dns.rdatatype.RdataType, values: list[str]) -> None:
        rrset = dns.rrset.from_text_list(f"{name}.", TTL, dns.rdataclass.IN, rdtype, values)
        # filed as a query names it: an internationalized domain ("bücher.de") in its A-labels (xn--bcher-kva.de)
        self._records.setdefault(rrset.name.to_text().lower(), {})[rdtype] = rrset

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        """The authoritative answer to ``query`` (one question; anything else is FORMERR)."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        records = self._records.get(question.name.to_text().lower())
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        answer = records.get(question.rdtype)
        if answer is not None:
            response.answer.append(answer)
            if question.rdtype == dns.rdatatype.MX:
                for rdata in answer:
                    glue = self._records.get(rdata.exchange.to_text().lower(), {}).get(dns.rdatatype.A)
                    if glue is not None:
                        response.additional.append(glue)
        return response


def _formerr(wire: bytes) -> bytes | None:
    """A FORMERR reply echoing the query id, for packets too malformed to parse (None if no header at all)."""
    if len(wire) < 12:
        return None
    return wire[:2] + struct.pack("!HHHHH", 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)


class DnsServer:
    """Serves a ``Zone`` on UDP and TCP on the same port; ``port=0`` picks a free one (see ``.port``).

    Every query is logged through ``record`` with its name, type, transport, the rcode sent (None when the
    query was left unanswered) and the injected fault (None for an honest answer).
    """

    def __init__(
        self,
        zone: Zone,
        host: str = "127.0.0.1",
        port: int = 0,
        record: Recorder | None = None,
        settings: DnsSettings | None = None,
    ) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self.settings = settings or DnsSettings()
        self._record = record
        self._rng = random.Random(self.settings.seed)  # used on the loop thread only: no lock
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def delay(self) -> float:
        """Seconds to wait before sending the next reply (a draw from the settings' latency)."""
        return self.settings.latency.sample(self._rng)

    def answer(self, wire: bytes, client: str, transport: str, limit: int) -> bytes | None:
        """The reply bytes for one query, truncated (TC flag) when it exceeds ``limit`` bytes; None when nothing
        is to be sent (a packet without even a header, or an injected timeout)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire)
        fault: DnsFault | None = draw_fault(
            ((self.settings.servfail, "servfail"), (self.settings.timeout, "timeout")), self._rng
        )
        if fault == "servfail":
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            response = self.zone.respond(query)
        if self._record is not None and query.question:
            question = query.question[0]
            self._record(
                "dns",
                client,
                {
                    "name": question.name.to_text(),
                    "type": dns.rdatatype.to_text(question.rdtype),
                    "rcode": None if fault == "timeout" else dns.rcode.to_text(response.rcode()),
                    "transport": transport,
                    "fault": fault,
                },
            )
        if fault == "timeout":
            return None
        if query.edns >= 0:
            limit = min(limit, max(512, query.payload))
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC
            return truncated.to_wire()

    async def start(self) -> int:
        """Bind UDP and TCP (the same port for both) and start answering; return the port."""
        loop = asyncio.get_running_loop()
        problem: OSError | None = None
        for _ in range(1 if self.port else 20):
            try:
                udp, _protocol = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
                )
            except OSError as error:
                problem = error
                continue
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as error:  # a free UDP port can be taken on TCP: draw another
                udp.close()
                problem = error
                continue
            self._udp, self.port = udp, port
            return port
        raise OSError(
            f"cannot serve DNS on {self.host}:{self.port or 'any free port'} (UDP and TCP): {problem};"
            " pick another DNS port (--dns-port; 0: any free port)"
        )

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()  # not wait_closed(): from Python 3.12 it waits for idle clients to hang up

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[0]
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await reader.readexactly(length)
                delay = self.delay()
                if delay:
                    await asyncio.sleep(delay)
                reply = self.answer(wire, client, "tcp", 65535)
                if reply is not None:  # None: stay silent, as a stalled server does, until the client hangs up
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        delay = self._server.delay()
        reply = self._server.answer(data, str(addr[0]), "udp", 512)
        if reply is None or self._transport is None:
            return
        if delay:  # call_later, not sleep: other queries keep being answered meanwhile
            asyncio.get_running_loop().call_later(delay, self._transport.sendto, reply, addr)
        else:
            self._transport.sendto(reply, addr)
