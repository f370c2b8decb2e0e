"""Launching the pipeline's assets from the command line, through Dagster, on the project's instance.

The CLI never runs pipeline logic itself: it adds the batch partition and materializes the same asset the sensor
and the UI run, in-process (a daemon-launched run costs ~8-10 s of orchestration), recorded in the same Dagster
instance so the run shows up in the UI with its metadata and checks.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import dagster as dg

from leads_pipeline.defs.executor import materialize_here
from leads_pipeline.defs.partitions import BATCHES
from leads_pipeline.defs.resources import database_resources, default_resources
from leads_pipeline.lib.errors import ConfigurationError, PermanentError

if TYPE_CHECKING:
    from leads_pipeline.defs.imports.assets import ImportConfig

_NO_COMPUTE_LOGS: Final = {
    "compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}
}
"""The runs the commands execute in their own process do not capture the step's output into files: to capture it,
Dagster started a ``tail`` and a Python watcher process per stream, in the terminal's process group, and Ctrl-C
printed a KeyboardInterrupt traceback from each watcher before the command's one line. Their output is the
terminal's, as it is without them (Dagster's own log lines still reach the run's event log)."""


def instance() -> dg.DagsterInstance:
    """The project's Dagster instance (DAGSTER_HOME and DAGSTER_PG_URL set by ``prepare_environment``), as the
    commands run steps in their own process with it (``_NO_COMPUTE_LOGS``).

    dagster-postgres creates its tables in the first schema of the connection's search path (``public``). On a
    team's own server the pipeline's role often may not create there (PostgreSQL 15 took CREATE on ``public``
    from everyone but the database's owner), and the first import was a 400-line SQLAlchemy traceback."""
    import sqlalchemy.exc
    from dagster._core.instance.ref import InstanceRef

    if _retry_warning not in logging.getLogger().filters:
        logging.getLogger().addFilter(_retry_warning)
    try:
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(os.environ["DAGSTER_HOME"], overrides=_NO_COMPUTE_LOGS))
    except sqlalchemy.exc.DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        url = urlsplit(os.environ.get("DATABASE_URL", ""))
        reason = str(exc.orig).splitlines()[0]
        raise ConfigurationError(
            f"Dagster's storage cannot create its tables in database {url.path.lstrip('/')!r} ({reason}): have an"
            f' administrator run GRANT CREATE ON SCHEMA public TO "{url.username}", or give Dagster a schema of its'
            " own (CREATE SCHEMA dagster) and add options=-csearch_path%3Ddagster to DATABASE_URL (the leads"
            " tables stay in schema leads)"
        ) from None


_INSUFFICIENT_PRIVILEGE = "42501"


def _retry_warning(record: logging.LogRecord) -> bool:
    """Drop dagster-postgres's warning of each retry to reach its storage: with the database gone mid-command,
    the 12 retries before it gives up printed 36 lines ahead of the command's one-line error (``run_or_fail``)."""
    return not record.getMessage().startswith("Retrying failed database connection")


def materialize_import(batch_key: str, config: ImportConfig) -> dg.ExecuteInProcessResult:
    """Add the batch partition and materialize ``batch_leads`` for it; raises if the run fails."""
    from leads_pipeline.defs.imports.assets import batch_leads  # as the other assets: only the one run is loaded

    return _materialize_asset(
        batch_leads,
        config.model_dump(exclude_none=True),
        partition_key=batch_key,
        tags={"leads/list": config.list_name} if config.list_name else None,
    )


def resources_for(asset: dg.AssetsDefinition) -> dict[str, Any]:
    """The database alone for an asset that needs nothing else (imports, scores): building every provider's
    resource would import their client libraries first. (``materialize`` supplies the IO manager.)"""
    database = database_resources()
    return database if asset.required_resource_keys - {"io_manager"} <= database.keys() else default_resources()


def _materialize_asset(
    asset: dg.AssetsDefinition,
    run_config: dict[str, Any],
    *,
    partition_key: str | None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize one asset in-process on the instance (adding its batch partition first, if it has one); the
    asset's own failure verdict (a bad file, an unknown list) becomes one line."""
    dagster_instance = instance()
    if partition_key is not None:
        dagster_instance.add_dynamic_partitions(BATCHES, [partition_key])
    try:
        return materialize_here(
            [asset],
            partition_key=partition_key,
            instance=dagster_instance,
            resources=resources_for(asset),
            run_config={"ops": {asset.key.path[-1]: {"config": run_config}}},
            tags=tags,
            raise_on_error=True,
        )
    except dg.Failure as failure:
        raise PermanentError(failure.description or str(failure)) from failure


def materialize_scores(batch_key: str, scoring: dict[str, Any]) -> dg.ExecuteInProcessResult:
    """Add the selection's partition and materialize ``lead_scores`` for it with the given scoring run config."""
    from leads_pipeline.defs.scoring.assets import lead_scores

    return _materialize_asset(lead_scores, scoring, partition_key=batch_key)


def materialize_fit_model(config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    """Train and store the fit model (``lead_fit_model``) with the given training config."""
    from leads_pipeline.defs.scoring.assets import lead_fit_model

    return _materialize_asset(lead_fit_model, config, partition_key=None)


def materialize_duplicates(batch_key: str, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    """Materialize ``duplicate_clusters`` for a batch (its ``DuplicateClustersConfig`` as ``config``)."""
    from leads_pipeline.defs.dedupe.assets import duplicate_clusters

    return _materialize_asset(duplicate_clusters, config, partition_key=batch_key)
