"""Plumbing shared by the provider clients built on ``requests``: retries, error mapping and secret redaction.

Why not urllib3's ``Retry``: providers signal throttling in ways it cannot see (NeverBounce answers HTTP 200
with ``status: throttle_triggered``), and every failure must end as a ``TransientError`` or ``PermanentError``
whose message names the provider and the fix but never a key. Exceptions from ``requests`` carry the full URL,
query string and all, so they are re-raised ``from None`` with a redacted message.

The Dagster resource the clients derive from is in ``http_resource``: the CRM clients and the contact stages
use this module without loading Dagster.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests

from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError
from leads_pipeline.lib.wording import plain_number

if TYPE_CHECKING:  # the shared bucket loads psycopg, which a client without pacing does not need
    from leads_pipeline.lib.ratelimit import Pacer

MASK = "***"

_SECRET_PARAM = (
    r"(?:api[_-]?key|apikey|key|(?:api|access|auth|refresh)?[_-]?token|(?:client)?[_-]?secret|password|signature|sig)"
)
_QUERY_SECRET = re.compile(rf"(?i)([?&;]{_SECRET_PARAM}=)[^&#\s'\"]+")
_FIELD_SECRET = re.compile(rf"(?i)(['\"]{_SECRET_PARAM}['\"]\s*:\s*['\"])[^'\"]+")
_HEADER_SECRET = re.compile(r"(?i)\b(authorization|x-goog-api-key|x-api-key)(['\"]?\s*[:=]\s*['\"]?)[^'\",}\r\n]+")
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_USERINFO_SECRET = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without credentials: the given secret values, key-like query parameters and fields
    (``api_key=``, ``key=``, ``token=``, ``api_token=``, ``client_secret=``...), ``Authorization``/
    ``x-goog-api-key`` headers, bearer/basic tokens and the password of a URL's ``user:password@``.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
    text = _FIELD_SECRET.sub(rf"\1{MASK}", text)
    text = _HEADER_SECRET.sub(rf"\1\2{MASK}", text)
    text = _USERINFO_SECRET.sub(rf"\1{MASK}@", text)
    return _SCHEME_SECRET.sub(rf"\1 {MASK}", text)


class RedactingFilter(logging.Filter):
    """Takes credentials out of a library's log records: urllib3 logs every request line at DEBUG, query string
    and all, and ZeroBounce and NeverBounce take their key in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(RedactingFilter())


class MalformedResponseError(TransientError):
    """The provider answered, but not with what its API documents (cut JSON, missing fields).

    Transient because a truncated body usually is; if it persists, the provider's API has changed.
    """


def require(value: str | None, *, provider: str, env_var: str) -> str:
    """``value`` if set; else an error naming the environment variable that configures the provider."""
    if not value:
        raise ConfigurationError(f"{provider} is not configured: set the {env_var} environment variable to use it")
    return value


def body_snippet(response: requests.Response, *secrets: str | None, limit: int = 200) -> str:
    text = response.text
    return redact(text[:limit] + ("..." if len(text) > limit else ""), *secrets)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


TIMEOUT_S = 30.0
"""Seconds an attempt may take (``RequestsResource.timeout_s``, the plain verifier clients' sessions)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a ``Retry-After`` hint wins, unless it asks for too long."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def delay(self, retry: int, retry_after: str | None = None) -> float | None:
        """Seconds before retry ``retry`` (0-based); None when the server asks for longer than we wait."""
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2**retry)
        hinted = parse_retry_after(retry_after)
        if hinted is None:
            return random.uniform(backoff / 2, backoff)
        if hinted > self.retry_after_max_s:
            return None
        return hinted + random.uniform(0, self.backoff_base_s)


class RetryingSession(requests.Session):
    """A ``requests.Session`` whose every request retries timeouts, connection errors and retryable answers.

    ``retry_when`` decides which answers are retryable (default: the policy's statuses). Each attempt waits at
    most ``timeout_s`` unless the call passes its own ``timeout``. Any method is retried: use it for
    idempotent calls (the provider calls here are all lookups).

    ``pacer`` (set by ``RequestsResource.paced``) spaces the attempts to the provider's rate: each one, retries
    too, takes a slot first, and a 429's Retry-After pauses the bucket for every caller sharing the key, not
    only the one refused. Without it the session only retries, and 16 workers verifying through ZeroBounce
    against a 10/s limit sent 26 calls in one second, 26 of 56 refused.

    ``throttled`` names the answers that refuse the key for its rate in a body of their own (NeverBounce's HTTP
    200 ``throttle_triggered``): they carry no Retry-After, so the bucket is paused for the wait before this
    caller's retry, and every caller sharing the key waits it out too, as after a 429. Retried without a pause,
    the other workers kept sending into the throttle, each to be refused and back off on its own.
    """

    pacer: Pacer | None = None

    def __init__(
        self,
        policy: RetryPolicy,
        timeout_s: float,
        retry_when: Callable[[requests.Response], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        throttled: Callable[[requests.Response], bool] | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.timeout_s = timeout_s
        self._retry_when = retry_when or (lambda response: response.status_code in policy.statuses)
        self._throttled = throttled
        self._sleep = sleep

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout_s)
        retry = 0
        while True:
            if self.pacer is not None:
                self.pacer.acquire()
            try:
                response = super().request(method, url, *args, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if retry >= self.policy.max_retries:
                    raise
                self._sleep(self.policy.delay(retry) or 0.0)
                retry += 1
                continue
            if self.pacer is not None and response.status_code == 429:
                hinted = parse_retry_after(response.headers.get("Retry-After"))
                if hinted:  # the key is refused for everyone: hold them all (as long as any caller would wait)
                    self.pacer.pause(min(hinted, self.policy.retry_after_max_s))
            if retry >= self.policy.max_retries or not self._retry_when(response):
                return response
            delay = self.policy.delay(retry, response.headers.get("Retry-After"))
            if delay is None:
                return response
            if self.pacer is not None and self._throttled is not None and self._throttled(response):
                self.pacer.pause(delay)  # the key is refused for everyone, as a 429 says with its Retry-After
            response.close()
            self._sleep(delay)
            retry += 1


def retrying_session(
    *,
    policy: RetryPolicy,
    timeout_s: float,
    retry_when: Callable[[requests.Response], bool] | None = None,
    throttled: Callable[[requests.Response], bool] | None = None,
    trust_env: bool = True,
    ca_bundle: str | None = None,
) -> RetryingSession:
    """A configured ``RetryingSession``.

    ``ca_bundle`` (a PEM file, e.g. the sandbox CA) turns ``trust_env`` off: with it on,
    ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` from the environment override ``session.verify``
    (PROVIDERS.md, General).
    """
    session = RetryingSession(policy, timeout_s, retry_when, throttled=throttled)
    session.trust_env = trust_env and ca_bundle is None
    if ca_bundle is not None:
        session.verify = ca_bundle
    session.headers["User-Agent"] = f"leads-pipeline {requests.utils.default_user_agent()}"
    return session


def send(
    session: RetryingSession,
    method: str,
    url: str,
    *,
    provider: str,
    env_var: str,
    secrets: tuple[str | None, ...],
    **kwargs: Any,
) -> requests.Response:
    """Send through ``session`` and turn every failure into a project error with a redacted message.

    Answers with a status below 400 are returned; 401/403 mean bad credentials
    (``ConfigurationError`` naming ``env_var``), 429 and 5xx left after the retries are transient, other 4xx
    are permanent.
    """
    attempts = session.policy.max_retries + 1
    try:
        response = session.request(method, url, **kwargs)
    except requests.Timeout as exc:
        message = f"{provider} did not answer within {plain_number(kwargs.get('timeout', session.timeout_s))} s"
        raise TransientError(f"{message} ({attempts} attempts): {redact(str(exc), *secrets)}") from None
    except requests.ConnectionError as exc:
        message = f"could not connect to {provider} ({attempts} attempts)"
        raise TransientError(f"{message}: {redact(str(exc), *secrets)}") from None
    except requests.RequestException as exc:
        raise PermanentError(f"{provider} request failed: {redact(str(exc), *secrets)}") from None
    status = response.status_code
    if status < 400:
        return response
    detail = f"HTTP {status} from {provider}: {body_snippet(response, *secrets)}"
    if status in (401, 403):
        raise ConfigurationError(f"{provider} rejected the credentials ({detail}); check {env_var}")
    if status == 429:
        hint = response.headers.get("Retry-After")
        raise TransientError(f"{provider} is rate limiting (after {attempts} attempts, Retry-After: {hint}): {detail}")
    if status >= 500:
        raise TransientError(f"{provider} failed on its side (after {attempts} attempts): {detail}")
    raise PermanentError(f"{provider} refused the request: {detail}")


def json_body(response: requests.Response, *, provider: str, secrets: tuple[str | None, ...]) -> Any:
    """The JSON body, or a ``MalformedResponseError`` that shows (redacted) what came instead."""
    try:
        return response.json()
    except ValueError:
        snippet = body_snippet(response, *secrets)
        raise MalformedResponseError(
            f"{provider} answered HTTP {response.status_code} with a body that is not valid JSON: {snippet!r}"
        ) from None
