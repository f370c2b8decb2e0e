"""The import benchmark's own measuring: what it adds to the import it measures."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import psutil
import pytest

from benchmarks.run import PeakRss


def test_peak_rss_lists_the_process_tree_every_half_second_and_counts_a_child_started_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing the tree walks every process of the machine: at each 50 ms sample it took ~7% of a core from the
    import. A child started while it samples (a chunk worker) is still counted."""
    listed: list[float] = []
    samples: list[float] = []
    children, memory_info = psutil.Process.children, psutil.Process.memory_info

    def counted(self: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        listed.append(time.monotonic())
        return children(self, recursive=recursive)

    def sampled(self: psutil.Process) -> object:
        if self.pid == os.getpid():  # this process is read once per sample
            samples.append(time.monotonic())
        return memory_info(self)

    monkeypatch.setattr(psutil.Process, "children", counted)
    monkeypatch.setattr(psutil.Process, "memory_info", sampled)
    holding = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(30)"  # 200 MB resident while it sleeps
    with PeakRss() as rss:
        time.sleep(0.2)
        child = subprocess.Popen([sys.executable, "-c", holding])
        try:
            time.sleep(2.8)
        finally:
            child.kill()
            child.wait()
    assert 3 <= len(listed) <= 8  # every 0.5 s over ~3 s (~60 at each sample)
    # once every TREE_SAMPLES samples, however slowly a loaded machine let the samples come
    assert len(listed) == math.ceil(len(samples) / PeakRss.TREE_SAMPLES)
    assert rss.peak > psutil.Process().memory_info().rss + 150 * 1024 * 1024
