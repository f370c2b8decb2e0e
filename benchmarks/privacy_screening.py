"""What privacy screening costs an import: ``screen_staged`` on one 50,000-row staged chunk (the CLI's chunk
size), with no suppressions (the usual case: one count query) and with 10,000 suppressed and 10,000 opted-out
people (the staged rows' blind indexes, computed by the import's workers, joined with the suppression
hashes). Runs inside a rolled-back transaction on the benchmark database (``benchmarks/out/home`` unless
DATABASE_URL is set)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
CHUNK_ROWS = 50_000
PEOPLE = 10_000


def _stage(conn: Any, key: bytes) -> None:
    """A staged chunk as the import's workers leave it: blind indexes beside the sealed values (which screening
    does not read)."""
    from leads_pipeline.lib.privacy.keys import subject_hash

    conn.execute(
        "CREATE TEMP TABLE bench_stg (row_number integer, email_bidx text, phone_bidx text, mobile_phone_bidx text)"
        " ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY bench_stg (row_number, email_bidx, phone_bidx) FROM STDIN") as copy:
        for i in range(1, CHUNK_ROWS + 1):
            email, phone = f"person{i}@example.com", f"+1415555{i:04d}"
            copy.write_row((i, subject_hash("email", email, key), subject_hash("phone", phone, key)))


def _timed(conn: Any) -> tuple[float, int]:
    from leads_pipeline.lib.store.privacy import screen_staged

    started = time.perf_counter()
    screening = screen_staged(conn, "bench_stg")
    return time.perf_counter() - started, len(screening.suppressed)


def screening_benchmark() -> dict[str, Any]:
    from leads_pipeline.lib.privacy.keys import subject_hash, suppression_key
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    os.environ.setdefault("LEADS_SUPPRESSION_KEY", secrets.token_hex(32))
    env = prepare_environment()
    apply_migrations(env.database_url)
    key = suppression_key()
    with connect(env.database_url) as conn:
        try:
            _stage(conn, key)
            conn.execute("DELETE FROM suppressions")
            conn.execute("DELETE FROM opt_outs")
            empty_s, _ = _timed(conn)
            hashes = [subject_hash("email", f"person{i * 5}@example.com", key) for i in range(1, PEOPLE + 1)]
            conn.execute(
                "INSERT INTO suppressions (hash, kind, reason, created_by) SELECT h, 'email', 'bench', 'bench'"
                " FROM unnest(%s::text[]) h",
                (hashes,),
            )
            conn.execute(
                "INSERT INTO opt_outs (hash, kind, created_by) SELECT h, 'phone', 'bench' FROM unnest(%s::text[]) h",
                ([subject_hash("phone", f"+1415555{i:04d}", key) for i in range(PEOPLE)],),
            )
            full_s, dropped = _timed(conn)
        finally:
            conn.rollback()
    return {
        "chunk_rows": CHUNK_ROWS,
        "no_suppressions_ms": round(empty_s * 1000, 1),
        "with_suppressions_ms": round(full_s * 1000, 1),
        "suppressed_people": PEOPLE,
        "rows_dropped": dropped,
        "rows_per_second_screened": round(CHUNK_ROWS / full_s),
    }


def main() -> None:
    print(json.dumps(screening_benchmark(), indent=2))


if __name__ == "__main__":
    main()
