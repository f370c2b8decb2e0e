"""The Dagster instance a benchmark materializes its assets in."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from leads_pipeline.defs.partitions import BATCHES


@contextmanager
def throwaway_instance(batch_id: str) -> Iterator[dg.DagsterInstance]:
    """A throwaway instance on disk with ``batch_id`` added to the batches, Dagster's warnings silenced.

    On disk, not in memory: the stages log from worker threads, and an in-memory SQLite connection used from
    another thread fills the output with tracebacks when it is collected."""
    with warnings.catch_warnings(), dg.instance_for_test() as instance:
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(BATCHES, [batch_id])
        yield instance
