"""Enrichment's pacer spaces calls evenly, so no provider window overflows, and a pause holds every caller: the
same schedule from a bucket of one process and from one kept in the database (shared by processes)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from leads_pipeline.lib.enrichment.pacing import pacer
from leads_pipeline.lib.ratelimit import Pacer, SharedTokenBucket, TokenBucket, bucket_key


class FakeTime:
    """A clock that only moves when the bucket sleeps (each sleep ``late`` seconds longer than asked, as a busy
    machine wakes threads): send times are exact, the test takes no time."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.late = late
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds + self.late


Paced = Callable[..., tuple[Pacer, FakeTime]]


@pytest.fixture(params=["process", "database"])
def shared(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """None: the bucket of one process; else the database and key of a bucket all processes share."""
    if request.param == "process":
        return None
    return request.getfixturevalue("database_url"), bucket_key("gemini", "pacing-test-key")


@pytest.fixture
def paced(shared: tuple[str, str] | None) -> Paced:
    def make(per_second: float, late: float = 0.0) -> tuple[Pacer, FakeTime]:
        fake = FakeTime(late)
        bucket = pacer(per_second, shared=shared, clock=fake.clock, sleep=fake.sleep)
        assert bucket is not None
        return bucket, fake

    return make


def send_times(bucket: Pacer, fake: FakeTime, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        bucket.acquire()
        times.append(fake.now)
    return times


def test_no_rate_means_no_pacing() -> None:
    assert pacer(None) is None
    assert pacer(0) is None


def test_calls_are_evenly_spaced_so_no_one_second_window_overflows(paced: Paced) -> None:
    bucket, fake = paced(19)
    sent = send_times(bucket, fake, 100)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps[1:] == pytest.approx([1 / 19] * 98)  # no bursts: one call per token, refilled at the rate
    # a provider allowing 20 a second refuses the 21st within one second: every 21 calls span over 1.04 s
    assert min(sent[i + 20] - sent[i] for i in range(len(sent) - 20)) >= 1.04
    assert max(sum(start <= t < start + 1.0 for t in sent) for start in sent) <= 20


def test_a_thread_that_wakes_a_little_late_costs_no_rate(paced: Paced) -> None:
    bucket, fake = paced(19, late=0.005)  # every wake-up 5 ms late, as a busy interpreter hands the GIL over
    sent = send_times(bucket, fake, 191)
    assert sent[-1] - sent[0] == pytest.approx(10.0, abs=0.06)  # 190 gaps at 19/s, not at 1 / (1/19 + 5 ms)
    assert min(sent[i + 20] - sent[i] for i in range(len(sent) - 20)) >= 1.04


def test_a_long_stall_shifts_the_schedule_instead_of_bursting(paced: Paced) -> None:
    bucket, fake = paced(19)
    send_times(bucket, fake, 5)
    fake.now += 0.5  # the whole process stalled: the ten tokens it missed do not pile up to be sent at once
    sent = send_times(bucket, fake, 3)
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([0.85 / 19, 1 / 19])


def test_fractional_rates_are_kept(paced: Paced) -> None:
    bucket, fake = paced(0.5)
    sent = send_times(bucket, fake, 4)
    assert [b - a for a, b in itertools.pairwise(sent)][1:] == pytest.approx([2.0, 2.0])


def test_a_pause_holds_the_next_call_for_the_whole_retry_after(paced: Paced) -> None:
    bucket, fake = paced(10)
    bucket.acquire()
    bucket.pause(2.0)
    bucket.acquire()
    assert fake.now >= 2.0
    sent = send_times(bucket, fake, 3)
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([0.1, 0.1])  # no burst after it


def test_threads_share_one_schedule(shared: tuple[str, str] | None) -> None:
    bucket = pacer(40, shared=shared)
    assert isinstance(bucket, TokenBucket | SharedTokenBucket)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            bucket.acquire()
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 40 == bucket.acquired
    # 40 calls at 40/s take 39 gaps of 25 ms, whoever sends them (counted from the start: a thread noting its
    # first send late, behind the others, would make the sends look closer than the bucket let them go)
    assert max(sent) - started >= 39 / 40 * 0.95
