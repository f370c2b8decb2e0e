"""The memory and cores a container gives: control group files written as the kernel shows them, in a folder
standing for /sys/fs/cgroup, and the real CPU affinity of a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from leads_pipeline.lib import limits, runtime, workers
from leads_pipeline_tests.paths import DEMO_FILE

GB = 1024**3
V1_UNLIMITED = "9223372036854771712"  # memory.limit_in_bytes of a group without a limit


def _files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{text}\n")


def _membership(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "cgroup"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_a_cgroup_v1_memory_limit_of_the_group_or_one_above_it_is_the_memory(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    _files(
        root,
        {
            "memory/memory.limit_in_bytes": V1_UNLIMITED,
            "memory/ci/memory.limit_in_bytes": str(3 * GB),
            "memory/ci/job/memory.limit_in_bytes": str(2 * GB),
            "memory/ci/other/memory.limit_in_bytes": str(GB),  # a sibling's limit is not ours
            "cpu,cpuacct/ci/cpu.cfs_quota_us": "-1",
        },
    )
    own = _membership(tmp_path, "9:name=systemd:/ci/job", "4:memory:/ci/job", "2:cpu,cpuacct:/ci/job", "0::/ci/job")
    assert limits.memory_bytes(root, own) == 2 * GB
    above = _membership(tmp_path, "4:memory:/ci/job/step")  # a group without a limit of its own
    (root / "memory/ci/job/step").mkdir()
    (root / "memory/ci/job/memory.limit_in_bytes").write_text(V1_UNLIMITED)
    assert limits.memory_bytes(root, above) == 3 * GB


def test_a_container_whose_group_is_mounted_as_the_root_reads_the_root(tmp_path: Path) -> None:
    """cgroup v1 Docker without a cgroup namespace: /proc/self/cgroup names the host's path of the group."""
    root = tmp_path / "fs"
    _files(root, {"memory/memory.limit_in_bytes": str(GB + GB // 2)})
    assert limits.memory_bytes(root, _membership(tmp_path, "4:memory:/docker/0123abcd")) == GB + GB // 2


def test_a_cgroup_v2_memory_max_holds_and_max_is_no_limit(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    _files(
        root,
        {
            "cgroup.controllers": "cpuset cpu io memory pids",
            "kubepods/memory.max": str(3 * GB),
            "kubepods/pod1/memory.max": "max",
            "kubepods/pod1/c1/memory.max": "max",
        },
    )
    assert limits.memory_bytes(root, _membership(tmp_path, "0::/kubepods/pod1/c1")) == 3 * GB
    (root / "kubepods/memory.max").write_text("max\n")
    machine = psutil.virtual_memory().total
    assert limits.memory_bytes(root, _membership(tmp_path, "0::/kubepods/pod1/c1")) == machine
    assert limits.memory_bytes(root, tmp_path / "no-such-file") == machine  # not Linux, or no /proc
    _files(root, {"memory.max": str(64 * 1024**4)})  # a limit above the machine's memory
    assert limits.memory_bytes(root, _membership(tmp_path, "0::/")) == machine


def test_a_cpu_quota_rounds_up_and_never_exceeds_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    v1 = tmp_path / "v1"
    _files(v1, {"cpu,cpuacct/job/cpu.cfs_quota_us": "50000", "cpu,cpuacct/job/cpu.cfs_period_us": "100000"})
    assert limits.cpu_count(v1, _membership(tmp_path, "2:cpu,cpuacct:/job", "4:memory:/job")) == 1
    (v1 / "cpu,cpuacct/job/cpu.cfs_quota_us").write_text("-1\n")
    assert limits.cpu_count(v1, _membership(tmp_path, "2:cpu,cpuacct:/job")) == 4
    v2 = tmp_path / "v2"
    _files(v2, {"cgroup.controllers": "cpu memory", "job/cpu.max": "150000 100000", "cpu.max": "max 100000"})
    assert limits.cpu_count(v2, _membership(tmp_path, "0::/job")) == 2
    (v2 / "job/cpu.max").write_text("800000 100000\n")
    assert limits.cpu_count(v2, _membership(tmp_path, "0::/job")) == 4
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert limits.cpu_count(v2, _membership(tmp_path, "0::/job")) == 3


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_process_pinned_to_one_core_counts_one() -> None:
    """As ``taskset -c 0`` or ``docker --cpuset-cpus 0`` runs it: os.cpu_count() still counts the machine's."""
    probe = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
    probe += "from leads_pipeline.lib.limits import cpu_count; print(cpu_count())"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "1"


def test_the_embedded_server_and_the_chunk_workers_take_the_containers_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "memory_bytes", lambda: 2 * GB)
    assert runtime._shared_buffers() == "256MB"  # an eighth of the limit; of a 24 GB host: 2 GB, the whole limit
    monkeypatch.setattr(workers, "memory_bytes", lambda: 24 * GB)
    monkeypatch.setattr(workers, "cpu_count", lambda: 4)
    assert workers.worker_count(0, 1, DEMO_FILE) == 2  # (a file of more than a chunk's short rows)
    monkeypatch.setattr(workers, "cpu_count", lambda: 1)
    assert workers.worker_count(0, 1, DEMO_FILE) == 1
    monkeypatch.setattr(workers, "cpu_count", lambda: 2)
    monkeypatch.setattr(workers, "memory_bytes", lambda: GB + GB // 2)
    assert workers.worker_count(0, 1, DEMO_FILE) == 1  # two workers' ~600 MB took a 1M-row import over 1.5 GB
    assert workers.worker_count(2, 1, DEMO_FILE) == 2  # asked for
