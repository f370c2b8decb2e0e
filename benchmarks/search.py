"""Search and duplicate detection on a large account: ``--rows`` leads (default 1,000,000) in ``--lists`` lists.

Loads the leads through the real import path (``benchmarks.generate_import`` files, one per list, different
seeds so that lists overlap like real exports do), then measures:

- search latency (p50/p95/max over ``--queries`` runs, first page of 50) for a substring query (a name fragment
  from the data, through the trigram index) and for a filtered query (a list + ``country = X`` +
  ``company ~ word``), sorted by id and by last name;
- duplicate detection over every list (``leads dedupe``'s code path: COPY out, block, compare, cluster);
- with ``--import-cost N``: the import time of N rows with and without its search rows and their indexes.

Uses the embedded PostgreSQL under ``benchmarks/out/home`` unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
USER = "bench"


def _environment() -> Any:
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    return env


def _import(env: Any, rows: int, seed: int, list_name: str) -> float:
    from benchmarks.generate_import import generate
    from leads_pipeline.cli import run_cli_import
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import create_list

    path = OUT / f"search_{rows}_{seed}.csv"
    if not path.exists():
        generate(path, rows, seed=seed)
    with connect(env.database_url) as conn:
        create_list(conn, list_name, owner=USER)
    os.environ["LEADS_USER"] = USER  # the import acts as the lists' owner, as `LEADS_USER=bench leads import` does
    started = time.perf_counter()
    run_cli_import(env, path, list_name, on_duplicate="skip", mapping={}, default_region="US", show_progress=False)
    return time.perf_counter() - started


def import_cost(env: Any, rows: int, repeats: int = 2) -> dict[str, Any]:
    """Import ``rows`` into fresh lists alternately without and with the search rows (sql/009: the trigger that
    fills ``lead_search`` off, so the bulk index build at the end has nothing to index); best time of each.
    A small import first warms up what every first run pays once (Dagster instance, worker start-up)."""
    from leads_pipeline.lib.store.db import connect

    stamp = f"{datetime.now(UTC):%H%M%S}"
    _import(env, 1_000, 100, f"cost-warmup-{stamp}")
    times: dict[bool, list[float]] = {False: [], True: []}
    for attempt in range(repeats):
        for indexed in (False, True):
            if not indexed:
                with connect(env.database_url) as conn:
                    conn.execute("ALTER TABLE leads DISABLE TRIGGER lead_search_inserted")
            try:
                name = f"cost-{'with' if indexed else 'without'}-{stamp}-{attempt}"
                times[indexed].append(_import(env, rows, 101 + attempt * 2 + indexed, name))
            finally:
                if not indexed:
                    with connect(env.database_url) as conn:
                        conn.execute("ALTER TABLE leads ENABLE TRIGGER lead_search_inserted")
    without, with_index = min(times[False]), min(times[True])
    return {
        "rows": rows,
        "seconds_without_search_rows": round(without, 2),
        "seconds_with_search_rows": round(with_index, 2),
        "extra_seconds": round(with_index - without, 2),
        "all_runs": {"without": [round(t, 2) for t in times[False]], "with": [round(t, 2) for t in times[True]]},
    }


def _latencies(run: Any, arguments: list[Any]) -> dict[str, float]:
    times = []
    for argument in arguments:
        started = time.perf_counter()
        run(argument)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "max_ms": round(times[-1], 1),
    }


def search_latency(env: Any, queries: int, list_names: list[str]) -> dict[str, Any]:
    from leads_pipeline.lib.filters import Selection, Sort
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.search import search

    rng = random.Random(7)
    with connect(env.database_url, autocommit=True) as conn:
        conn.execute("ANALYZE leads")
        sample = list(conn.execute("SELECT last_name, country, company FROM leads TABLESAMPLE SYSTEM (1) LIMIT 2000"))
        words = [r["last_name"][: rng.randint(4, 6)].lower() for r in sample if r["last_name"]]
        filters = [
            (r["country"], r["company"].split()[0].strip(",").lower()[:8], rng.choice(list_names))
            for r in sample
            if r["country"] and r["company"]
        ]

        def text(word: str, sort: Sort = Sort()) -> None:
            search(conn, Selection(query=word), USER, sort=sort, limit=50)

        def filtered(args: tuple[str, str, str], sort: Sort = Sort()) -> None:
            country, word, list_name = args
            selection = Selection.build(lists=[list_name], where=[f"country = {country}", f"company ~ {word}"])
            search(conn, selection, USER, sort=sort, limit=50)

        by_name = Sort("last_name")
        return {
            "substring_query": _latencies(text, rng.sample(words, queries)),
            "substring_query_sorted_by_last_name": _latencies(lambda w: text(w, by_name), rng.sample(words, queries)),
            "filtered_query": _latencies(filtered, rng.sample(filters, queries)),
            "filtered_query_sorted_by_last_name": _latencies(
                lambda f: filtered(f, by_name), rng.sample(filters, queries)
            ),
            "example_words": words[:5],
        }


def dedupe_time(env: Any, list_names: list[str]) -> dict[str, Any]:
    from leads_pipeline.lib.dedupe.leads import find_clusters
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.merges import candidate_frame

    with connect(env.database_url) as conn:
        started = time.perf_counter()
        frame = candidate_frame(conn, Selection(lists=tuple(list_names)), USER)
        loaded = time.perf_counter() - started
    started = time.perf_counter()
    clusters = find_clusters(frame)
    matched = time.perf_counter() - started
    return {
        "leads": len(frame),
        "load_seconds": round(loaded, 2),
        "match_seconds": round(matched, 2),
        "total_seconds": round(loaded + matched, 2),
        "clusters": len(clusters),
        "leads_in_clusters": sum(len(c.lead_ids) for c in clusters),
    }


def _loaded_lists(env: Any, rows: int, lists: int) -> list[str]:
    """The lists of an earlier load of the same size, if there is one (to measure again without reloading)."""
    from leads_pipeline.lib.store.db import connect

    with connect(env.database_url) as conn:
        found = conn.execute(
            "SELECT substring(s.name from '^(search-[0-9]+)-') AS stamp, count(DISTINCT s.id) AS n,"
            " count(l.id) AS leads FROM lists s JOIN leads l ON l.list_id = s.id"
            " WHERE s.name LIKE 'search-%%' AND l.deleted_at IS NULL"
            " GROUP BY 1 ORDER BY 1 DESC LIMIT 1"
        ).fetchone()
    if found is None or found["n"] != lists or found["leads"] < rows * 0.99:
        return []
    return [f"{found['stamp']}-{k}" for k in range(lists)]


def search_benchmark(
    rows: int, lists: int, queries: int, import_rows: int = 0, *, reuse: bool = False
) -> dict[str, Any]:
    env = _environment()
    report: dict[str, Any] = {}
    if import_rows:
        report["import_cost"] = import_cost(env, import_rows)
        print(json.dumps({"import_cost": report["import_cost"]}), flush=True)
    names = _loaded_lists(env, rows, lists) if reuse else []
    if not names:
        stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}"
        names = [f"search-{stamp}-{k}" for k in range(lists)]
        load_seconds = sum(_import(env, rows // lists, seed, name) for seed, name in enumerate(names, 1))
        report["load"] = {"rows": rows, "lists": lists, "import_seconds": round(load_seconds, 1)}
    report["search"] = search_latency(env, queries, names)
    print(json.dumps({"search": report["search"]}), flush=True)
    report["dedupe"] = dedupe_time(env, names)
    return report


def bench_report(rows: int, queries: int = 200, import_rows: int = 100_000) -> dict[str, Any]:
    """What ``make bench`` records for lists, search and duplicates: FEBRL accuracy, then the large account."""
    from benchmarks.dedupe_accuracy import febrl_benchmark

    return {"dedupe_accuracy": febrl_benchmark(), **search_benchmark(rows, 4, queries, import_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lists", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--import-cost", type=int, default=100_000, help="rows for the index cost (0: skip)")
    parser.add_argument("--reuse", action="store_true", help="measure on lists an earlier run loaded")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    report = search_benchmark(args.rows, args.lists, args.queries, args.import_cost, reuse=args.reuse)
    (OUT / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
