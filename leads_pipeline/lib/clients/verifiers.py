"""Email verification providers: ZeroBounce (API v2) and NeverBounce (API v4), one verdict per address.

Both answer in their own words; ``EmailVerdict`` (``paid_verdicts``) puts them in one vocabulary so that the
pipeline can compare and combine them, and keeps the provider's answer in ``raw``. ``credits`` is what the check
cost, as each provider counts it: ZeroBounce charges one credit per validation except ``unknown`` results;
NeverBounce reports its use in ``credits_info``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, TypeVar

import requests
from pydantic import Field

from leads_pipeline.lib.clients.http import MalformedResponseError, json_body, redact, require, send
from leads_pipeline.lib.clients.http_resource import RequestsResource
from leads_pipeline.lib.clients.paid_verdicts import API_KEY_ENV, EmailVerdict, VerdictStatus, chosen_verifier
from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError

_ZEROBOUNCE_STATUS: dict[str, VerdictStatus] = {
    "valid": "valid",
    "invalid": "invalid",
    "catch-all": "catch_all",
    "unknown": "unknown",
    "spamtrap": "spamtrap",
    "abuse": "abuse",
    "do_not_mail": "do_not_mail",
}


class ZeroBounceResource(RequestsResource):
    """ZeroBounce email validation (``GET /v2/validate``); ``api_key`` comes from ``ZEROBOUNCE_API_KEY``."""

    api_key: str | None = Field(default=None, repr=False, description="ZeroBounce API key (secret).")
    base_url: str = Field(default="https://api.zerobounce.net", description="API root.")

    ENV_VAR: ClassVar[str] = API_KEY_ENV["zerobounce"]
    URL_ENV_VAR: ClassVar[str] = "ZEROBOUNCE_BASE_URL"

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def verify(self, email: str) -> EmailVerdict:
        key = require(self.api_key, provider="ZeroBounce", env_var=self.ENV_VAR)
        payload = self._get("/v2/validate", {"api_key": key, "email": email, "ip_address": ""})
        if "error" in payload:
            self._raise_api_error(str(payload["error"]))
        raw_status = payload.get("status")
        if raw_status not in _ZEROBOUNCE_STATUS:
            raise MalformedResponseError(f"ZeroBounce answered without a known status for {email}: {payload!r}")
        sub_status = str(payload.get("sub_status") or "") or None
        status = _ZEROBOUNCE_STATUS[raw_status]
        if status == "do_not_mail" and sub_status == "disposable":
            status = "disposable"
        credits = 0.0 if status == "unknown" else 1.0
        return EmailVerdict(email, status, sub_status, "zerobounce", credits, payload)

    def credits_remaining(self) -> int:
        """The account's credit balance (``GET /v2/getcredits``; ZeroBounce answers -1 for a bad key)."""
        key = require(self.api_key, provider="ZeroBounce", env_var=self.ENV_VAR)
        payload = self._get("/v2/getcredits", {"api_key": key})
        try:
            credits = int(payload["Credits"])
        except (KeyError, TypeError, ValueError):
            raise MalformedResponseError(f"ZeroBounce getcredits answered without Credits: {payload!r}") from None
        if credits < 0:
            raise ConfigurationError(f"ZeroBounce rejected the API key; check {self.ENV_VAR}")
        return credits

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        secrets = (self.api_key,)
        response = send(
            self.session(),
            "GET",
            self.base_url.rstrip("/") + path,
            provider="ZeroBounce",
            env_var=self.ENV_VAR,
            secrets=secrets,
            params=params,
        )
        payload = json_body(response, provider="ZeroBounce", secrets=secrets)
        if not isinstance(payload, dict):
            raise MalformedResponseError(f"ZeroBounce answered {path} with a non-object: {payload!r}")
        return payload

    def _raise_api_error(self, message: str) -> None:
        message = redact(message, self.api_key)
        if "api key" in message.lower() or "credits" in message.lower():
            raise ConfigurationError(
                f"ZeroBounce refused the call: {message}; check {self.ENV_VAR} and the account's credits"
            )
        raise PermanentError(f"ZeroBounce refused the call: {message}")


_NEVERBOUNCE_STATUS: dict[str, VerdictStatus] = {
    "valid": "valid",
    "invalid": "invalid",
    "disposable": "disposable",
    "catchall": "catch_all",
    "unknown": "unknown",
}
_NEVERBOUNCE_RETRYABLE = frozenset({"throttle_triggered", "temp_unavail"})


class NeverBounceResource(RequestsResource):
    """NeverBounce single verification (``GET /v4/single/check``); key: ``NEVERBOUNCE_API_KEY``.

    NeverBounce reports throttling and partial outages as HTTP 200 with ``status: throttle_triggered`` or
    ``temp_unavail``; those answers are retried like a 429.
    """

    api_key: str | None = Field(default=None, repr=False, description="NeverBounce API key (secret).")
    base_url: str = Field(default="https://api.neverbounce.com", description="API root.")

    ENV_VAR: ClassVar[str] = API_KEY_ENV["neverbounce"]
    URL_ENV_VAR: ClassVar[str] = "NEVERBOUNCE_BASE_URL"

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    def retry_when(self, response: requests.Response) -> bool:
        if super().retry_when(response):
            return True
        try:
            payload = response.json()
        except ValueError:
            return False
        return isinstance(payload, dict) and payload.get("status") in _NEVERBOUNCE_RETRYABLE

    def verify(self, email: str) -> EmailVerdict:
        key = require(self.api_key, provider="NeverBounce", env_var=self.ENV_VAR)
        secrets = (key,)
        response = send(
            self.session(),
            "GET",
            self.base_url.rstrip("/") + "/v4/single/check",
            provider="NeverBounce",
            env_var=self.ENV_VAR,
            secrets=secrets,
            params={"key": key, "email": email, "credits_info": "1"},
        )
        payload = json_body(response, provider="NeverBounce", secrets=secrets)
        if not isinstance(payload, dict):
            raise MalformedResponseError(f"NeverBounce answered with a non-object: {payload!r}")
        self._raise_for_api_status(payload)
        result = payload.get("result")
        if result not in _NEVERBOUNCE_STATUS:
            raise MalformedResponseError(f"NeverBounce answered without a known result for {email}: {payload!r}")
        info = payload.get("credits_info") or {}
        credits = float(info.get("paid_credits_used", 0) + info.get("free_credits_used", 0)) if info else 1.0
        return EmailVerdict(email, _NEVERBOUNCE_STATUS[result], None, "neverbounce", credits, payload)

    def _raise_for_api_status(self, payload: dict[str, Any]) -> None:
        status = payload.get("status")
        if status == "success":
            return
        message = redact(str(payload.get("message", "")), self.api_key)
        if status == "auth_failure":
            raise ConfigurationError(f"NeverBounce rejected the API key ({message}); check {self.ENV_VAR}")
        if status in _NEVERBOUNCE_RETRYABLE:
            raise TransientError(f"NeverBounce is busy ({status}: {message}) after {self.max_retries + 1} attempts")
        raise PermanentError(f"NeverBounce refused the call ({status}: {message})")


def verifiers_resolved_now() -> tuple[ZeroBounceResource, NeverBounceResource]:
    """The two verifiers with the keys and URLs the environment holds now, for ``leads verify``, which runs
    outside Dagster; the definitions bind the same variables as ``EnvVar``, resolved at run time. (The enrichment
    estimate, which must not load Dagster, reads the keys' variables with
    ``paid_verdicts.verifiers_configured_in_environment``.)"""
    return _resolved_now(ZeroBounceResource), _resolved_now(NeverBounceResource)


_Verifier = TypeVar("_Verifier", ZeroBounceResource, NeverBounceResource)


def _resolved_now(resource: type[_Verifier]) -> _Verifier:
    """``resource`` with the key and URL its variables hold now (an unset URL: the provider's own)."""
    base_url = os.environ.get(resource.URL_ENV_VAR) or resource.model_fields["base_url"].default
    return resource(api_key=os.environ.get(resource.ENV_VAR), base_url=base_url)


def paid_verifier(
    choice: str, zerobounce: ZeroBounceResource, neverbounce: NeverBounceResource
) -> tuple[ZeroBounceResource | NeverBounceResource | None, str | None]:
    """The paid verifier asked for (``chosen_verifier``) with its resource, or (None, None)."""
    resources: dict[str, ZeroBounceResource | NeverBounceResource] = {
        "zerobounce": zerobounce,
        "neverbounce": neverbounce,
    }
    name = chosen_verifier(choice, {n for n, r in resources.items() if r.is_configured})
    return (resources[name], name) if name else (None, None)
