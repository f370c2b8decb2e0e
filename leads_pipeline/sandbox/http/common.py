"""What every HTTP emulator shares: settings, the parsed request, the response, faults, limits, the log.

The emulators exist so that the real client libraries can be exercised over the wire against a known truth.
What makes that honest is here: latency drawn from a distribution, faults injected at configured rates (or
scripted one by one by a test), rate limits per API key, and a request log that a test or a benchmark can read
afterwards.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl
from wsgiref.util import application_uri

from leads_pipeline.lib.clients.actors import DEFAULT_ACTORS, ActorKind
from leads_pipeline.sandbox.faults import Latency, check_rates, draw_fault

Fault = Literal["429", "500", "503", "timeout", "malformed"]
"""A fault the emulator can inject: an HTTP error, an answer slower than the client's timeout, or a cut
body."""

CostUnit = Literal["usd", "credits", "tokens"]


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request (independent draws, checked in this order)."""

    rate_limited: float = 0.0
    server_error: float = 0.0
    unavailable: float = 0.0
    timeout: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        check_rates(
            "FaultRates",
            rate_limited=self.rate_limited,
            server_error=self.server_error,
            unavailable=self.unavailable,
            timeout=self.timeout,
            malformed=self.malformed,
        )

    def draw(self, rng: random.Random) -> Fault | None:
        faults: tuple[tuple[float, Fault], ...] = (
            (self.rate_limited, "429"),
            (self.server_error, "500"),
            (self.unavailable, "503"),
            (self.timeout, "timeout"),
            (self.malformed, "malformed"),
        )
        return draw_fault(faults, rng)


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per API key in any sliding window of ``per_seconds``."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class ProviderSettings:
    """How one emulated provider behaves. ``api_keys=None`` accepts any non-empty key."""

    latency: Latency = field(default_factory=Latency)
    faults: FaultRates = FaultRates()
    rate_limit: RateLimit | None = None
    api_keys: frozenset[str] | None = None

    def accepts(self, key: str | None) -> bool:
        if not key:
            return False
        return self.api_keys is None or key in self.api_keys


@dataclass(frozen=True)
class EmailLists:
    """Public lists that verifiers use to flag free, disposable and role addresses (shared/data)."""

    free_domains: frozenset[str] = frozenset()
    disposable_domains: frozenset[str] = frozenset()
    role_local_parts: frozenset[str] = frozenset()

    @classmethod
    def load(cls, directory: Path) -> EmailLists:
        """Read the three list files of ``shared/data/email_lists`` (or a copy of that folder)."""

        def lines(name: str) -> frozenset[str]:
            text = (directory / name).read_text(encoding="utf-8")
            return frozenset(
                line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
            )

        with (directory / "role_based_local_parts_mixmax.csv").open(encoding="utf-8", newline="") as handle:
            roles = frozenset(row["local_part"].strip().casefold() for row in csv.DictReader(handle))
        return cls(
            free_domains=lines("free_email_provider_domains_freemail.txt"),
            disposable_domains=lines("disposable_email_blocklist.conf"),
            role_local_parts=roles,
        )


@dataclass(frozen=True)
class EmulatorSettings:
    """Everything that shapes the emulators' behaviour besides the world.

    ``default`` applies to every provider not named in ``providers`` (keys: apify, gemini, zerobounce,
    neverbounce, twilio). ``timeout_sleep_s`` is how long a "timeout" fault stalls before answering: set it
    above the client's timeout. ``apify_actors`` maps actor ids (``user/name``) to the emulated actor;
    ``apify_run_s`` is how long an actor run stays RUNNING, so that clients exercise ``waitForFinish``
    polling.
    """

    seed: int | None = None
    default: ProviderSettings = ProviderSettings()
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    timeout_sleep_s: float = 35.0
    retry_after_s: int = 1
    email_lists: EmailLists = EmailLists()
    apify_actors: Mapping[str, ActorKind] = field(default_factory=lambda: dict(DEFAULT_ACTORS))
    apify_run_s: float = 0.0
    zerobounce_credits: int = 100_000
    neverbounce_credits: int = 100_000

    def for_provider(self, name: str) -> ProviderSettings:
        return self.providers.get(name, self.default)


@dataclass(frozen=True)
class Request:
    """One HTTP request, with the provider's mount prefix removed from ``path`` and the body decompressed."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    app_url: str = ""
    """Where the HTTP app is served (``http://127.0.0.1:PORT``), for answers that link to another emulator."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], path: str) -> Request:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        encoding = headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        app_url = application_uri(dict(environ)).rstrip("/")
        return cls(str(environ["REQUEST_METHOD"]).upper(), path, query, headers, body, app_url)

    def json(self) -> Any:
        """The body as JSON; ``None`` for an empty body. Raises ``ValueError`` on a body that is not JSON."""
        return json.loads(self.body) if self.body.strip() else None

    def params(self) -> dict[str, str]:
        """Query parameters merged with a form-encoded or JSON object body (POST endpoints accept either)."""
        merged = dict(self.query)
        content_type = self.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:
            merged.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        elif "json" in content_type and self.body.strip():
            payload = self.json()
            if isinstance(payload, dict):
                merged.update({str(k): str(v) for k, v in payload.items()})
        return merged


@dataclass
class Response:
    """What an emulator answers; ``cost`` is what the call cost the account, in ``cost_unit``."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    cost: float = 0.0
    cost_unit: CostUnit | None = None

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: Iterable[tuple[str, str]] = (),
        cost: float = 0.0,
        cost_unit: CostUnit | None = None,
    ) -> Response:
        body = json.dumps(payload).encode("utf-8")
        return cls(status, body, [("Content-Type", "application/json; charset=utf-8"), *headers], cost, cost_unit)

    def truncated(self) -> Response:
        """The same response with its body cut in half: a client must report it, not crash on it."""
        return Response(self.status, self.body[: max(1, len(self.body) // 2)], self.headers, self.cost, self.cost_unit)


class Emulator(Protocol):
    """One emulated provider mounted under ``/{name}``."""

    name: str

    def api_key(self, request: Request) -> str | None:
        """The credential the request carries (what rate limits and the log are keyed by)."""

    def handle(self, request: Request) -> Response:
        """Answer the request from the world."""

    def error(self, status: int, retry_after_s: int | None) -> Response:
        """The provider's own shape of an error (429, 500, 503) for injected faults and rate limits."""


def redact_key(key: str | None) -> str | None:
    """A key as the log shows it: enough to tell keys apart, never enough to use one."""
    if not key:
        return None
    return f"...{key[-4:]}" if len(key) > 8 else "***"


@dataclass(frozen=True)
class RequestRecord:
    provider: str
    method: str
    path: str
    status: int
    api_key: str | None
    fault: str | None
    cost: float
    cost_unit: CostUnit | None
    arrived: float
    """``time.monotonic()`` of the emulator's process when the request arrived, before its emulated latency: when
    the clients sent it, whichever process; the rate limit counts it after that latency."""


class RequestLog:
    """Every request the emulators answered, in order; safe to append to from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, provider: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records if provider is None or r.provider == provider]

    def busiest(self, provider: str, per_seconds: float) -> int:
        """The most requests to ``provider`` that arrived within any ``per_seconds`` (a sliding window, as the
        rate limits count): what all the clients together asked of it, against its ``RateLimit``."""
        arrivals = sorted(r.arrived for r in self.records(provider))
        first = 0
        most = 0
        for last, arrived in enumerate(arrivals):
            while arrived - arrivals[first] >= per_seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class RateLimiter:
    """Sliding-window limits per (provider, API key); answers how long the caller must wait, or None."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def check(self, provider: str, key: str | None, limit: RateLimit | None) -> float | None:
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault((provider, key or ""), deque())
            while window and now - window[0] >= limit.per_seconds:
                window.popleft()
            if len(window) >= limit.requests:
                return limit.per_seconds - (now - window[0])
            window.append(now)
            return None


class FaultScript:
    """Faults a test queued for a provider's next requests, served before any random draw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {}

    def push(self, provider: str, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._queues.setdefault(provider, deque()).extend(faults)

    def pop(self, provider: str) -> Fault | None:
        with self._lock:
            queue = self._queues.get(provider)
            return queue.popleft() if queue else None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


class SeededIds:
    """Random ids from the settings' seed, so that a seeded sandbox run is reproducible."""

    _ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()

    def new(self, length: int = 17) -> str:
        with self._lock:
            return "".join(self._rng.choices(self._ALPHABET, k=length))
