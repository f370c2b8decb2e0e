"""Email verification providers: ZeroBounce (API v2) and NeverBounce (API v4), one verdict per address.

Both answer in their own words; ``EmailVerdict`` (``paid_verdicts``) puts them in one vocabulary so that the
pipeline can compare and combine them, and keeps the provider's answer in ``raw``. ``credits`` is what the check
cost, as each provider counts it: ZeroBounce charges one credit per validation except ``unknown`` results;
NeverBounce reports its use in ``credits_info``. Plain clients over a ``RetryingSession``: ``leads verify`` and
``leads find-email`` use them without Dagster; ``verifiers`` holds the Dagster resources that make them.

Both are paced per API key (``paced``) at the rate of their ``*_REQUESTS_PER_SECOND`` variable, by default
``REQUESTS_PER_SECOND``, in the same bucket whether a stage's resource or a command sends the request. ZeroBounce
allows 80,000 ``/v2/validate`` requests in 10 seconds and blocks the key for a minute above it
(https://www.zerobounce.net/docs/api-dashboard/api-rate-limits/; older copies of the page say 50,000): 100/s stays
far inside either. NeverBounce publishes no rate for ``/v4/single/check`` (only that single checks are for one-off
use and that bulk jobs are capped, https://developers.neverbounce.com/reference/usage-guidelines) and throttles
with ``throttle_triggered``: 10/s is a conservative guess, to be raised with the account's limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import requests

from leads_pipeline.lib.clients.http import (
    TIMEOUT_S,
    MalformedResponseError,
    RetryingSession,
    RetryPolicy,
    json_body,
    redact,
    require,
    retrying_session,
    send,
)
from leads_pipeline.lib.clients.paid_verdicts import API_KEY_ENV, EmailVerdict, VerdictStatus, chosen_verifier
from leads_pipeline.lib.enrichment.pacing import configured_rate, paced_by_key
from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError
from leads_pipeline.lib.ratelimit import Pacer

ZEROBOUNCE_URL = "https://api.zerobounce.net"
NEVERBOUNCE_URL = "https://api.neverbounce.com"

_ZEROBOUNCE_STATUS: dict[str, VerdictStatus] = {
    "valid": "valid",
    "invalid": "invalid",
    "catch-all": "catch_all",
    "unknown": "unknown",
    "spamtrap": "spamtrap",
    "abuse": "abuse",
    "do_not_mail": "do_not_mail",
}


@dataclass
class _PaidVerifierClient:
    """What both paid verifiers' clients hold: the API key (a secret, kept out of their printed form), the session
    that retries for them, and whether a key is set at all."""

    api_key: str | None = field(repr=False)
    session: RetryingSession = field(repr=False)
    requests_per_second: float | None = field(default=None, kw_only=True)

    PROVIDER: ClassVar[str]
    """The provider's name in the rate buckets' keys (``bucket_key``), the stages' resources' too."""
    RATE_ENV_VAR: ClassVar[str]
    REQUESTS_PER_SECOND: ClassVar[float]
    """The default rate under one key (module docstring)."""

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key)

    @contextmanager
    def paced(self, database_url: str) -> Iterator[Pacer | None]:
        """Within the block every attempt takes a slot of the key's bucket in ``database_url``, the one the contact
        stages' resources pace the key by: ``leads verify`` sent its 16 workers' requests unpaced while a stage (or
        another command) verified under the same key. Not paced (None) without a rate or a key."""
        with paced_by_key(
            database_url,
            self.PROVIDER,
            self.api_key,
            self.requests_per_second,
            lambda bucket: setattr(self.session, "pacer", bucket),
        ) as bucket:
            yield bucket


@dataclass
class ZeroBounceClient(_PaidVerifierClient):
    """ZeroBounce email validation (``GET /v2/validate``); ``api_key`` comes from ``ZEROBOUNCE_API_KEY``."""

    base_url: str = ZEROBOUNCE_URL

    ENV_VAR: ClassVar[str] = API_KEY_ENV["zerobounce"]
    URL_ENV_VAR: ClassVar[str] = "ZEROBOUNCE_BASE_URL"
    PROVIDER: ClassVar[str] = "zerobounce"
    RATE_ENV_VAR: ClassVar[str] = "ZEROBOUNCE_REQUESTS_PER_SECOND"
    REQUESTS_PER_SECOND: ClassVar[float] = 100.0

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
            self.session,
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


def neverbounce_busy(response: requests.Response) -> bool:
    """NeverBounce reports throttling and partial outages as HTTP 200 with ``status: throttle_triggered`` or
    ``temp_unavail``: its session retries those answers like a 429."""
    return _neverbounce_status(response) in _NEVERBOUNCE_RETRYABLE


def neverbounce_throttled(response: requests.Response) -> bool:
    """NeverBounce's answer that the key is over its rate (HTTP 200, ``throttle_triggered``): its session pauses
    the key's bucket for every caller as a 429 does (``RetryingSession``), not only retries."""
    return _neverbounce_status(response) == "throttle_triggered"


def _neverbounce_status(response: requests.Response) -> object:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get("status") if isinstance(payload, dict) else None


@dataclass
class NeverBounceClient(_PaidVerifierClient):
    """NeverBounce single verification (``GET /v4/single/check``); key: ``NEVERBOUNCE_API_KEY``. Its session
    retries ``neverbounce_busy`` answers too."""

    base_url: str = NEVERBOUNCE_URL

    ENV_VAR: ClassVar[str] = API_KEY_ENV["neverbounce"]
    URL_ENV_VAR: ClassVar[str] = "NEVERBOUNCE_BASE_URL"
    PROVIDER: ClassVar[str] = "neverbounce"
    RATE_ENV_VAR: ClassVar[str] = "NEVERBOUNCE_REQUESTS_PER_SECOND"
    REQUESTS_PER_SECOND: ClassVar[float] = 10.0

    def verify(self, email: str) -> EmailVerdict:
        key = require(self.api_key, provider="NeverBounce", env_var=self.ENV_VAR)
        secrets = (key,)
        response = send(
            self.session,
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
            attempts = self.session.policy.max_retries + 1
            raise TransientError(f"NeverBounce is busy ({status}: {message}) after {attempts} attempts")
        raise PermanentError(f"NeverBounce refused the call ({status}: {message})")


def verifier_clients_of_environment() -> tuple[ZeroBounceClient, NeverBounceClient]:
    """The two verifiers with the keys, URLs and rates the environment holds now, for code that runs outside
    Dagster (``leads verify``, ``leads find-email``); the definitions bind the same variables as ``EnvVar``."""
    policy = RetryPolicy()

    def busy(response: requests.Response) -> bool:
        return response.status_code in policy.statuses or neverbounce_busy(response)

    def rate(client: type[_PaidVerifierClient]) -> float:
        return configured_rate(client.RATE_ENV_VAR) or client.REQUESTS_PER_SECOND

    return (
        ZeroBounceClient(
            os.environ.get(ZeroBounceClient.ENV_VAR),
            retrying_session(policy=policy, timeout_s=TIMEOUT_S),
            os.environ.get(ZeroBounceClient.URL_ENV_VAR) or ZEROBOUNCE_URL,
            requests_per_second=rate(ZeroBounceClient),
        ),
        NeverBounceClient(
            os.environ.get(NeverBounceClient.ENV_VAR),
            retrying_session(policy=policy, timeout_s=TIMEOUT_S, retry_when=busy, throttled=neverbounce_throttled),
            os.environ.get(NeverBounceClient.URL_ENV_VAR) or NEVERBOUNCE_URL,
            requests_per_second=rate(NeverBounceClient),
        ),
    )


class Verifier(Protocol):
    """A paid verifier: the clients here, and the Dagster resources that make them."""

    @property
    def is_configured(self) -> bool: ...

    def verify(self, email: str) -> EmailVerdict: ...


def paid_verifier(choice: str, zerobounce: Verifier, neverbounce: Verifier) -> tuple[Verifier | None, str | None]:
    """The paid verifier asked for (``chosen_verifier``), or (None, None)."""
    verifiers = {"zerobounce": zerobounce, "neverbounce": neverbounce}
    name = chosen_verifier(choice, {n for n, v in verifiers.items() if v.is_configured})
    return (verifiers[name], name) if name else (None, None)
