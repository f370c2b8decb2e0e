"""The mail-checking setup (``mail_check.MailCheck``) as a Dagster resource, each field bound to its environment
variable. Apart from ``mail_check`` so that ``leads verify`` and ``leads find-email`` do not load Dagster."""

import os
from typing import ClassVar

import dagster as dg
from pydantic import Field

from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.mail_check import MAIL_CHECK_FIELDS, MAIL_ENV, PORT_ENV, MailCheck
from leads_pipeline.lib.clients.smtp import SmtpProber


class MailCheckResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """DNS and SMTP settings of email verification; every field has an environment variable (ENV)."""

    dns_server: str | None = Field(
        default=MailCheck.dns_server, description="host:port of the nameserver; None: resolv.conf."
    )
    smtp_probing: str = Field(
        default=MailCheck.smtp_probing, description="'on' or 'off': whether mail hosts are asked at all."
    )
    smtp_port: int = Field(default=MailCheck.smtp_port, description="Port of every mail host (25 in production).")
    smtp_routes: str = Field(
        default=MailCheck.smtp_routes,
        description="'dns' (resolve MX hosts through dns_server) or 'host=address,...' overrides.",
    )
    helo_name: str = Field(default=MailCheck.helo_name, description="The name sent in EHLO.")
    mail_from: str = Field(default=MailCheck.mail_from, description="Envelope sender of probes ('' sends <>).")
    timeout_s: float = Field(
        default=MailCheck.timeout_s, description="Seconds per DNS query and per SMTP socket operation."
    )

    ENV: ClassVar[dict[str, str]] = MAIL_ENV
    PORT_ENV: ClassVar[str] = PORT_ENV

    def check(self) -> MailCheck:
        return MailCheck(**{name: getattr(self, name) for name in MAIL_CHECK_FIELDS})

    @property
    def probing(self) -> bool:
        return self.check().probing

    def resolver(self) -> MxResolver:
        return self.check().resolver()

    def prober(self, resolver: MxResolver) -> SmtpProber | None:
        """The prober, or None when probing is off."""
        return self.check().prober(resolver)


def mail_check_from_env() -> MailCheckResource:
    """The resource bound to the environment variables that are set (resolved by Dagster at run time)."""
    fields: dict[str, object] = {f: dg.EnvVar(v) for f, v in MAIL_ENV.items() if os.environ.get(v)}
    if os.environ.get(PORT_ENV):
        fields["smtp_port"] = dg.EnvVar.int(PORT_ENV)
    return MailCheckResource(**fields)  # type: ignore[arg-type]
