"""``leads dedupe``: find duplicate leads within and across lists, and merge them (``leads merges undo`` undoes)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    environment,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.commands.selection import ListOption, StageOption, TagOption, WhereOption
from leads_pipeline.lib.wording import counted


def dedupe_command(
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge the clusters (all, or those given with --cluster).")
    ] = False,
    cluster: Annotated[
        list[int] | None, typer.Option("--cluster", help="With --merge: only this cluster number (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Report clusters of duplicate leads (same email, LinkedIn URL, or similar name + company/phone) with why
    they matched and a score; --merge keeps one survivor per cluster and records the merge for undo."""
    from leads_pipeline.lib.errors import ConfigurationError
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store import merges
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import hold_lists_of

    env = run_or_fail(environment)

    def run() -> dict[str, Any]:
        selection = Selection.build(lists=lists, where=where, tags=tags, stages=stages)
        user = acting_user()
        with connect(env.database_url) as conn:
            found = merges.detect(conn, selection, user)
            chosen = [c for c in found if not cluster or c.number in cluster]
            unknown = sorted(set(cluster or ()) - {c.number for c in found})
            if unknown:
                # with none found it said "has 0 (numbers 1 to 0)"
                numbers = "number 1" if len(found) == 1 else f"numbers 1 to {len(found)}"
                has = f"{len(found)} ({numbers})" if found else "no clusters of duplicates"
                raise ConfigurationError(
                    f"--cluster {', '.join(map(str, unknown))}: no such cluster; this selection has {has}"
                )
            merged: list[dict[str, Any]] = []
            skipped: list[int] = []
            if merge:  # a merge at once (an overlapping cron job) is waited for here, and its clusters skipped
                hold_lists_of(conn, [i for c in chosen for i in c.lead_ids])
                for c, result in zip(chosen, merges.merge_clusters(conn, chosen, user), strict=True):
                    if isinstance(result, merges.NothingLeftToMerge):
                        skipped.append(c.number)
                    else:
                        merged.append(result.as_json())
            named = {  # the lists by name as well: "in lists 1, 3" told a reader nothing without another command
                int(r["id"]): r["name"]
                for r in conn.execute(
                    "SELECT id, name FROM lists WHERE id = ANY(%s)", (sorted({i for c in found for i in c.list_ids}),)
                )
            }
        clusters = [{**c.as_json(), "lists": [named[i] for i in c.list_ids]} for c in found]
        return {"clusters": clusters, "merges": merged, "skipped": skipped}

    document = run_or_fail(run)
    if as_json:
        print_json(document)
        return
    table = Table("cluster", "leads", "lists", "score", "why")
    lines = []
    for c in document["clusters"]:
        ids, lists_of, why = (
            ", ".join(map(str, c["leadIds"])),
            ", ".join(c["lists"]),
            ", ".join(c["reasons"]),
        )
        table.add_row(str(c["cluster"]), ids, lists_of, f"{c['score']:.1f}", why)
        # narrower than the table (80 columns: a pipe, a log) the lead ids were cut to a few digits, and a script
        # reading which leads to merge read the wrong ones: each cluster takes two lines, every value whole
        lines.append((f"cluster {c['cluster']}: leads {ids}", f"in lists {lists_of}, score {c['score']:.1f}: {why}"))
    print_table(table, lines)
    print_line(f"{counted(len(document['clusters']), 'cluster')} of duplicates")
    for number in document["skipped"]:
        print_line(
            f"cluster {number}: skipped, fewer than two of its leads are still live (merged or deleted since it was"
            " found)"
        )
    for m in document["merges"]:
        print_line(
            f"merge {m['mergeId']}: kept lead {m['survivorId']}, merged {', '.join(map(str, m['mergedIds']))}, "
            f"filled {', '.join(m['filled']) or 'nothing'} (undo: leads merges undo {m['mergeId']})"
        )
