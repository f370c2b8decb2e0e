"""Every Gemini attempt passes the caller's bucket, and a 429 pauses it: over the wire, against the emulator.

The SDK's own retry would re-send a refused call behind the bucket's back; these tests count the attempts the
emulator saw against the tokens the bucket handed out, and check that a 429 holds every caller for Retry-After.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.enrichment.pacing import pacer
from leads_pipeline.lib.errors import TransientError
from leads_pipeline.lib.ratelimit import TokenBucket
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings, build_http_app
from leads_pipeline.sandbox.http.common import RateLimit
from leads_pipeline.sandbox.world import Company, World
from leads_pipeline_tests.lib.enrichment.test_pacing import FakeTime
from leads_pipeline_tests.support import served

ACME = Company(name="Acme Analytics", domain="acme.io", industry="Computer Software", employee_count=120)
WORLD = World(companies=(ACME,), people=())
Scripted = tuple[int, list[tuple[str, str]], dict[str, Any]]


class Recorder:
    """WSGI middleware in front of the emulators: answers scripted responses first, and notes every arrival."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.script: deque[Scripted] = deque()
        self.arrivals: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        arrived = time.monotonic()
        with self._lock:
            scripted = self.script.popleft() if self.script else None
        if scripted is not None:
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            status, headers, payload = scripted
            start_response(f"{status} Scripted", [("Content-Type", "application/json"), *headers])
            self._note(arrived, status)
            return [json.dumps(payload).encode()]
        statuses: list[int] = []

        def noting(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(int(status[:3]))
            return start_response(status, headers)

        body = list(self.app(environ, noting))
        self._note(arrived, statuses[0])
        return body

    def _note(self, arrived: float, status: int) -> None:
        with self._lock:
            self.arrivals.append((arrived, status))

    def statuses(self) -> list[int]:
        return [status for _, status in sorted(self.arrivals)]


@dataclass
class Served:
    recorder: Recorder
    url: str

    def gemini(self, **overrides: Any) -> GeminiResource:
        settings: dict[str, Any] = {
            "api_key": "gemini-pacing-key",
            "base_url": f"{self.url}/gemini",
            "timeout_s": 5.0,
            "retry_attempts": 3,
            "retry_initial_delay_s": 0.01,
            "retry_max_delay_s": 0.05,
        }
        return GeminiResource(**{**settings, **overrides})


@pytest.fixture
def serve() -> Iterator[Callable[[EmulatorSettings], Served]]:
    with contextlib.ExitStack() as servers:

        def start(settings: EmulatorSettings) -> Served:
            recorder = Recorder(build_http_app(WORLD, settings))
            return Served(recorder, servers.enter_context(served(recorder)))

        yield start


def fake_bucket(per_second: float = 10) -> tuple[TokenBucket, FakeTime]:
    fake = FakeTime()
    bucket = pacer(per_second, clock=fake.clock, sleep=fake.sleep)
    assert isinstance(bucket, TokenBucket)
    return bucket, fake


def rate_limited(retry_delay: str) -> Scripted:
    """Gemini's own 429: the wait is in a ``RetryInfo`` detail, no Retry-After header."""
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
    error = {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED", "details": [detail]}
    return 429, [], {"error": error}


def test_a_429_is_retried_through_the_bucket_after_its_retry_after(serve: Callable[..., Served]) -> None:
    served = serve(EmulatorSettings(retry_after_s=2))
    app = served.recorder.app
    assert hasattr(app, "inject")
    app.inject("gemini", "429")
    bucket, fake = fake_bucket()

    assert served.gemini().research_company("Acme Analytics", "acme.io", limiter=bucket).found

    assert served.recorder.statuses() == [429, 200]
    assert bucket.acquired == 2  # the retry took a token too: the SDK sent nothing behind the bucket's back
    assert fake.now >= 2.0  # and only after the bucket had waited out the Retry-After


def test_retry_info_is_honoured_when_there_is_no_header(serve: Callable[..., Served]) -> None:
    served = serve(EmulatorSettings())
    served.recorder.script.append(rate_limited("1.5s"))
    bucket, fake = fake_bucket()

    assert served.gemini().research_company("Acme Analytics", "acme.io", limiter=bucket).found

    assert served.recorder.statuses() == [429, 200]
    assert bucket.acquired == 2 and fake.now >= 1.5


def test_5xx_backs_off_without_pausing_the_other_callers(serve: Callable[..., Served]) -> None:
    served = serve(EmulatorSettings())
    app = served.recorder.app
    assert hasattr(app, "inject")
    app.inject("gemini", "503")
    bucket, fake = fake_bucket()

    assert served.gemini().research_company("Acme Analytics", "acme.io", limiter=bucket).found

    assert served.recorder.statuses() == [503, 200]
    assert bucket.acquired == 2 and fake.now < 0.5  # one token's wait at most: no pause for a server error


def test_429s_left_after_the_attempts_are_transient_and_every_attempt_was_paced(
    serve: Callable[..., Served],
) -> None:
    served = serve(EmulatorSettings())
    served.recorder.script.extend([rate_limited("1s")] * 3)
    bucket, _ = fake_bucket()

    with pytest.raises(TransientError, match=r"Gemini is still rate limiting \(Retry-After: 1 s; 3 attempts"):
        served.gemini().research_company("Acme Analytics", "acme.io", limiter=bucket)

    assert served.recorder.statuses() == [429, 429, 429]
    assert bucket.acquired == 3


def test_a_retry_after_longer_than_allowed_fails_at_once(serve: Callable[..., Served]) -> None:
    served = serve(EmulatorSettings())
    served.recorder.script.append((429, [("Retry-After", "120")], {"error": {"code": 429, "message": "quota"}}))
    bucket, fake = fake_bucket()

    with pytest.raises(TransientError, match="Retry-After: 120"):
        served.gemini(retry_after_max_s=60).research_company("Acme Analytics", "acme.io", limiter=bucket)

    assert served.recorder.statuses() == [429]
    assert fake.now == 0.0  # nobody is held for a wait the call will not make


def research_in_threads(gemini: GeminiResource, bucket: TokenBucket, threads: int, calls: int) -> list[bool]:
    found: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(calls):
            research = gemini.research_company("Acme Analytics", "acme.io", limiter=bucket)
            with lock:
                found.append(research.found)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return found


def test_paced_threads_stay_inside_the_providers_window(serve: Callable[..., Served]) -> None:
    """At 7/s against the emulator's 10/s, as the two-process test paces: at 8/s a fresh-clone CI run beside another
    test run (both cores taken) got a 429, a send held back behind its token landing with the next ones. Without
    the shared bucket eight threads send 16 at once."""
    served = serve(EmulatorSettings(providers={"gemini": ProviderSettings(rate_limit=RateLimit(10, 1.0))}))
    bucket = pacer(7)
    assert bucket is not None

    found = research_in_threads(served.gemini(), bucket, threads=8, calls=2)

    assert found == [True] * 16
    assert served.recorder.statuses() == [200] * 16  # no 429: eight threads, evenly spaced sends


def test_a_429_holds_every_thread_sharing_the_bucket(serve: Callable[..., Served]) -> None:
    # The bucket is set above the provider's limit (20/s against 4/s): 429s come, and each one must stop all
    # four threads for its Retry-After (>= 1 s here), not just the thread that got it.
    served = serve(EmulatorSettings(providers={"gemini": ProviderSettings(rate_limit=RateLimit(4, 1.0))}))
    bucket = pacer(20)
    assert bucket is not None

    found = research_in_threads(served.gemini(retry_attempts=6, retry_max_delay_s=2.0), bucket, threads=4, calls=3)

    assert found == [True] * 12
    arrivals = sorted(served.recorder.arrivals)
    refused = [at for at, status in arrivals if status == 429]
    assert refused and len([s for _, s in arrivals if s == 200]) == 12
    for at in refused:  # calls already on the wire may land just after; then silence until the Retry-After
        assert not [t for t, _ in arrivals if at + 0.3 < t < at + 0.95]


RUN = """
import sys
from concurrent.futures import ThreadPoolExecutor
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.enrichment.pacing import pacer
from leads_pipeline.lib.ratelimit import bucket_key

url, database_url, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
gemini = GeminiResource(api_key="gemini-pacing-key", base_url=url, retry_attempts=1)
bucket = pacer(7.0, shared=(database_url, bucket_key("gemini", "gemini-pacing-key")))
print("ready", flush=True)
sys.stdin.readline()
with ThreadPoolExecutor(4) as pool:
    found = pool.map(lambda _: gemini.research_company("Acme Analytics", "acme.io", limiter=bucket).found, range(calls))
    print(sum(found))
"""
"""A run pacing Gemini as company_profiles does: a process of its own, 4 workers, no retry of a 429. At 7/s, not
company_profiles' 9/s against the emulator's 10/s: two runs not sharing the bucket still send 14/s, and the 30%
left is room for a loaded machine holding a send back behind its token until it lands with the next ones (a CI
run at 9/s with the machine's two cores taken got a 429)."""


def test_two_runs_pacing_one_key_stay_inside_the_providers_window_together(
    serve: Callable[..., Served], database_url: str
) -> None:
    served = serve(EmulatorSettings(providers={"gemini": ProviderSettings(rate_limit=RateLimit(10, 1.0))}))
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN, f"{served.url}/gemini", database_url, "18"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:  # both started (imports take seconds) before either sends
        assert run.stdout is not None and run.stdout.readline() == "ready\n"
    for run in runs:
        assert run.stdin is not None
        run.stdin.write("go\n")
        run.stdin.flush()
    outputs = [run.communicate(timeout=60)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0] and outputs == ["18\n", "18\n"]
    assert served.recorder.statuses() == [200] * 36  # each alone sends 7/s: together they still do
    log = served.recorder.app.log  # type: ignore[attr-defined]
    assert log.busiest("gemini", 1.0) <= 10
