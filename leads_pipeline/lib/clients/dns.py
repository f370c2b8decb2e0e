"""MX lookups for email verification: which hosts receive mail for a domain, cached, many at a time.

Verification asks for the same few thousand domains over and over (every lead at acme.com shares its MX),
so answers are cached per domain for their TTL. Bulk lookups use ``dns.asyncresolver``, which on two cores is
faster than a thread pool. The nameserver is configurable as host:port because the sandbox DNS server (and a
local caching resolver in production) listens on a port that resolv.conf cannot express.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from leads_pipeline.lib.errors import ConfigurationError, TransientError
from leads_pipeline.lib.wording import plain_number


@dataclass(frozen=True)
class MxResult:
    """Where mail for ``domain`` goes.

    hosts: MX host names by preference (lowest first), or ``(domain,)`` when ``fallback_a`` is True: the
    domain has no MX but an address record, which RFC 5321 5.1 makes its implicit mail host. error: why there
    is no host (None when there is one); transient: the error may clear on retry (timeout, SERVFAIL), so it is
    not cached and a verifier should report "unknown", never "undeliverable".
    """

    domain: str
    hosts: tuple[str, ...]
    fallback_a: bool = False
    error: str | None = None
    transient: bool = False


def parse_nameserver(value: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:53"`` or ``"10.0.0.1"`` (port 53) -> (address, port)."""
    text = value.strip()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
    else:
        address, port_text = text, "53"
    if not address or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(
            f"nameserver: expected host:port like '127.0.0.1:5353' (or an address alone for port 53), found {value!r}"
        )
    return address, int(port_text)


class MxResolver:
    """Resolves MX records with per-domain caching.

    ``nameserver`` is "host:port" (LEADS_DNS_SERVER); None uses the system's resolv.conf. Positive answers are
    cached for their DNS TTL (at most ``max_ttl`` seconds), NXDOMAIN and no-mail-host answers for
    ``negative_ttl``; transient failures are not cached. The synchronous methods run their own event loop, so
    call the ``*_async`` ones from async code.
    """

    def __init__(
        self,
        nameserver: str | None = None,
        *,
        timeout: float = 5.0,
        max_ttl: float = 3600.0,
        negative_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if nameserver is None:
            self._resolver = dns.asyncresolver.Resolver()
        else:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            address, port = parse_nameserver(nameserver)
            self._resolver.nameservers = [address]
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, MxResult]] = {}
        self._lock = threading.Lock()

    def lookup_mx(self, domain: str) -> MxResult:
        return asyncio.run(self.lookup_mx_async(domain))

    def lookup_many(self, domains: Iterable[str], concurrency: int = 50) -> dict[str, MxResult]:
        """Results per distinct domain (keys normalized: lower case, no trailing dot), in input order."""
        return asyncio.run(self.lookup_many_async(domains, concurrency))

    def resolve_address(self, host: str) -> str | None:
        """The first address of ``host`` through this resolver (None if it has none): the route a prober
        needs for sandbox mail hosts, which exist only in the sandbox DNS.

        Raises ``TransientError`` when the nameserver does not answer or answers SERVFAIL: that says nothing
        about the host, so it must not read as "no address".
        """
        try:
            return asyncio.run(self._first_address(host))
        except dns.exception.Timeout:
            message = f"no address for {host}: timeout: no answer within {plain_number(self.timeout)} s"
            raise TransientError(message) from None
        except dns.resolver.NoNameservers as error:
            message = f"no address for {host}: no nameserver answered (SERVFAIL or refused): {error}"
            raise TransientError(message) from None

    async def lookup_many_async(self, domains: Iterable[str], concurrency: int = 50) -> dict[str, MxResult]:
        if concurrency < 1:
            raise ValueError(f"concurrency: expected at least 1, found {concurrency}")
        names = list(dict.fromkeys(_normalize(d) for d in domains))
        gate = asyncio.Semaphore(concurrency)

        async def one(name: str) -> MxResult:
            async with gate:
                return await self.lookup_mx_async(name)

        results = await asyncio.gather(*(one(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def lookup_mx_async(self, domain: str) -> MxResult:
        name = _normalize(domain)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        result, ttl = await self._query(name)
        if not result.transient:
            with self._lock:
                self._cache[name] = (now + ttl, result)
        return result

    async def _query(self, name: str) -> tuple[MxResult, float]:
        """The result for ``name`` and how long it may be cached."""
        try:
            answer = await self._resolver.resolve(name, dns.rdatatype.MX)
        except dns.resolver.NXDOMAIN:
            return MxResult(name, (), error="NXDOMAIN: the domain does not exist"), self.negative_ttl
        except dns.resolver.NoAnswer:
            return await self._fallback(name)
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong) as error:
            return MxResult(name, (), error=f"invalid domain name: {error}"), self.negative_ttl
        except dns.exception.Timeout:
            return self._transient(name, f"timeout: no answer within {plain_number(self.timeout)} s"), 0.0
        except dns.resolver.NoNameservers as error:
            return self._transient(name, f"no nameserver answered (SERVFAIL or refused): {error}"), 0.0
        records = sorted(answer, key=lambda r: (r.preference, r.exchange.to_text()))
        ttl = min(float(answer.rrset.ttl if answer.rrset else 0), self.max_ttl)
        if any(r.exchange == dns.name.root for r in records):
            return MxResult(name, (), error="null MX (RFC 7505): the domain accepts no mail"), ttl
        return MxResult(name, tuple(r.exchange.to_text(omit_final_dot=True).lower() for r in records)), ttl

    async def _fallback(self, name: str) -> tuple[MxResult, float]:
        """No MX: RFC 5321 5.1 makes the domain's own address record its mail host, if it has one."""
        try:
            if await self._first_address(name) is not None:
                return MxResult(name, (name,), fallback_a=True), self.negative_ttl
        except dns.exception.Timeout:
            return self._transient(name, f"timeout: no answer within {plain_number(self.timeout)} s"), 0.0
        except dns.resolver.NoNameservers as error:
            return self._transient(name, f"no nameserver answered (SERVFAIL or refused): {error}"), 0.0
        return MxResult(name, (), error="no MX and no address record: the domain receives no mail"), self.negative_ttl

    async def _first_address(self, host: str) -> str | None:
        """A then AAAA; None only when the nameserver says there is none. A timeout or SERVFAIL propagates:
        read as "no address" it would turn a DNS hiccup into "the domain receives no mail"."""
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await self._resolver.resolve(_normalize(host), rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            return str(answer[0].address)
        return None

    @staticmethod
    def _transient(name: str, error: str) -> MxResult:
        return MxResult(name, (), error=error, transient=True)


def _normalize(domain: str) -> str:
    return domain.strip().rstrip(".").lower()
