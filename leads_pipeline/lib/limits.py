"""The memory and cores this process may use, as a container (Docker, a CI runner, a Kubernetes pod) limits them.

psutil and ``os.cpu_count()`` read the machine's: in a 2 GB container on a 24 GB host they answer 24 GB, and the
embedded server took 2 GB of shared buffers (an eighth of the machine's memory, at most 2 GB), the whole limit: a
1M-row import had its server backends killed by the kernel's OOM killer three times and failed with "the database
went away". The limits are the control group's (``memory.max`` and ``cpu.max`` in cgroup v2,
``memory.limit_in_bytes`` and ``cpu.cfs_quota_us`` in cgroup v1) and the CPU affinity (``taskset``, ``docker
--cpuset-cpus``).

Nothing here imports more than psutil: the chunk workers' module reads the cores before anything heavy loads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def memory_bytes(root: Path = CGROUP_ROOT, membership: Path = PROC_CGROUP) -> int:
    """The machine's memory, or less when this process's control group (or one above it) is limited to less."""
    import psutil

    limits: list[int | None] = [psutil.virtual_memory().total]
    for folder in _groups(root, membership, "memory"):
        limits += [_number(folder / "memory.max"), _number(folder / "memory.limit_in_bytes")]
    return min(limit for limit in limits if limit is not None)


def cpu_count(root: Path = CGROUP_ROOT, membership: Path = PROC_CGROUP) -> int:
    """The cores this process may run on (its affinity), or fewer under a CPU quota of its control group (or one
    above it), rounded up: a container given 1.5 CPUs runs two processes at once, each a little slower."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # macOS: none
    for folder in _groups(root, membership, "cpu"):
        quota, _, period = _text(folder / "cpu.max").partition(" ")  # v2: "max 100000" without a quota
        quota_us, period_us = _number(folder / "cpu.cfs_quota_us"), _number(folder / "cpu.cfs_period_us")  # v1
        if quota.isdigit() and period.isdigit() and int(period):
            cores = min(cores, math.ceil(int(quota) / int(period)))
        if quota_us is not None and period_us:  # a quota of -1: none
            cores = min(cores, math.ceil(quota_us / period_us))
    return max(1, cores)


def _groups(root: Path, membership: Path, controller: str) -> list[Path]:
    """The folders of this process's control group for ``controller`` and of the groups above it, those that exist
    under ``root``: a limit of any of them holds.

    /proc/self/cgroup names the group from the root of the hierarchy; in a container whose own group is mounted as
    the root (cgroup v1 Docker, without a cgroup namespace) that path is not under ``root``, and only ``root``
    itself, the container's group, is read."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (root / "cgroup.controllers").is_file():
            base = root  # v2 only; a v2 hierarchy beside v1 ones (hybrid) has no memory or cpu controller
        elif controller in controllers.split(","):
            base = root / controllers  # v1: a mount of its own, or shared with others ("cpu,cpuacct")
        else:
            continue
        parts = Path(path).relative_to("/").parts
        return [group for n in range(len(parts), -1, -1) if (group := base.joinpath(*parts[:n])).is_dir()]
    return []


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _number(path: Path) -> int | None:
    """A limit file's number; None for ``max``, ``-1`` or a file that is not there (the other cgroup version's)."""
    text = _text(path)
    return int(text) if text.isdigit() else None
