"""The check on ``duplicate_clusters``: duplicate clusters of the batch that are still unmerged."""

from typing import Any, Final

import dagster as dg
import psycopg

from leads_pipeline.lib.dedupe.leads import DuplicateCluster
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store import merges

UNMERGED_CHECK: Final = "no_unmerged_duplicate_clusters"
CHECK_SPECS: Final = [
    dg.AssetCheckSpec(
        UNMERGED_CHECK,
        asset="duplicate_clusters",
        description="No cluster of duplicate leads involving the batch is left unmerged (a warning: merging is "
        "a decision, `leads dedupe --merge` or a run with merge: true makes it).",
    )
]
_PREVIEW: Final = 20


def batch_clusters(conn: psycopg.Connection[dict[str, Any]], batch_id: str, owner: str) -> list[DuplicateCluster]:
    """Clusters among the leads of the batch's lists that include at least one lead of the batch."""
    lists = [
        r["name"]
        for r in conn.execute(
            "SELECT DISTINCT s.name FROM lists s WHERE s.deleted_at IS NULL AND s.id IN ("
            " SELECT list_id FROM batches WHERE id = %(b)s AND list_id IS NOT NULL"
            " UNION SELECT l.list_id FROM leads l JOIN batch_members m ON m.lead_id = l.id WHERE m.batch_id = %(b)s)",
            {"b": batch_id},
        )
    ]
    if not lists:
        return []
    members = {r["lead_id"] for r in conn.execute("SELECT lead_id FROM batch_members WHERE batch_id = %s", (batch_id,))}
    found = merges.detect(conn, Selection(lists=tuple(lists)), owner)
    return [c for c in found if members.intersection(c.lead_ids)]


def clusters_table(clusters: list[DuplicateCluster]) -> str:
    if not clusters:
        return "none"
    lines = ["| cluster | leads | lists | score | why |", "|---|---|---|---|---|"]
    for c in clusters[:_PREVIEW]:
        lines.append(
            f"| {c.number} | {', '.join(map(str, c.lead_ids))} | {', '.join(map(str, c.list_ids))} | {c.score:.1f} "
            f"| {', '.join(c.reasons)} |"
        )
    return "\n".join(lines)


def unmerged_check(clusters: list[DuplicateCluster]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=UNMERGED_CHECK,
        passed=not clusters,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unmerged_clusters": dg.MetadataValue.int(len(clusters)),
            "leads_in_unmerged_clusters": dg.MetadataValue.int(sum(len(c.lead_ids) for c in clusters)),
            "clusters": dg.MetadataValue.md(clusters_table(clusters)),
        },
    )
