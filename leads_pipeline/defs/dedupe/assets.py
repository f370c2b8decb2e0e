"""Duplicate detection as a Dagster asset: the duplicate clusters a batch's leads form in their lists."""

import dagster as dg

from leads_pipeline.defs.config import RunConfig
from leads_pipeline.defs.dedupe.checks import CHECK_SPECS, batch_clusters, clusters_table, unmerged_check
from leads_pipeline.defs.executor import final_failure
from leads_pipeline.defs.partitions import batches, no_batch_leads, registered_batch
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.errors import LeadsError
from leads_pipeline.lib.store import merges
from leads_pipeline.lib.store.batches import batch_exists


class DuplicateClustersConfig(RunConfig):
    """Whether the clusters found are merged, and who looks for them."""

    merge: bool = False
    """Merge each cluster found into its most complete lead (undo: `leads merges undo`); else only report them."""
    user: str | None = None
    """Who looks and merges: they need the editor role on the lists involved to merge. Unset: the owner of the
    batch's list."""


def _owner(database: LeadsDatabase, batch_id: str) -> str:
    """Who reads the lists when no user is given: the owner of the batch's list (or of its leads' lists)."""
    with database.connection() as conn:
        row = conn.execute(
            "SELECT s.owner FROM lists s WHERE s.id = coalesce((SELECT list_id FROM batches WHERE id = %(b)s),"
            " (SELECT l.list_id FROM leads l JOIN batch_members m ON m.lead_id = l.id WHERE m.batch_id = %(b)s"
            " LIMIT 1))",
            {"b": batch_id},
        ).fetchone()
    if row is None:
        raise dg.Failure(description=f"batch {batch_id} has no list and no leads to look for duplicates in")
    return str(row["owner"])


@dg.asset(
    partitions_def=batches,
    group_name="dedupe",
    kinds={"postgres", "python"},
    deps=["batch_leads"],
    check_specs=CHECK_SPECS,
)
def duplicate_clusters(
    context: dg.AssetExecutionContext, config: DuplicateClustersConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """Clusters of duplicate leads involving the batch, within and across the batch's lists: the same email or
    LinkedIn URL, or a similar name at the same company (or with the same phone). With ``merge`` set, each
    cluster is merged into its most complete lead (undo with `leads merges undo`); the check then reports what
    is left unmerged."""
    batch_id = registered_batch(context)
    with database.connection() as conn:
        if not batch_exists(conn, batch_id):
            raise final_failure(no_batch_leads(batch_id, "look for duplicates in", "import a file"))
    user = config.user or _owner(database, batch_id)
    merged: list[int] = []
    skipped = 0
    try:
        with database.connection() as conn:
            found = batch_clusters(conn, batch_id, user)
        if config.merge and found:
            with database.connection() as conn:
                for result in merges.merge_clusters(conn, found, user):
                    if isinstance(result, merges.NothingLeftToMerge):  # merged meanwhile by a run at once (waited for)
                        skipped += 1
                    else:
                        merged.append(result.merge_id)
        with database.connection() as conn:
            left = batch_clusters(conn, batch_id, user) if merged or skipped else found
    except LeadsError as exc:  # an unknown list or a missing role: retrying cannot help
        raise final_failure(str(exc)) from exc
    context.log.info(
        f"{len(found)} duplicate clusters, {len(merged)} merged, {skipped} merged meanwhile by another run,"
        f" {len(left)} left"
    )
    return dg.MaterializeResult(
        metadata={
            "clusters": dg.MetadataValue.int(len(found)),
            "duplicate_leads": dg.MetadataValue.int(sum(len(c.lead_ids) - 1 for c in found)),
            "merged": dg.MetadataValue.int(len(merged)),
            "merge_ids": dg.MetadataValue.text(", ".join(map(str, merged)) or "none"),
            "preview": dg.MetadataValue.md(clusters_table(found)),
        },
        check_results=[unmerged_check(left)],
    )
