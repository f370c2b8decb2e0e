"""Twilio Lookup v2 line-type intelligence: is a phone number valid, and is it mobile, landline, VoIP...?

phonenumbers cannot tell US mobiles from landlines (FIXED_LINE_OR_MOBILE) and knows no carriers; Twilio's
``line_type_intelligence`` package can. Lookup v2 answers an invalid number with HTTP 200 and ``valid:
false``; a 404 (what v1 answered for invalid numbers) now means a wrong URL and is an error, not an invalid
number. Twilio does not report the price of a lookup, so ``cost_usd`` is the configured per-lookup price.

Twilio publishes no request rate for Lookup v2: its REST API refuses an account's requests beyond a concurrency
limit with 429 / error 20429 (https://www.twilio.com/docs/api/errors/20429), and a Lookup package's own limit
with error 60616 (https://www.twilio.com/docs/api/errors/60616), neither with a number. Requests are paced per
account SID at a conservative 10/s by default (``requests_per_second``), to be raised with the account's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import Field

from leads_pipeline.lib.clients.http import MalformedResponseError, json_body, require, send
from leads_pipeline.lib.clients.http_resource import RequestsResource


@dataclass(frozen=True)
class LineTypeResult:
    phone_number: str
    valid: bool
    line_type: str | None  # mobile, landline, fixedVoip, nonFixedVoip, tollFree, ... as Twilio names them
    carrier_name: str | None
    mobile_country_code: str | None
    mobile_network_code: str | None
    country_code: str | None
    calling_country_code: str | None
    national_format: str | None
    validation_errors: tuple[str, ...]
    error_code: int | None  # Twilio's per-package error (e.g. 60601), the lookup itself succeeded
    cost_usd: float
    raw: dict[str, Any]


class TwilioLookupResource(RequestsResource):
    """Twilio Lookup v2 with HTTP basic auth: ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN``."""

    account_sid: str | None = Field(default=None, repr=False, description="Twilio account SID (or API key SID).")
    auth_token: str | None = Field(default=None, repr=False, description="Twilio auth token (secret).")
    base_url: str = Field(default="https://lookups.twilio.com", description="Lookup API root.")
    price_usd_per_lookup: float = Field(default=0.008, description="What one line-type lookup costs the account.")
    requests_per_second: float | None = Field(
        default=10.0, description="Most lookups a second under this account, from every run at once (none published)."
    )

    PROVIDER: ClassVar[str] = "twilio"
    RATE_ENV_VAR: ClassVar[str] = "TWILIO_REQUESTS_PER_SECOND"
    SID_ENV_VAR: ClassVar[str] = "TWILIO_ACCOUNT_SID"
    TOKEN_ENV_VAR: ClassVar[str] = "TWILIO_AUTH_TOKEN"
    URL_ENV_VAR: ClassVar[str] = "TWILIO_LOOKUP_BASE_URL"

    @property
    def is_configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    def credential(self) -> str | None:
        """Twilio counts an account's requests: the SID (an API key SID is its own key)."""
        return self.account_sid

    def lookup(self, e164: str) -> LineTypeResult:
        """Validate ``e164`` and fetch its line type (one billed lookup)."""
        sid = require(self.account_sid, provider="Twilio Lookup", env_var=self.SID_ENV_VAR)
        token = require(self.auth_token, provider="Twilio Lookup", env_var=self.TOKEN_ENV_VAR)
        secrets = (token,)
        url = f"{self.base_url.rstrip('/')}/v2/PhoneNumbers/{quote(e164, safe='')}"
        response = send(
            self.session(),
            "GET",
            url,
            provider="Twilio Lookup",
            env_var=f"{self.SID_ENV_VAR} and {self.TOKEN_ENV_VAR}",
            secrets=secrets,
            params={"Fields": "line_type_intelligence"},
            auth=(sid, token),
        )
        payload = json_body(response, provider="Twilio Lookup", secrets=secrets)
        if not isinstance(payload, dict):
            raise MalformedResponseError(f"Twilio Lookup answered with a non-object: {payload!r}")
        if "valid" not in payload:
            raise MalformedResponseError(f"Twilio Lookup answered without 'valid' for {e164}: {payload!r}")
        intelligence = payload.get("line_type_intelligence") or {}
        if not isinstance(intelligence, dict):
            raise MalformedResponseError(f"Twilio Lookup answered a non-object line_type_intelligence: {payload!r}")
        return LineTypeResult(
            phone_number=str(payload.get("phone_number") or e164),
            valid=bool(payload["valid"]),
            line_type=intelligence.get("type"),
            carrier_name=intelligence.get("carrier_name"),
            mobile_country_code=intelligence.get("mobile_country_code"),
            mobile_network_code=intelligence.get("mobile_network_code"),
            country_code=payload.get("country_code"),
            calling_country_code=payload.get("calling_country_code"),
            national_format=payload.get("national_format"),
            validation_errors=tuple(payload.get("validation_errors") or ()),
            error_code=intelligence.get("error_code"),
            cost_usd=self.price_usd_per_lookup if intelligence else 0.0,
            raw=payload,
        )
