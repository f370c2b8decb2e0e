"""The WSGI application that mounts every HTTP emulator under its own path prefix.

One app (and so one port) serves all providers: ``/apify`` (with ``/licdn``, the photos its profiles link
to), ``/gemini``, ``/zerobounce``, ``/neverbounce``, ``/twilio`` and the CRMs ``/hubspot``, ``/salesforce``
(simple-salesforce speaks only https: see ``tls.py``), ``/pipedrive`` and ``/gohighlevel``. Around each
emulator it applies what the settings ask for, in the order a real service would: latency, then the per-key
rate limit, then faults (scripted first, then random), then the answer; and it logs every request.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from leads_pipeline.sandbox.http.apify import ApifyEmulator
from leads_pipeline.sandbox.http.common import (
    Emulator,
    EmulatorSettings,
    Fault,
    FaultScript,
    RateLimiter,
    Request,
    RequestLog,
    RequestRecord,
    Response,
    SeededIds,
    redact_key,
)
from leads_pipeline.sandbox.http.gemini import GeminiEmulator
from leads_pipeline.sandbox.http.gohighlevel import GoHighLevelEmulator
from leads_pipeline.sandbox.http.hubspot import HubSpotEmulator
from leads_pipeline.sandbox.http.licdn import LinkedInMediaEmulator
from leads_pipeline.sandbox.http.pipedrive import PipedriveEmulator
from leads_pipeline.sandbox.http.salesforce import SalesforceEmulator
from leads_pipeline.sandbox.http.twilio import TwilioEmulator
from leads_pipeline.sandbox.http.verifiers import NeverBounceEmulator, ZeroBounceEmulator
from leads_pipeline.sandbox.world import World

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class HttpEmulator:
    """A WSGI callable serving all emulators; ``log`` and ``inject`` drive and observe it in tests."""

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.log = RequestLog()
        self._rng = random.Random(settings.seed)
        self._rng_lock = threading.Lock()
        self._limiter = RateLimiter()
        self._script = FaultScript()
        ids = SeededIds(random.Random(settings.seed))
        emulators: list[Emulator] = [
            ApifyEmulator(world, settings, ids),
            LinkedInMediaEmulator(world, settings),
            GeminiEmulator(world, settings, ids),
            ZeroBounceEmulator(world, settings),
            NeverBounceEmulator(world, settings),
            TwilioEmulator(world, settings),
            HubSpotEmulator(world, settings),
            SalesforceEmulator(world, settings, ids),
            PipedriveEmulator(world, settings),
            GoHighLevelEmulator(world, settings, ids),
        ]
        self._emulators = {e.name: e for e in emulators}

    def inject(self, provider: str, *faults: Fault) -> None:
        """Serve these faults, in order, to the provider's next requests (whatever the random rates say)."""
        if provider not in self._emulators:
            raise ValueError(f"no emulator named {provider!r}; expected one of {sorted(self._emulators)}")
        self._script.push(provider, faults)

    def emulator(self, name: str) -> Emulator:
        """The emulator mounted at ``/{name}`` (tests reach the CRM emulators' records through it)."""
        if name not in self._emulators:
            raise ValueError(f"no emulator named {name!r}; expected one of {sorted(self._emulators)}")
        return self._emulators[name]

    def reset(self) -> None:
        """Forget queued faults and logged requests (world state such as credits and runs is kept)."""
        self._script.clear()
        self.log.clear()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        arrived = time.monotonic()
        prefix, _, rest = str(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
        emulator = self._emulators.get(prefix)
        if emulator is None:
            payload = {"error": f"no emulator is mounted at /{prefix}; mounted: {sorted(self._emulators)}"}
            return self._send(start_response, Response.json(404, payload))
        try:
            request = Request.from_environ(environ, "/" + rest)
        except (OSError, EOFError, zlib.error) as exc:  # a Content-Encoding the body does not match
            return self._send(start_response, Response.json(400, {"error": f"unreadable request body: {exc}"}))
        key = emulator.api_key(request)
        response, fault = self._answer(emulator, request, key)
        self.log.append(
            RequestRecord(
                provider=emulator.name,
                method=request.method,
                path=request.path,
                status=response.status,
                api_key=redact_key(key),
                fault=fault,
                cost=response.cost,
                cost_unit=response.cost_unit,
                arrived=arrived,
            )
        )
        return self._send(start_response, response)

    def _answer(self, emulator: Emulator, request: Request, key: str | None) -> tuple[Response, str | None]:
        provider = self.settings.for_provider(emulator.name)
        with self._rng_lock:
            delay = provider.latency.sample(self._rng)
            drawn = provider.faults.draw(self._rng)
        if delay:
            time.sleep(delay)
        wait = self._limiter.check(emulator.name, key, provider.rate_limit)
        if wait is not None:
            return emulator.error(429, max(1, round(wait))), "rate_limit"
        fault = self._script.pop(emulator.name) or drawn
        if fault in ("429", "500", "503"):
            retry_after = self.settings.retry_after_s if fault == "429" else None
            return emulator.error(int(fault), retry_after), fault
        if fault == "timeout":
            time.sleep(self.settings.timeout_sleep_s)
        response = self._handle(emulator, request)
        return (response.truncated() if fault == "malformed" else response), fault

    @staticmethod
    def _handle(emulator: Emulator, request: Request) -> Response:
        """Run the emulator; a bug in it becomes a 500 whose body says so, instead of a dropped connection."""
        try:
            return emulator.handle(request)
        except Exception:
            return Response.json(500, {"error": {"message": "emulator bug", "trace": traceback.format_exc()}})

    @staticmethod
    def _send(start_response: StartResponse, response: Response) -> list[bytes]:
        reason = HTTPStatus(response.status).phrase
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {reason}", headers)
        return [response.body]


def build_http_app(world: World, settings: EmulatorSettings | None = None) -> HttpEmulator:
    """The WSGI app serving every HTTP emulator from ``world``."""
    return HttpEmulator(world, settings or EmulatorSettings())
