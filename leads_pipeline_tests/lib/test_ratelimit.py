"""The bucket kept in the database: processes pacing one key share one schedule and its pauses, and a process that
dies or loses its connection leaves no capacity behind. Each ``SharedTokenBucket`` here has its own connection,
as a process would; the clock is the tests' (passed to the statements), so every time is exact."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import psycopg
import pytest

from leads_pipeline.lib.ratelimit import SharedTokenBucket, bucket_key
from leads_pipeline_tests.lib.enrichment.test_pacing import FakeTime

KEY = bucket_key("gemini", "ratelimit-test-key")


class Killed(Exception):
    """The process was killed while it waited for its slot."""


def shared(database_url: str, fake: FakeTime, key: str = KEY, per_second: int = 10) -> SharedTokenBucket:
    return SharedTokenBucket(database_url, key, per_second, 1.0, burst=1.15, clock=fake.clock, sleep=fake.sleep)


def test_the_key_names_the_provider_but_not_the_credential() -> None:
    assert KEY.startswith("gemini:") and "ratelimit-test-key" not in KEY
    assert bucket_key("gemini", "another-key") != KEY


def test_processes_pacing_one_key_share_one_schedule(database_url: str) -> None:
    fake = FakeTime()
    first, second = shared(database_url, fake), shared(database_url, fake)
    sent = []
    for bucket in [first, second] * 10:
        bucket.acquire()
        sent.append(fake.now)
    # 20 calls at 10/s from two processes: 19 gaps of 0.1 s, as from one (each alone would send at 10/s)
    assert [b - a for a, b in itertools.pairwise(sent)][1:] == pytest.approx([0.1] * 18)
    assert first.acquired == second.acquired == 10


def test_keys_are_paced_apart(database_url: str) -> None:
    fake = FakeTime()
    gemini, other = shared(database_url, fake), shared(database_url, fake, key=bucket_key("gemini", "other-key"))
    gemini.acquire()
    other.acquire()
    assert fake.now == 0.0  # another API key has a limit of its own


def test_a_pause_in_one_process_holds_the_others(database_url: str) -> None:
    fake = FakeTime()
    refused, other = shared(database_url, fake), shared(database_url, fake)
    refused.acquire()
    refused.pause(2.0)
    other.acquire()
    assert fake.now == pytest.approx(2.0)


def test_a_caller_asleep_in_its_slot_when_another_process_pauses_queues_again(database_url: str) -> None:
    fake = FakeTime()
    refused = shared(database_url, fake)

    def sleep_through_a_429(seconds: float) -> None:
        if fake.now < 0.05:  # the other process got a 429 just after this one took its slot (0.1 s ahead)
            refused.pause(1.0)
        fake.sleep(seconds)

    waiting = SharedTokenBucket(database_url, KEY, 10, 1.0, burst=1.15, clock=fake.clock, sleep=sleep_through_a_429)
    waiting.acquire()
    waiting.acquire()
    assert fake.now == pytest.approx(1.0)  # not at 0.1, inside the pause: the slot was given up


def test_a_process_killed_while_waiting_leaves_only_its_slot(database_url: str) -> None:
    fake = FakeTime()

    def killed(seconds: float) -> None:
        raise Killed

    dying = SharedTokenBucket(database_url, KEY, 10, 1.0, burst=1.15, clock=fake.clock, sleep=killed)
    dying.acquire()
    with pytest.raises(Killed):
        dying.acquire()  # took the slot at 0.085 s, never used it
    dying.close()
    survivor = shared(database_url, fake)
    sent = []
    for _ in range(3):
        survivor.acquire()
        sent.append(fake.now)
    # the slot it had taken (0.085 s) is lost; the next (0.185 s: a gap on, less the tolerance) is the survivor's
    assert sent == pytest.approx([0.185, 0.285, 0.385])


def test_a_lost_connection_is_opened_again(database_url: str) -> None:
    fake = FakeTime()
    bucket = shared(database_url, fake)
    bucket.acquire()
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    bucket.acquire()
    assert fake.now == pytest.approx(0.085)  # the schedule was in the row, not in the lost session


PACING = """
import sys, threading
from leads_pipeline.lib.ratelimit import SharedTokenBucket

bucket = SharedTokenBucket(sys.argv[1], sys.argv[2], 5, 1.0, burst=1)
def work():
    while True:
        bucket.acquire()
for _ in range(4):
    threading.Thread(target=work, daemon=True).start()
print("pacing", flush=True)
threading.Event().wait()
"""
"""A run pacing the key at 5/s on four threads, until it is killed."""


def test_a_run_killed_while_its_threads_wait_holds_no_capacity(database_url: str) -> None:
    key = bucket_key("gemini", "killed-run-key")
    run = subprocess.Popen([sys.executable, "-c", PACING, database_url, key], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None and run.stdout.readline() == "pacing\n"
    time.sleep(0.5)
    run.kill()  # SIGKILL: nothing of it runs again
    run.wait()
    survivor = SharedTokenBucket(database_url, key, 5, 1.0, burst=1)
    started = time.monotonic()
    for _ in range(3):
        survivor.acquire()
    # the slots its four waiting threads had taken (0.8 s at most), then two gaps: no slot held for good
    assert time.monotonic() - started < 0.8 + 0.4 + 1.0
    survivor.close()
