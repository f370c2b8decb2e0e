"""Registering partitions, as every launcher does before its run."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline_tests.support import cli_environment


@contextmanager
def _instance(
    storage: str, monkeypatch: pytest.MonkeyPatch, database_url: str, home: Path
) -> Iterator[dg.DagsterInstance]:
    if storage == "ephemeral":
        yield dg.DagsterInstance.ephemeral()
        return
    cli_environment(monkeypatch, database_url, home)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"  # the project's dagster.yaml
        yield instance


@pytest.mark.parametrize("storage", ["ephemeral", "project"])
def test_registering_a_registered_batch_again_keeps_it_once_and_adds_the_new_ones(
    storage: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launchers (leads import, score and sync, the daily rescore, a resumed enrichment job) register their
    partition without looking whether it is there: Dagster must add only the keys that are new, in memory as in
    the project's PostgreSQL storage."""
    with _instance(storage, monkeypatch, database_url, tmp_path / "home") as instance:
        instance.add_dynamic_partitions(BATCHES, ["import-a"])
        instance.add_dynamic_partitions(BATCHES, ["import-a"])
        instance.add_dynamic_partitions(BATCHES, ["import-b", "import-a"])
        assert sorted(instance.get_dynamic_partitions(BATCHES)) == ["import-a", "import-b"]
