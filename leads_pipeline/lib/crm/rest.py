"""A small JSON-over-HTTP helper for the CRMs without an official Python client (Pipedrive, GoHighLevel).

Every call waits for the connection's token bucket, then maps the answer: 429, 5xx, timeouts, dropped
connections and cut bodies become :class:`RetryableError` (with Retry-After), a 429 saying the day's allowance is
spent (its daily-remaining header at 0) :class:`AllocationUsedUp`, 401/403 a
``ConfigurationError`` naming the variable to fix, other 4xx are returned for the connector to turn into a
per-record error. No retries here: the sync engine retries, so that a non-idempotent create is never resent
without looking it up first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from leads_pipeline.lib.clients.http import parse_retry_after, redact
from leads_pipeline.lib.crm.base import AllocationUsedUp, OutgoingRecord, PushResult, RetryableError
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.ratelimit import Pacer


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400


class JsonApi:
    def __init__(
        self,
        label: str,
        base_url: str,
        headers: dict[str, str],
        limiter: Pacer,
        *,
        timeout_s: float,
        env_var: str,
        secret: str | None,
        ca_bundle: str | None = None,
        daily_remaining_header: str | None = None,
    ) -> None:
        """``daily_remaining_header``: the answer header counting the requests left for the day, if the API has
        one (GoHighLevel's ``X-RateLimit-Daily-Remaining``)."""
        self.label = label
        self._daily_header = daily_remaining_header
        self._base = base_url.rstrip("/")
        self._limiter = limiter
        self._timeout = timeout_s
        self._env_var = env_var
        self._secret = secret
        self._session = requests.Session()
        self._session.headers.update(headers)
        if ca_bundle:
            self._session.trust_env = False
            self._session.verify = ca_bundle

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        self._limiter.acquire()
        try:
            response = self._session.request(method, self._base + path, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise RetryableError(f"could not reach {self.label}: {redact(str(exc), self._secret)}") from None
        status = response.status_code
        snippet = redact(response.text[:300], self._secret)
        if status in (401, 403):
            raise ConfigurationError(
                f"{self.label} rejected the credentials (HTTP {status}: {snippet}); check {self._env_var}"
            )
        if status == 429 and self._daily_header and response.headers.get(self._daily_header) == "0":
            raise AllocationUsedUp(
                f"{self.label}'s daily request limit is reached (HTTP 429: {snippet}, {self._daily_header}: 0); "
                "it frees as its day passes"
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"HTTP {status} from {self.label}: {snippet}", retry_after)
        try:
            body = response.json() if response.content else None
        except ValueError:
            raise RetryableError(f"{self.label} answered a body that is not JSON: {snippet!r}") from None
        return Answer(status, body)


def push_each(
    records: Sequence[OutgoingRecord], push_one: Callable[[OutgoingRecord], PushResult], workers: int
) -> list[PushResult]:
    """Push records one request each, ``workers`` at a time (the token bucket still paces them all).

    APIs without a batch endpoint are bound by latency, not by their rate limit, when records go one after
    another. A transient failure of one record is that record's result; the others go on, unless the CRM's
    allowance for the day is spent: the records not sent yet are not sent, all marked ``allowance_spent``.
    """
    spent: list[str] = []
    stop = threading.Event()

    def one(record: OutgoingRecord) -> PushResult:
        try:
            if stop.is_set():
                raise AllocationUsedUp(spent[0])  # not sent: the CRM would refuse it too
            return push_one(record)
        except RetryableError as exc:
            return PushResult(
                record.lead_id, "failed", category="transient", message=str(exc), retry_after_s=exc.retry_after_s
            )
        except AllocationUsedUp as exc:
            if not stop.is_set():
                spent.append(str(exc))
                stop.set()
            return PushResult(record.lead_id, "failed", category="transient", message=str(exc), allowance_spent=True)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(records)))) as pool:
        return list(pool.map(one, records))
