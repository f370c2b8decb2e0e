"""Run configs: a field left null in the launchpad runs with its default, as one left out does."""

import warnings

import dagster as dg

from leads_pipeline.defs.config import RunConfig
from leads_pipeline.defs.security.assets import RetentionConfig


class _Config(RunConfig):
    dry_run: bool = False
    workers: int = 4
    label: str | None = "kept"
    """A field that admits null keeps it."""


def test_a_null_field_runs_with_its_default() -> None:
    seen: list[_Config] = []

    @dg.asset
    def stage(config: _Config) -> None:
        seen.append(config)

    # (a Literal field, an enum in Dagster's schema, is refused null at launch already)
    config = {"dry_run": None, "workers": None, "label": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize([stage], run_config={"ops": {"stage": {"config": config}}}, raise_on_error=False)
    assert result.success
    [given] = seen
    assert (given.dry_run, given.workers, given.label) == (False, 4, None)


def test_the_retention_run_takes_a_null_dry_run_as_false() -> None:
    assert RetentionConfig(dry_run=None).dry_run is False  # type: ignore[arg-type]
