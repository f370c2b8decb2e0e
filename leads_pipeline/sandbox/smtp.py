"""The sandbox mail hosts: one SMTP server per mail-server behaviour, each on its own loopback address.

An MX record has no port and a probe cannot tell hosts apart by name once it has connected, so each behaviour
(strict, catch_all, accepts, greylist, timeout) gets an address of its own (127.0.0.2, 127.0.0.3, ...) and the
DNS server points every MX host name at the address of its domain's behaviour. All hosts listen on one port,
configurable because port 25 needs root. They answer RCPT TO from the world's mailboxes, never deliver mail.
Like the HTTP emulators they can be slow and fail on purpose (``SmtpSettings``), the way real mail hosts
fail a verifier: 421 at connect (overloaded), 451 to a RCPT (a local lookup failed) and dropped connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import dns.exception
import dns.name

from leads_pipeline.sandbox.faults import Latency, check_rates, draw_fault
from leads_pipeline.sandbox.world import World

Recorder = Callable[[str, str, dict[str, Any]], None]
"""Receives (service, client address, details) for every RCPT and every injected fault: the request log."""

SmtpFault = Literal["unavailable", "temporary_failure", "dropped"]

DEFAULT_MAIL_ADDRESSES: dict[str, str] = {
    "strict": "127.0.0.2",
    "catch_all": "127.0.0.3",
    "accepts": "127.0.0.4",
    "greylist": "127.0.0.5",
    "timeout": "127.0.0.6",
}
"""Behaviour -> listening address. no_mx domains have none: their A record points at the strict host."""

HOSTNAME = "mail.sandbox.invalid"
MAX_LINE = 1000  # RFC 5321 4.5.3.1.6: a command line is at most 1000 octets with CRLF


@dataclass(frozen=True)
class SmtpSettings:
    """Timing of the behaviours that depend on time, and the faults every host injects.

    greylist_delay: a retry sooner than this (seconds after the first try) is greylisted again; real
    greylisting uses 60-300 s, tests use 0. greylist_window: how long a (client, address) pair is remembered.
    timeout_delay: None makes "timeout" hosts accept the connection and never greet; a number greets after
    that many seconds and then answers as strict (a slow host rather than a dead one).
    idle_timeout: a session silent this long is closed, so abandoned connections do not pile up.

    latency: delay before every reply, the greeting included (a probe waits for seven). Fault rates,
    each an independent draw: unavailable, per connection, greets 421 and hangs up; temporary_failure, per
    RCPT, answers 451 instead of the behaviour's answer; dropped, per command, closes the connection without
    a reply. A verifier must call all three "unknown", never "undeliverable". seed: the same seed injects the
    same faults into the same sequence of sessions.
    """

    greylist_delay: float = 0.0
    greylist_window: float = 3600.0
    timeout_delay: float | None = None
    idle_timeout: float = 300.0
    latency: Latency = field(default_factory=Latency)
    unavailable: float = 0.0
    temporary_failure: float = 0.0
    dropped: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        check_rates(
            "SmtpSettings",
            unavailable=self.unavailable,
            temporary_failure=self.temporary_failure,
            dropped=self.dropped,
        )


class MailHosts:
    """The SMTP servers of every behaviour, sharing the world's mailboxes and one greylist memory."""

    def __init__(
        self,
        world: World,
        addresses: Mapping[str, str] = DEFAULT_MAIL_ADDRESSES,
        port: int = 0,
        settings: SmtpSettings | None = None,
        record: Recorder | None = None,
    ) -> None:
        self.addresses = dict(addresses)
        self.port = port
        self.settings = settings or SmtpSettings()
        self._record = record
        self._mailboxes = frozenset(_mailbox_key(p.email) for p in world.people if p.email)
        self._domains = frozenset(_domain_key(c.domain) for c in world.companies)
        self._greylist: dict[tuple[str, str], float] = {}
        self._rng = random.Random(self.settings.seed)  # used on the loop thread only: no lock
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on every address on one port (``port=0``: a port free on all of them); return the port."""
        requested = self.port
        problem: OSError | None = None
        for _ in range(1 if requested else 20):
            port = requested
            try:
                for address in self.addresses.values():
                    server = await asyncio.start_server(self._session_for(address), address, port)
                    self._servers.append(server)
                    port = server.sockets[0].getsockname()[1]  # the first bind draws it; the rest reuse it
            except OSError as error:
                await self._close_servers()
                problem = error
                continue
            self.port = port
            return port
        raise OSError(
            f"cannot listen for SMTP on port {requested or 'any free port'} of all of"
            f" {list(self.addresses.values())}: {problem}; pick another SMTP port (--smtp-port; 0: any free port)"
            " (on macOS, alias 127.0.0.2-127.0.0.6 to lo0 first)"
        )

    async def stop(self) -> None:
        await self._close_servers()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    async def _close_servers(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []

    def _session_for(self, address: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        behaviour = next(b for b, a in self.addresses.items() if a == address)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._sessions.add(task)
            try:
                await _Session(self, behaviour, address, reader, writer).run()
            except (ConnectionError, asyncio.CancelledError, TimeoutError):
                pass
            finally:
                self._sessions.discard(task)
                writer.close()

        return serve

    def rcpt_reply(self, behaviour: str, client: str, address: str) -> tuple[int, str]:
        """The reply a host of ``behaviour`` gives to RCPT TO:<address> from ``client``."""
        key = _mailbox_key(address)
        if behaviour in ("catch_all", "accepts"):
            return 250, "2.1.5 Ok"
        if behaviour == "greylist":
            now = time.monotonic()
            first = self._greylist.get((client, key))
            if first is None or now - first > self.settings.greylist_window:
                self._greylist[(client, key)] = now
                return _greylisted(address, self.settings.greylist_delay)
            if now - first < self.settings.greylist_delay:
                return _greylisted(address, self.settings.greylist_delay - (now - first))
        domain = key.rpartition("@")[2]
        if domain not in self._domains:
            return 550, f"5.7.1 <{address}>: Relay access denied"
        if key in self._mailboxes or key.partition("@")[0] == "postmaster":
            return 250, "2.1.5 Ok"
        return 550, f"5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"

    def delay(self) -> float:
        """Seconds to wait before the next reply (a draw from the settings' latency)."""
        return self.settings.latency.sample(self._rng)

    def fails(self, rate: float) -> bool:
        """One fault draw at ``rate``: for a connection, a RCPT or a command, as the setting says."""
        return draw_fault(((rate, True),), self._rng) is not None

    def log(self, client: str, details: dict[str, Any]) -> None:
        if self._record is not None:
            self._record("smtp", client, details)


def _domain_key(domain: str) -> str:
    """``domain`` as the hosts file it: case-folded, an internationalized one in its A-labels, so that a RCPT
    naming it either way ("bücher.de", "xn--bcher-kva.de") finds its mailboxes, as a real host's does."""
    domain = domain.casefold()
    with contextlib.suppress(dns.exception.DNSException):
        domain = dns.name.from_text(domain).to_text(omit_final_dot=True)
    return domain


def _mailbox_key(address: str) -> str:
    local, _, domain = address.casefold().rpartition("@")
    return f"{local}@{_domain_key(domain)}"


def _greylisted(address: str, wait: float) -> tuple[int, str]:
    seconds = math.ceil(wait)
    return 451, f"4.7.1 <{address}>: Recipient address rejected: Greylisted, retry in {seconds} seconds"


class _Session:
    """One SMTP conversation: the commands a verifier uses (EHLO/HELO, MAIL, RCPT, RSET, NOOP, QUIT)."""

    def __init__(
        self,
        hosts: MailHosts,
        behaviour: str,
        address: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.hosts = hosts
        self.behaviour = behaviour
        self.address = address
        self.reader = reader
        self.writer = writer
        self.client = str(writer.get_extra_info("peername")[0])
        self.greeted = False
        self.sender: str | None = None

    async def run(self) -> None:
        settings = self.hosts.settings
        if self.behaviour == "timeout":
            if settings.timeout_delay is None:
                await self.reader.read()  # never answer; wait for the client to give up
                return
            await asyncio.sleep(settings.timeout_delay)
            self.behaviour = "strict"
        if self.hosts.fails(settings.unavailable):
            self.log("CONNECT", None, 421, "unavailable")
            await self.reply(421, f"4.3.2 {HOSTNAME} Service not available, closing transmission channel")
            return
        await self.reply(220, f"{HOSTNAME} ESMTP ready")
        while True:
            line = await asyncio.wait_for(self.reader.readline(), settings.idle_timeout)
            if not line:
                return
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                await self.reply(500, "5.5.2 Error: line too long")
                return
            text = line.decode("utf-8", "replace").strip()
            if self.hosts.fails(settings.dropped):
                self.log(text.partition(" ")[0].upper(), None, None, "dropped")
                return  # the caller closes the connection: no reply, no 421, just gone
            if not await self.command(text):
                return

    def log(self, command: str, rcpt: str | None, code: int | None, fault: SmtpFault | None) -> None:
        """One log entry; every entry has the same keys so that tests can filter on any of them."""
        details = {"host": self.address, "behaviour": self.behaviour, "command": command, "rcpt": rcpt}
        self.hosts.log(self.client, {**details, "code": code, "fault": fault})

    async def reply(self, code: int, text: str, *extra: str) -> None:
        delay = self.hosts.delay()
        if delay:
            await asyncio.sleep(delay)
        lines = [text, *extra]
        payload = "".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{t}\r\n" for i, t in enumerate(lines))
        self.writer.write(payload.encode())
        await self.writer.drain()

    async def command(self, line: str) -> bool:
        """Answer one command line; False when the session is over."""
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self.greeted, self.sender = True, None
            extensions = ("PIPELINING", "SIZE 35882577", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8")
            await self.reply(250, f"{HOSTNAME}", *extensions)
        elif verb == "HELO":
            self.greeted, self.sender = True, None
            await self.reply(250, HOSTNAME)
        elif verb == "MAIL":
            await self.mail(argument)
        elif verb == "RCPT":
            await self.rcpt(argument)
        elif verb == "RSET":
            self.sender = None
            await self.reply(250, "2.0.0 Ok")
        elif verb == "NOOP":
            await self.reply(250, "2.0.0 Ok")
        elif verb == "VRFY":
            await self.reply(252, "2.0.0 Cannot VRFY user, but will accept message and attempt delivery")
        elif verb == "DATA":
            await self.reply(554, "5.7.1 The sandbox never delivers mail")
        elif verb == "QUIT":
            await self.reply(221, "2.0.0 Bye")
            return False
        else:
            await self.reply(502, "5.5.2 Error: command not recognized")
        return True

    async def mail(self, argument: str) -> None:
        if not self.greeted:
            await self.reply(503, "5.5.1 Error: send HELO/EHLO first")
            return
        match = re.fullmatch(r"FROM:\s*<([^>]*)>.*", argument, re.IGNORECASE)
        if match is None:
            await self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
            return
        self.sender = match.group(1)
        await self.reply(250, "2.1.0 Ok")

    async def rcpt(self, argument: str) -> None:
        if self.sender is None:
            await self.reply(503, "5.5.1 Error: need MAIL command")
            return
        match = re.fullmatch(r"TO:\s*<([^>]+@[^>]+)>.*", argument, re.IGNORECASE)
        if match is None:
            await self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
            return
        recipient = match.group(1)
        fault: SmtpFault | None = None
        if self.hosts.fails(self.hosts.settings.temporary_failure):
            fault, code, text = "temporary_failure", 451, f"4.3.0 <{recipient}>: Temporary lookup failure"
        else:
            code, text = self.hosts.rcpt_reply(self.behaviour, self.client, recipient)
        self.log("RCPT", recipient, code, fault)
        await self.reply(code, text)
