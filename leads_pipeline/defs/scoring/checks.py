"""Checks on what scoring stored: every lead of the batch has a score, and its components add up to it."""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg

from leads_pipeline.lib.store.scoring import batch_score_problems

SCORES_CHECK = "every_lead_scored_and_components_sum"

CHECK_SPECS = [
    dg.AssetCheckSpec(
        SCORES_CHECK,
        asset="lead_scores",
        description="Every live lead of the batch has a score, and the score's components sum to it exactly.",
    )
]


def scores_check(conn: psycopg.Connection[dict[str, Any]], batch_id: str) -> dg.AssetCheckResult:
    problems = batch_score_problems(conn, batch_id)
    unscored = problems["unscored"]
    preview = "\n".join(f"| {r['lead_id']} | {r['score']} | {r['components']} |" for r in problems["mismatched"])
    return dg.AssetCheckResult(
        check_name=SCORES_CHECK,
        passed=not unscored and not problems["mismatched_count"],
        metadata={
            "leads_checked": dg.MetadataValue.int(problems["checked"]),
            "unscored_leads": dg.MetadataValue.int(len(unscored)),
            "unscored_sample": dg.MetadataValue.text(", ".join(map(str, unscored[:20])) or "none"),
            "components_not_summing": dg.MetadataValue.int(problems["mismatched_count"]),
            "mismatches": dg.MetadataValue.md(
                "| lead | score | components |\n|---|---|---|\n" + preview if preview else "none"
            ),
        },
    )
