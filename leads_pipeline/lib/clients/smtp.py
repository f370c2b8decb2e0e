"""SMTP mailbox probing: ask a domain's mail host whether it would take mail for an address, without sending.

The conversation is EHLO, MAIL FROM, RCPT TO the address, RCPT TO a made-up address at the same domain, RSET.
The made-up address tells a catch-all host (it accepts anything, so its 250 proves nothing) from one that
checks mailboxes. Only a 5xx about the mailbox makes an address undeliverable: timeouts, disconnects,
refused sessions (421 at connect), temporary failures (4xx: greylisting, a failed lookup), policy rejections
(5.7.x, e.g. our IP is blocklisted) and DNS failures on the way to the host are "unknown", to retry later.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.name

from leads_pipeline.lib.errors import ConfigurationError, TransientError
from leads_pipeline.lib.wording import plain_number

ProbeStatus = Literal["deliverable", "undeliverable", "catch_all", "unknown"]

PROBING_ENV = "LEADS_SMTP_PROBING"
PROBING_DEFAULT = "on"
"""Mail hosts are probed unless ``LEADS_SMTP_PROBING`` says otherwise (the resource's default and the estimate's)."""
_ON = frozenset({"on", "true", "1", "yes"})
_OFF = frozenset({"off", "false", "0", "no"})


def probing_on(setting: str) -> bool:
    """Whether mail hosts are probed at all, by ``LEADS_SMTP_PROBING`` ('on' or 'off': port 25 is blocked in most
    clouds, where the paid verifier or MX-only checks answer instead). Here rather than with the mail-checking
    resource, which loads Dagster, because the email estimate reads it too."""
    value = setting.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigurationError(f"{PROBING_ENV}: expected 'on' or 'off', found {setting!r}")


@dataclass(frozen=True)
class ProbeResult:
    """The verdict on one address. code/message: the deciding reply (None for no reply); host: the MX host
    asked; retry_after: seconds to wait before probing again, set when the host asked for it (4xx); unreachable:
    no host took the connection (refused, unreachable or timed out before the greeting), which our own network
    blocking port 25 also looks like (a host that cannot be resolved is not counted)."""

    status: ProbeStatus
    code: int | None
    message: str
    host: str | None
    retry_after: float | None = None
    unreachable: bool = False


class SmtpProber:
    """Probes addresses over SMTP with ``smtplib``; one instance caches each domain's catch-all verdict.

    helo_name: the name sent in EHLO; in production the probing machine's public host name (matching its PTR
    record), or many hosts refuse the session. mail_from: the envelope sender ("" sends the null sender <>).
    port: 25 in production; the sandbox's LEADS_SMTP_PORT otherwise. timeout: seconds per socket operation.
    routes: MX host name -> address to connect to, checked first; resolve: a fallback lookup of the same
    (e.g. ``MxResolver(LEADS_DNS_SERVER).resolve_address`` when LEADS_SMTP_ROUTES is "dns"), which returns
    None for a host without an address and raises ``TransientError`` when DNS fails; a host in neither is
    connected to by name through the system resolver.
    """

    def __init__(
        self,
        *,
        helo_name: str = "localhost",
        mail_from: str = "",
        port: int = 25,
        timeout: float = 10.0,
        routes: Mapping[str, str] | None = None,
        resolve: Callable[[str], str | None] | None = None,
        default_retry_after: float = 300.0,
        catch_all_ttl: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.helo_name = helo_name
        self.mail_from = mail_from
        self.port = port
        self.timeout = timeout
        self.routes = {host.lower(): address for host, address in (routes or {}).items()}
        self.resolve = resolve
        self.default_retry_after = default_retry_after
        self.catch_all_ttl = catch_all_ttl
        self._clock = clock
        # One made-up local part per prober: a greylisting host then sees the same (client, address) pair
        # again on the retry and lets it through, where a fresh random address would be greylisted forever.
        self._probe_local = f"zz-probe-{secrets.token_hex(6)}"
        self._catch_all: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def probe(self, email: str, mx_hosts: Sequence[str]) -> ProbeResult:
        """Probe ``email`` on its domain's MX hosts (in preference order, e.g. ``MxResult.hosts``).

        The next host is tried only when its address cannot be resolved or a connection is refused or
        unreachable; a host that connects and then stalls, hangs up or refuses the session ends the probe as
        "unknown", so one probe takes at most about ``timeout`` seconds per host.
        """
        local, at, domain = email.rpartition("@")
        domain = domain.lower()
        if not (local and at and domain):
            return ProbeResult("unknown", None, f"not an email address: {email!r}", None)
        if not mx_hosts:
            return ProbeResult("unknown", None, "no mail host to probe: look up the domain's MX first", None)
        wire_domain = _ascii_domain(domain)
        if wire_domain is None:
            return ProbeResult("unknown", None, f"not a domain name that DNS can carry: {domain!r}", None)
        problem = ""
        refused = False
        for host in mx_hosts:
            try:
                address = self._route(host)
            except TransientError as error:
                problem = f"{host} cannot be resolved: {error}"
                continue
            smtp = smtplib.SMTP(local_hostname=self.helo_name, timeout=self.timeout)
            connected = False
            try:
                code, greeting = smtp.connect(address, self.port)
                connected = True
                if code != 220:  # 421: overloaded or shutting down; it closes the connection after saying so
                    return self._verdict("unknown", code, greeting, host, "the host refused the session")
                return self._converse(smtp, local, domain, wire_domain, host)
            except smtplib.SMTPServerDisconnected as error:
                return self._unknown(host, f"the host closed or stalled the session: {error}")
            except smtplib.SMTPException as error:
                return self._unknown(host, f"SMTP failure: {error}")
            except TimeoutError:
                message = f"no answer within {plain_number(self.timeout)} s"
                return ProbeResult("unknown", None, message, host, unreachable=not connected)
            except UnicodeEncodeError:
                return self._unknown(host, "the address is not ASCII and SMTPUTF8 probing is not supported")
            except OSError as error:  # refused, unreachable, unknown name: the next host may do better
                problem = f"{host} ({address}:{self.port}) cannot be reached: {error}"
                refused = refused or not isinstance(error, socket.gaierror)
            finally:
                smtp.close()
        return ProbeResult("unknown", None, problem, None, unreachable=refused)

    def _route(self, host: str) -> str:
        key = host.lower().rstrip(".")
        if key in self.routes:
            return self.routes[key]
        if self.resolve is not None:
            resolved = self.resolve(key)
            if resolved is not None:
                return resolved
        return key

    def _converse(self, smtp: smtplib.SMTP, local: str, domain: str, wire_domain: str, host: str) -> ProbeResult:
        """The RCPTs name the domain in its A-labels (``wire_domain``), which every host takes; a local part
        that is not ASCII ("jörg@bücher.de") needs the host's SMTPUTF8 (RFC 6531), else the probe is unknown."""
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            code, reply = smtp.helo()
        if not 200 <= code < 300:
            return self._verdict("unknown", code, reply, host, "the host refused our HELO")
        utf8 = not local.isascii()
        if utf8 and not smtp.has_extn("smtputf8"):
            return self._unknown(host, "the address is not ASCII and the host does not take SMTPUTF8")
        code, reply = smtp.mail(self.mail_from, ["SMTPUTF8"] if utf8 else [])
        if not 200 <= code < 300:
            return self._verdict("unknown", code, reply, host, "the host refused our sender")
        code, reply = smtp.rcpt(f"{local}@{wire_domain}")
        catch_all = self._cached_catch_all(domain)
        deferred: tuple[int, bytes] | None = None
        if catch_all is None and code < 500:
            # Ask about the made-up address even after a 4xx: a greylisting host then knows both pairs
            # on the retry and answers both.
            probe_code, probe_reply = smtp.rcpt(f"{self._probe_local}@{wire_domain}")
            if 200 <= probe_code < 300 or _mailbox_rejection(probe_code, probe_reply):
                catch_all = 200 <= probe_code < 300
                with self._lock:
                    self._catch_all[domain] = (self._clock() + self.catch_all_ttl, catch_all)
            else:
                deferred = (probe_code, probe_reply)
        with contextlib.suppress(smtplib.SMTPException, OSError):  # the verdict is in; a rude goodbye is fine
            smtp.rset()
            smtp.quit()
        if 400 <= code < 500:
            return self._verdict("unknown", code, reply, host, "temporary failure (greylisting?)")
        if code >= 500:
            if _mailbox_rejection(code, reply):
                return self._verdict("undeliverable", code, reply, host)
            return self._verdict("unknown", code, reply, host, "policy rejection, not about the mailbox")
        if catch_all is None:
            probe_code, probe_reply = deferred or (code, reply)
            return self._verdict("unknown", probe_code, probe_reply, host, "catch-all check not answered")
        return self._verdict("catch_all" if catch_all else "deliverable", code, reply, host)

    def known_catch_all(self, domain: str) -> bool | None:
        """The cached catch-all verdict of ``domain`` (None when not known or expired)."""
        return self._cached_catch_all(domain.lower())

    def remember_catch_all(self, domain: str, catch_all: bool) -> None:
        """Seed the cache with a verdict stored elsewhere (e.g. the database), so the domain is not re-probed."""
        with self._lock:
            self._catch_all[domain.lower()] = (self._clock() + self.catch_all_ttl, catch_all)

    def _cached_catch_all(self, domain: str) -> bool | None:
        with self._lock:
            cached = self._catch_all.get(domain)
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    def _verdict(self, status: ProbeStatus, code: int, reply: bytes, host: str, note: str = "") -> ProbeResult:
        message = reply.decode("utf-8", "replace").replace("\n", " ")
        if note:
            message = f"{note}: {message}"
        retry_after = None
        if 400 <= code < 500:
            seconds = re.search(r"\b(\d+)\s*(?:seconds?|secs?|s)\b", message, re.IGNORECASE)
            retry_after = float(seconds.group(1)) if seconds else self.default_retry_after
        return ProbeResult(status, code, message, host, retry_after)

    def _unknown(self, host: str | None, message: str) -> ProbeResult:
        return ProbeResult("unknown", None, message, host)


def _ascii_domain(domain: str) -> str | None:
    """``domain`` as SMTP carries it without SMTPUTF8: an internationalized one in its A-labels ("bücher.de" is
    "xn--bcher-kva.de", the name the MX lookup asked DNS for); None for one that cannot be written so. A RCPT
    naming it in Unicode could not be sent at all, and an address at such a domain was never verified."""
    try:
        return dns.name.from_text(domain).to_text(omit_final_dot=True).lower()
    except dns.exception.DNSException:
        return None


def _mailbox_rejection(code: int, reply: bytes) -> bool:
    """A 5xx about the mailbox itself; 5.7.x enhanced codes are policy (spam blocks, relay denied) instead."""
    return code >= 500 and not reply.lstrip().startswith(b"5.7.")
