"""The email verification pipeline: syntax -> MX -> SMTP probe (or a paid verifier, or MX only) -> verdict.

Which mailbox check runs is a setting, because port 25 is blocked in most clouds: with probing on, every
address is probed and a paid verifier (when configured) is asked only where the probe found no answer
(timeouts, policy blocks); with probing off, the paid verifier answers, or, without one, the verdict says that
only DNS was checked. Each verdict names the method that decided it.

Probes run on a thread pool with a per-mail-host limit (mail hosts throttle and blocklist eager clients); a
greylisting host is asked again after the delay it names when that is within ``greylist_wait_s``, else the
address stays "unknown" with its ``retry_after`` so a later run asks again. Paid answers go through a
``Ledger``: it returns an answer already bought (this batch, or fresh in the cache) and records a new one the
moment it is bought, so a killed run never pays twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from leads_pipeline.lib.clients.dns import MxResolver, MxResult
from leads_pipeline.lib.clients.paid_verdicts import EmailVerdict
from leads_pipeline.lib.clients.smtp import ProbeResult, SmtpProber
from leads_pipeline.lib.contacts.emails import EmailLists, ParsedEmail, default_lists, parse_email
from leads_pipeline.lib.contacts.verdicts import (
    CONFIDENCE,
    Verdict,
    mx_only_verdict,
    mx_verdict,
    paid_verdict,
    smtp_verdict,
    syntax_verdict,
    with_fallback,
)
from leads_pipeline.lib.errors import TransientError


class PaidVerifier(Protocol):
    """What ZeroBounceResource and NeverBounceResource offer."""

    def verify(self, email: str) -> EmailVerdict: ...


class Ledger(Protocol):
    """Where paid verdicts are looked up before a call, paid for (reserve, then record or release) and recorded
    right after it. ``lead`` is the lead an address is verified for (None outside a batch): its id, not the
    address, says whose fact and cap a call is, since two leads of a chunk may be verified on one address."""

    def lookup(self, email: str, method: str, lead: int | None) -> Verdict | None: ...

    def reserve(self, method: str, email: str, lead: int | None) -> bool:
        """Whether a call of the paid verifier ``method`` on ``email`` fits the credit budget and the cap of
        ``lead`` (its price is then held)."""
        ...

    def release(self, method: str, email: str, lead: int | None) -> None:
        """The reserved call bought nothing (it failed): free its price."""
        ...

    def record(self, verdict: Verdict, lead: int | None) -> None: ...

    def buying(self, method: str, email: str) -> AbstractContextManager[None]:
        """Hold the purchase of ``method``'s verdict on ``email`` while it is looked up again, bought and recorded:
        another job verifying the address meanwhile waits, then finds the verdict stored."""
        ...


class NoLedger:
    """Remembers nothing and caps nothing: for one-off checks (``leads verify``) where nothing is stored."""

    def lookup(self, email: str, method: str, lead: int | None) -> Verdict | None:
        return None

    def reserve(self, method: str, email: str, lead: int | None) -> bool:
        return True

    def release(self, method: str, email: str, lead: int | None) -> None:
        return None

    def record(self, verdict: Verdict, lead: int | None) -> None:
        return None

    def buying(self, method: str, email: str) -> AbstractContextManager[None]:
        return nullcontext()


BLOCKED_HOSTS = 2
"""The fewest mail hosts that must all refuse connections before probing is taken for blocked on our side."""


@dataclass(frozen=True)
class VerifierSettings:
    """probing: SMTP probes on/off. fallback: ask the paid verifier when a probe gives no answer.
    workers: concurrent probes or paid calls; per_host: concurrent probes on one mail host;
    greylist_wait_s: the longest greylisting delay waited for within a run; silent_host_s: how long a mail
    host that let two probes in a row time out is not probed again (each probe of a dead host waits the full
    timeout)."""

    probing: bool = True
    fallback: bool = True
    workers: int = 16
    per_host: int = 4
    greylist_wait_s: float = 30.0
    silent_host_s: float = 600.0


class EmailVerifier:
    """Verifies addresses; thread-safe, so discovery can verify candidates for many leads at once."""

    def __init__(
        self,
        resolver: MxResolver,
        prober: SmtpProber | None,
        paid: PaidVerifier | None = None,
        paid_name: str | None = None,
        *,
        ledger: Ledger | None = None,
        lists: EmailLists | None = None,
        settings: VerifierSettings | None = None,
    ) -> None:
        self.resolver = resolver
        self.settings = settings or VerifierSettings()
        self.prober = prober if self.settings.probing else None
        if (paid is None) != (paid_name is None):
            raise ValueError("paid and paid_name go together: name the verifier being used")
        self.paid = paid
        self.paid_name = paid_name
        self.ledger: Ledger = ledger or NoLedger()
        self.lists = lists or default_lists()
        self._host_gates: dict[str, threading.Semaphore] = {}
        self._silent: dict[str, float] = {}
        self._strikes: dict[str, int] = {}
        self._reached: set[str] = set()
        self._unreached: set[str] = set()
        self._gates_lock = threading.Lock()

    @property
    def blocked_hosts(self) -> int:
        """How many mail hosts were probed, none of which took a connection (0 when one did, or fewer than
        ``BLOCKED_HOSTS`` were tried): every host of several domains refusing or letting the connect time out
        points at our side (outgoing port 25 blocked, as in most clouds, or the mail servers' sandbox down), not at
        the hosts, whose one refusal alone stays "unknown"."""
        with self._gates_lock:
            return len(self._unreached) if not self._reached and len(self._unreached) >= BLOCKED_HOSTS else 0

    @property
    def method(self) -> str:
        """What checks mailboxes: "smtp", the paid verifier's name, or "mx" (DNS only)."""
        if self.prober is not None:
            return "smtp"
        return self.paid_name or "mx"

    def parse(self, email: str) -> ParsedEmail:
        return parse_email(email, self.lists)

    def mx_many(self, domains: Iterable[str]) -> dict[str, MxResult]:
        return self.resolver.lookup_many([d for d in domains if d], concurrency=self.settings.workers * 4)

    def verify_many(self, emails: Iterable[str]) -> dict[str, Verdict]:
        """Verdicts keyed by the address as given (duplicates checked once)."""
        given = list(dict.fromkeys(emails))
        parsed = {email: self.parse(email) for email in given}
        mx = self.mx_many({p.domain for p in parsed.values() if p.valid_syntax})
        with ThreadPoolExecutor(max_workers=max(1, self.settings.workers)) as pool:
            verdicts = pool.map(lambda email: self.verify_parsed(parsed[email], mx.get(parsed[email].domain)), given)
            return dict(zip(given, verdicts, strict=True))

    def verify_parsed(self, parsed: ParsedEmail, mx: MxResult | None, lead: int | None = None) -> Verdict:
        """The verdict on one parsed address whose domain's MX is ``mx`` (looked up now when None), verified for
        ``lead`` (a paid verdict is its fact and counts against its cap)."""
        early = syntax_verdict(parsed)
        if early is not None:
            return early
        if mx is None:
            mx = self.resolver.lookup_mx(parsed.domain)
        early = mx_verdict(parsed, mx)
        if early is not None:
            return early
        if self.prober is None:
            paid = self._paid(parsed, mx, lead) if self.paid is not None else None
            if paid is None and self.paid_name is not None:
                reason = f"{self.paid_name} was not asked: the credit budget or the lead's cap is used up"
                return mx_only_verdict(parsed, mx, reason)
            return paid or mx_only_verdict(parsed, mx)
        verdict = self._probe(parsed, mx)
        wait = verdict.retry_after
        if verdict.status == "unknown" and wait is not None and wait <= self.settings.greylist_wait_s:
            time.sleep(wait)
            verdict = self._probe(parsed, mx)
        if verdict.status == "unknown" and self.settings.fallback and self.paid is not None:
            paid = self._paid(parsed, mx, lead)
            return with_fallback(verdict, paid) if paid is not None else verdict
        return verdict

    def _probe(self, parsed: ParsedEmail, mx: MxResult) -> Verdict:
        assert self.prober is not None
        host = mx.hosts[0]
        with self._gates_lock:
            silent_until = self._silent.get(host, 0.0)
            unreached = host in self._unreached
        if silent_until > time.monotonic():
            note = "the host did not answer a probe moments ago; not asked again"
            return smtp_verdict(parsed, mx, ProbeResult("unknown", None, note, host, unreachable=unreached))
        with self._gate(host):
            probe = self.prober.probe(parsed.email, mx.hosts)
        silent = probe.status == "unknown" and probe.code is None and _silence(probe.message)
        with self._gates_lock:
            if probe.unreachable:
                self._unreached.update(mx.hosts if probe.host is None else (probe.host,))
            elif probe.host is not None:  # a host took the connection, whatever it said then
                self._reached.add(probe.host)
            # Two timeouts in a row: one alone may be a busy host (or our own load), not a dead one.
            strikes = self._strikes[host] = self._strikes.get(host, 0) + 1 if silent else 0
            if strikes >= 2:
                self._silent[host] = time.monotonic() + self.settings.silent_host_s
        return smtp_verdict(parsed, mx, probe)

    def _paid(self, parsed: ParsedEmail, mx: MxResult, lead: int | None) -> Verdict | None:
        """The paid verifier's verdict (a stored one when the ledger has it); None when the budget refuses."""
        assert self.paid is not None and self.paid_name is not None
        stored = self.ledger.lookup(parsed.email, self.paid_name, lead)
        if stored is not None:
            return stored
        with self.ledger.buying(self.paid_name, parsed.email):  # another job may be buying it: look again after
            stored = self.ledger.lookup(parsed.email, self.paid_name, lead)
            return stored if stored is not None else self._buy(parsed, mx, lead)

    def _buy(self, parsed: ParsedEmail, mx: MxResult, lead: int | None) -> Verdict | None:
        """Ask the paid verifier and record its verdict; None when the budget refuses the call."""
        assert self.paid is not None and self.paid_name is not None
        if not self.ledger.reserve(self.paid_name, parsed.email, lead):
            return None
        try:
            answer = self.paid.verify(parsed.email)
        except TransientError as error:  # nothing was bought: say so and let a later run ask again
            self.ledger.release(self.paid_name, parsed.email, lead)
            return Verdict(
                parsed.email,
                "unknown",
                CONFIDENCE["dns_transient"],
                self.paid_name,
                (f"{self.paid_name} did not answer: {error}",),
                tuple(parsed.flags()),
                {self.paid_name: {"error": str(error)}},
                mx_hosts=mx.hosts,
            )
        except BaseException:
            self.ledger.release(self.paid_name, parsed.email, lead)
            raise
        verdict = paid_verdict(parsed, mx, answer)
        self.ledger.record(verdict, lead)
        return verdict

    def _gate(self, host: str) -> threading.Semaphore:
        with self._gates_lock:
            gate = self._host_gates.get(host)
            if gate is None:
                gate = self._host_gates[host] = threading.Semaphore(max(1, self.settings.per_host))
            return gate


def _silence(message: str) -> bool:
    """A probe that ended because the host said nothing (timeouts), as opposed to one that was refused."""
    text = message.lower()
    return "timed out" in text or "no answer within" in text
