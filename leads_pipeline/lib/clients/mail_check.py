"""The mail-checking setup: which nameserver answers MX queries and how mail hosts are probed.

Nothing here is secret, but everything is environment-specific: the sandbox's DNS listens on a high port and
its mail hosts exist only in its own DNS (``LEADS_SMTP_ROUTES=dns``), and port 25 is blocked in most clouds
(``LEADS_SMTP_PROBING=off``: the paid verifier or MX-only checks answer instead). In production the probing
machine's public host name goes in ``LEADS_SMTP_HELO`` (many hosts refuse a HELO that does not match its PTR).
Plain: ``leads verify`` and ``leads find-email`` use it without Dagster; ``mail.MailCheckResource`` is the
Dagster resource of the same settings.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.smtp import PROBING_DEFAULT, PROBING_ENV, SmtpProber, probing_on
from leads_pipeline.lib.errors import ConfigurationError

MAIL_ENV: dict[str, str] = {
    "dns_server": "LEADS_DNS_SERVER",
    "smtp_probing": PROBING_ENV,
    "smtp_routes": "LEADS_SMTP_ROUTES",
    "helo_name": "LEADS_SMTP_HELO",
    "mail_from": "LEADS_SMTP_FROM",
}
"""The text settings and their environment variables (the port is ``PORT_ENV``, a number)."""
PORT_ENV = "LEADS_SMTP_PORT"


@dataclass(frozen=True)
class MailCheck:
    """DNS and SMTP settings of email verification (the fields' meanings: ``mail.MailCheckResource``)."""

    dns_server: str | None = None
    smtp_probing: str = PROBING_DEFAULT
    smtp_port: int = 25
    smtp_routes: str = ""
    helo_name: str = "localhost"
    mail_from: str = ""
    timeout_s: float = 10.0

    @property
    def probing(self) -> bool:
        return probing_on(self.smtp_probing)

    def resolver(self) -> MxResolver:
        return MxResolver(self.dns_server or None, timeout=self.timeout_s)

    def prober(self, resolver: MxResolver) -> SmtpProber | None:
        """The prober, or None when probing is off."""
        if not self.probing:
            return None
        routes: dict[str, str] = {}
        resolve = None
        for item in filter(None, (part.strip() for part in self.smtp_routes.split(","))):
            if item == "dns":
                resolve = resolver.resolve_address
                continue
            host, sep, address = item.partition("=")
            if not sep or not host.strip() or not address.strip():
                raise ConfigurationError(f"LEADS_SMTP_ROUTES: expected 'dns' or 'host=address' items, found {item!r}")
            routes[host.strip()] = address.strip()
        return SmtpProber(
            helo_name=self.helo_name,
            mail_from=self.mail_from,
            port=self.smtp_port,
            timeout=self.timeout_s,
            routes=routes,
            resolve=resolve,
        )


MAIL_CHECK_FIELDS = tuple(f.name for f in dataclasses.fields(MailCheck))


def mail_check_of_environment() -> MailCheck:
    """The settings the environment holds now, for code that runs outside Dagster (``leads verify`` and
    ``leads find-email``), which cannot read the ``EnvVar`` fields of ``mail.mail_check_from_env``."""
    fields: dict[str, Any] = {f: os.environ[v] for f, v in MAIL_ENV.items() if os.environ.get(v)}
    if os.environ.get(PORT_ENV):
        fields["smtp_port"] = int(os.environ[PORT_ENV])
    return MailCheck(**fields)
