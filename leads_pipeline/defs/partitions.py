"""The one partitioning of the pipeline: a batch is an imported file or a selection of leads to (re-)enrich.

Whoever launches a run registers its partition first (``leads``, the schedules, a resumed enrichment job) and does
not look whether it is there: ``add_dynamic_partitions`` adds only the keys that are new, and listing the batches
to look reads every one of them."""

import dagster as dg

from leads_pipeline.defs.executor import final_failure

BATCHES = "batches"
batches = dg.DynamicPartitionsDefinition(name=BATCHES)


def no_batch_leads(batch_id: str, to: str, how: str) -> str:
    """Why a stage refuses a partition with no batch behind it. The drop folder registers a file's partition
    before its run imports it, and an import refused before it writes anything (an empty or a compressed file)
    leaves the partition and no batch: named by the internal table ("does not exist in leads.batches") or as a
    batch to create, the line left the user nothing to act on. ``to`` is what the stage does with leads, ``how``
    how to give it some."""
    return (
        f"batch {batch_id!r} has no leads to {to}: it is no import's (one refused before it wrote anything, as its"
        f" batch_leads run says, leaves none) and no selection's; {how}"
    )


def registered_batch(context: dg.AssetExecutionContext) -> str:
    """The run's batch, refused unless it is a partition of ``batches``. Every launcher registers its batch first
    (``leads``, the sensors, the daily rescore), but a run launched through the GraphQL API (``launchRun`` with a
    ``dagster/partition`` tag) is not checked by Dagster: one with a made-up key ran, and with a path and a list
    imported into a batch the UI does not show and no backfill reaches. Called first, before anything is written."""
    return registered_partition(context, BATCHES, "batch")


def registered_partition(context: dg.AssetExecutionContext, partitions: str, what: str) -> str:
    """The run's partition key, refused (one line, not retried) unless it is one of the dynamic partitions
    ``partitions`` (``registered_batch``: Dagster does not check a ``dagster/partition`` tag)."""
    key = context.partition_key
    if not context.instance.has_dynamic_partition(partitions, key):
        raise final_failure(
            f"partition {key!r} is not a {what}: launch the run for one of the '{partitions}' partitions"
        )
    return key
