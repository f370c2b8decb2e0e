"""The mail-checking setup as one resource: which nameserver answers MX queries and how mail hosts are probed.

Nothing here is secret, but everything is environment-specific: the sandbox's DNS listens on a high port and
its mail hosts exist only in its own DNS (``LEADS_SMTP_ROUTES=dns``), and port 25 is blocked in most clouds
(``LEADS_SMTP_PROBING=off``: the paid verifier or MX-only checks answer instead). In production the probing
machine's public host name goes in ``LEADS_SMTP_HELO`` (many hosts refuse a HELO that does not match its PTR).
"""

from __future__ import annotations

import os
from typing import ClassVar

import dagster as dg
from pydantic import Field

from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.smtp import PROBING_DEFAULT, PROBING_ENV, SmtpProber, probing_on
from leads_pipeline.lib.errors import ConfigurationError


class MailCheckResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """DNS and SMTP settings of email verification; every field has an environment variable (ENV)."""

    dns_server: str | None = Field(default=None, description="host:port of the nameserver; None: resolv.conf.")
    smtp_probing: str = Field(
        default=PROBING_DEFAULT, description="'on' or 'off': whether mail hosts are asked at all."
    )
    smtp_port: int = Field(default=25, description="Port of every mail host (25 in production).")
    smtp_routes: str = Field(
        default="", description="'dns' (resolve MX hosts through dns_server) or 'host=address,...' overrides."
    )
    helo_name: str = Field(default="localhost", description="The name sent in EHLO.")
    mail_from: str = Field(default="", description="Envelope sender of probes ('' sends <>).")
    timeout_s: float = Field(default=10.0, description="Seconds per DNS query and per SMTP socket operation.")

    ENV: ClassVar[dict[str, str]] = {
        "dns_server": "LEADS_DNS_SERVER",
        "smtp_probing": PROBING_ENV,
        "smtp_routes": "LEADS_SMTP_ROUTES",
        "helo_name": "LEADS_SMTP_HELO",
        "mail_from": "LEADS_SMTP_FROM",
    }
    PORT_ENV: ClassVar[str] = "LEADS_SMTP_PORT"

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


def mail_check_resolved_now() -> MailCheckResource:
    """The resource with the values the environment holds now, for ``leads verify``, which runs outside Dagster
    and so cannot have the ``EnvVar`` fields of ``mail_check_from_env`` resolved (Dagster does, at run time). (The
    enrichment estimate, which must not load Dagster, reads the probing setting with ``smtp.probing_on``.)"""
    fields: dict[str, object] = {f: os.environ[v] for f, v in MailCheckResource.ENV.items() if os.environ.get(v)}
    if os.environ.get(MailCheckResource.PORT_ENV):
        fields["smtp_port"] = int(os.environ[MailCheckResource.PORT_ENV])
    return MailCheckResource(**fields)  # type: ignore[arg-type]


def mail_check_from_env() -> MailCheckResource:
    """The resource bound to the environment variables that are set (resolved by Dagster at run time)."""
    fields: dict[str, object] = {f: dg.EnvVar(v) for f, v in MailCheckResource.ENV.items() if os.environ.get(v)}
    if os.environ.get(MailCheckResource.PORT_ENV):
        fields["smtp_port"] = dg.EnvVar.int(MailCheckResource.PORT_ENV)
    return MailCheckResource(**fields)  # type: ignore[arg-type]
