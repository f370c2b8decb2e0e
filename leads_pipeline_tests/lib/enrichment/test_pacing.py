"""The pacer never lets more than its limit through in any one-second window, across threads."""

from __future__ import annotations

import threading
import time

from leads_pipeline.lib.enrichment.pacing import Pacer


def test_no_window_holds_more_calls_than_the_limit() -> None:
    pacer = Pacer(20)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            at = pacer.wait()
            with lock:
                sent.append(at)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent.sort()
    assert len(sent) == 40
    assert all(sum(1 for t in sent if start <= t < start + 1.0) <= 20 for start in sent)
    assert sent[-1] - sent[0] >= 1.0  # 40 calls at 20/s cannot all go in the first second


def test_no_limit_does_not_wait() -> None:
    pacer = Pacer(None)
    started = time.monotonic()
    for _ in range(1000):
        pacer.wait()
    assert time.monotonic() - started < 0.5
