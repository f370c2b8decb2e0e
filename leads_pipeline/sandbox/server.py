"""The whole provider sandbox in one process: DNS, mail hosts and the HTTP emulators, on background threads.

Tests, benchmarks and ``leads sandbox up`` all start it the same way, ``Sandbox.start(world)``, and configure
clients with ``sandbox.env()``. DNS and SMTP share one asyncio loop thread (both are I/O-bound and tiny per
request); the HTTP emulators run on a threaded WSGI server so that a slow or stalled emulator answer (a
timeout fault) does not hold up other clients. Latency and faults are set per service: ``DnsSettings``,
``SmtpSettings`` and the HTTP emulators' ``EmulatorSettings``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from leads_pipeline.sandbox.dns import DnsServer, DnsSettings, Zone
from leads_pipeline.sandbox.smtp import DEFAULT_MAIL_ADDRESSES, MailHosts, SmtpSettings
from leads_pipeline.sandbox.world import World

if TYPE_CHECKING:  # the HTTP emulators import the provider clients (~2 s): only a sandbox that serves them pays
    from leads_pipeline.sandbox.http import EmulatorSettings, HttpEmulator

T = TypeVar("T")
EMAIL_LISTS_DIR = Path(__file__).resolve().parents[1] / "data" / "email_lists"
"""The free-mail, disposable and role lists shipped with the package (see ATTRIBUTION.md there): what the
verifier emulators flag addresses with unless the HTTP settings bring their own."""


@dataclass(frozen=True)
class LoggedRequest:
    """One request the sandbox answered: ``service`` is "dns", "smtp" or "http"; ``details`` what it was."""

    service: str
    client: str
    details: Mapping[str, Any]
    at: float = field(default_factory=time.time)


class RequestLog:
    """Thread-safe, bounded record of what the sandbox was asked: tests and benchmarks read it afterwards."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(self, service: str, client: str, details: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(LoggedRequest(service, client, details))

    def entries(self, service: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [e for e in self._entries if service is None or e.service == service]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _LoopThread:
    """An asyncio loop on a daemon thread; ``run`` executes a coroutine on it and waits for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sandbox-dns-smtp", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class _HttpServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops concurrent clients (PROVIDERS.md, General)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the RequestLog, not to stderr."""


class _Mounts:
    """The WSGI app of the HTTP port: apps mounted by path prefix (longest first), then the root app."""

    def __init__(self, log: RequestLog) -> None:
        self.apps: dict[str, WSGIApplication] = {}
        self._log = log

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        status: list[str] = []

        def recording_start_response(code: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *rest)

        for prefix in sorted(self.apps, key=len, reverse=True):
            if prefix == "" or path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                body = self.apps[prefix](environ, recording_start_response)
                self._log.record(
                    "http",
                    str(environ.get("REMOTE_ADDR", "")),
                    {
                        "method": environ.get("REQUEST_METHOD"),
                        "path": path,
                        "status": status[0] if status else None,
                    },
                )
                return body
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        mounted = ", ".join(sorted(p or "/" for p in self.apps)) or "nothing"
        return [f"no sandbox emulator serves {path}; mounted: {mounted}\n".encode()]


class Sandbox:
    """A running sandbox serving one world. Start it with ``Sandbox.start(world)``; stop it with ``stop()`` or
    by leaving a ``with`` block. ``log`` records every DNS query, RCPT, injected SMTP fault and HTTP request."""

    def __init__(
        self,
        world: World,
        *,
        host: str = "127.0.0.1",
        mail_addresses: Mapping[str, str] = DEFAULT_MAIL_ADDRESSES,
        dns_settings: DnsSettings | None = None,
        smtp_settings: SmtpSettings | None = None,
        http_settings: EmulatorSettings | None = None,
    ) -> None:
        self.world = world
        self.host = host
        self.log = RequestLog()
        self.mail_addresses = dict(mail_addresses)
        self.http_app: HttpEmulator | None = None
        """The HTTP emulators' app once started (tests reach its fault injection and its own log here)."""
        self._dns_settings = dns_settings
        self._smtp_settings = smtp_settings
        self._http_settings = http_settings
        self._mounts = _Mounts(self.log)
        self._env_hooks: list[Callable[[str], Mapping[str, str]]] = []
        self._loop: _LoopThread | None = None
        self._dns: DnsServer | None = None
        self._smtp: MailHosts | None = None
        self._http: _HttpServer | None = None

    @classmethod
    def start(
        cls,
        world: World,
        host: str = "127.0.0.1",
        dns_port: int = 0,
        smtp_port: int = 0,
        http_port: int = 0,
        *,
        mail_addresses: Mapping[str, str] = DEFAULT_MAIL_ADDRESSES,
        dns_settings: DnsSettings | None = None,
        smtp_settings: SmtpSettings | None = None,
        http_settings: EmulatorSettings | None = None,
        http_emulators: bool = True,
    ) -> Sandbox:
        """Start DNS on ``host:dns_port``, the mail hosts on ``mail_addresses`` at ``smtp_port`` and the HTTP
        emulators on ``host:http_port``; a port of 0 takes a free one. Everything is stopped again if any part
        fails to start. Settings left None are the defaults: no latency, no faults, and for HTTP the packaged
        email lists (``EMAIL_LISTS_DIR``). ``http_emulators=False`` mounts no emulator (and skips importing
        them), for tests of DNS, SMTP or the mounting itself."""
        sandbox = cls(
            world,
            host=host,
            mail_addresses=mail_addresses,
            dns_settings=dns_settings,
            smtp_settings=smtp_settings,
            http_settings=http_settings,
        )
        try:
            sandbox._start(dns_port, smtp_port, http_port, http_emulators)
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def _start(self, dns_port: int, smtp_port: int, http_port: int, http_emulators: bool) -> None:
        self._loop = _LoopThread()
        zone = Zone(self.world, self.mail_addresses, web_address=self.host)
        self._dns = DnsServer(zone, self.host, dns_port, self.log.record, self._dns_settings)
        self._loop.run(self._dns.start())
        self._smtp = MailHosts(self.world, self.mail_addresses, smtp_port, self._smtp_settings, self.log.record)
        self._loop.run(self._smtp.start())
        if http_emulators:
            self._mount_emulators()
        try:
            self._http = make_server(self.host, http_port, self._mounts, _HttpServer, _QuietHandler)
        except OSError as error:
            raise OSError(
                f"cannot serve HTTP on {self.host}:{http_port}: {error}; pick another HTTP port (--http-port; 0: any"
                " free port)"
            ) from error
        # stop() waits up to one poll interval for serve_forever to notice; the default 0.5 s slows every test
        serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, name="sandbox-http", daemon=True).start()

    def _mount_emulators(self) -> None:
        from leads_pipeline.sandbox.http import EmailLists, EmulatorSettings, build_http_app, http_env

        settings = self._http_settings
        if settings is None:
            settings = EmulatorSettings(email_lists=EmailLists.load(EMAIL_LISTS_DIR))
        self.http_app = build_http_app(self.world, settings)
        self.register_http_app("", self.http_app, http_env)

    def register_http_app(
        self,
        prefix: str,
        app: WSGIApplication,
        env: Callable[[str], Mapping[str, str]] | Mapping[str, str] | None = None,
    ) -> None:
        """Serve ``app`` under ``prefix`` (e.g. "/apify"; "" for the root) on the HTTP port, now or later.

        ``env`` adds settings to ``env()``: a mapping, or a function of the app's base URL (the sandbox URL
        plus the prefix), e.g. ``lambda url: {"APIFY_API_URL": url}``.
        """
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix: expected '' or a path like '/apify', found {prefix!r}")
        self._mounts.apps[prefix] = app
        if env is not None:
            hook = env if callable(env) else (lambda _url, fixed=dict(env): fixed)
            self._env_hooks.append(lambda base: hook(base + prefix))

    @property
    def dns_port(self) -> int:
        return self._started(self._dns).port

    @property
    def smtp_port(self) -> int:
        return self._started(self._smtp).port

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self._started(self._http).server_port}"

    @staticmethod
    def _started(part: T | None) -> T:
        if part is None:
            raise RuntimeError("the sandbox is not running: create it with Sandbox.start(world)")
        return part

    def env(self) -> dict[str, str]:
        """Environment settings that point the project's clients at this sandbox.

        LEADS_DNS_SERVER is host:port for ``MxResolver``. LEADS_SMTP_PORT is the port of every mail host.
        LEADS_SMTP_ROUTES=dns says how a prober reaches an MX host: resolve its name with an A query to
        LEADS_DNS_SERVER (the sandbox's mail hosts exist only there), not with the system resolver.
        LEADS_SANDBOX_HTTP is the emulators' base URL; each registered app adds its own settings.
        LEADS_ALLOW_PRIVATE_URLS=1 lets webhooks and photo downloads reach this machine's addresses, where a test
        or demo receiver listens (outside the sandbox they are refused, ``lib/clients/egress.py``).
        """
        settings = {
            "LEADS_DNS_SERVER": f"{self.host}:{self.dns_port}",
            "LEADS_SMTP_PORT": str(self.smtp_port),
            "LEADS_SMTP_ROUTES": "dns",
            "LEADS_SANDBOX_HTTP": self.http_url,
            "LEADS_ALLOW_PRIVATE_URLS": "1",
        }
        for hook in self._env_hooks:
            settings.update(hook(self.http_url))
        return settings

    def stop(self) -> None:
        """Stop every part that started; safe to call twice."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._loop is not None:
            for part in (self._smtp, self._dns):
                if part is not None:
                    self._loop.run(part.stop())
            self._loop.close()
            self._loop = self._dns = self._smtp = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
