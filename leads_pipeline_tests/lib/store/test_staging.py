"""Chunks staged in the database by the workers that prepared them (lib/store/staging.py), on the embedded
PostgreSQL: merged from there as from the importing process's own COPY, and never left behind by an import that
stopped."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.prepare import OnDuplicate
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store import liveness, staging
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.support import import_file, sql_rows, sql_value

HEADER = "Email,First Name,Last Name,Title,Phone,Company,Favourite Colour\n"


def _rows(seed: int, count: int) -> str:
    """Rows over 150 emails (each chunk folds several rows of a lead on update), some of them bad (a problem of
    the row), with titles and colours that change from row to row."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        n = rng.randrange(150)
        email = "not-an-email" if i % 37 == 0 else f"person{n}@example.com"
        phone = rng.choice(["", f"+1 415 555 {1000 + n}"])
        lines.append(f"{email},First{n},Last{n},{rng.choice(['CEO', 'CTO', ''])},{phone},Acme {n % 7},{rng.random()}")
    return "".join(f"{line}\n" for line in lines)


def _staged_tables(database_url: str) -> list[str]:
    return [
        row["tablename"]
        for row in sql_rows(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = %s", staging.SCHEMA)
    ]


def _outcome(database_url: str, status: dict[str, Any]) -> tuple[Any, ...]:
    """What an import did, as a user reads it: counts, problems (sealed values left out: each sealing differs) and
    the list's leads in creation order (sealed values by their blind index)."""
    problems = sql_rows(
        database_url,
        "SELECT row_number, column_name, reason, severity FROM import_errors WHERE import_id = %s"
        " ORDER BY row_number, column_name, reason",
        int(status["importId"]),
    )
    leads = sql_rows(
        database_url,
        "SELECT first_name, last_name, title, company, email_bidx, phone_bidx, custom FROM leads"
        " WHERE list_id = %s ORDER BY id",
        int(status["listId"]),
    )
    return status["results"], status["warnings"], problems, leads


@pytest.mark.parametrize("on_duplicate", ["skip", "update"])
def test_chunks_staged_by_the_workers_merge_as_those_the_importing_process_copies(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_duplicate: OnDuplicate
) -> None:
    """The merging backend is the import's serial path; with a pool it no longer parses the chunks' CSV (a COPY,
    ~0.22 s of its CPU a 50k-row chunk): the workers stage them. The leads, counts and problems are those of the
    chunks prepared and copied by the importing process, and no staged table is left."""
    stored = tmp_path / "stored.csv"
    stored.write_text(HEADER + _rows(1, 60), encoding="utf-8")
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + _rows(2, 600), encoding="utf-8")
    copied: list[str] = []
    real_copy = store._copy_staged

    def copy(conn: Any, table: str, *args: Any) -> None:
        copied.append(table)
        real_copy(conn, table, *args)

    monkeypatch.setattr(store, "_copy_staged", copy)
    outcomes = []
    for workers in (1, 2):
        with connect(database_url) as conn:
            create_list(conn, f"by {workers}", owner="tester")
        import_file(database_url, stored, f"by {workers}")
        copied.clear()
        status = import_file(
            database_url, path, f"by {workers}", on_duplicate=on_duplicate, workers=workers, chunk_rows=100
        )
        assert status["status"] == "completed"
        outcomes.append(_outcome(database_url, status))
        if workers == 1:
            assert copied.count("stg") == 6, "the importing process copies each chunk it prepared"
        else:
            assert copied == [], "the merging backend copies no chunk: the workers staged them"
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][2], "the file's bad emails are problems"
    assert _staged_tables(database_url) == []


def test_an_import_that_fails_leaves_no_staged_chunk(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers stage chunks ahead of the merge: those of a failed import are dropped as it ends, and its resume
    stages them again."""
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + _rows(3, 1_000), encoding="utf-8")
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    real_merge = store.merge_chunk

    def fail_on_third_chunk(*args: Any, **kwargs: Any) -> Any:
        if kwargs["chunk"].index == 2:
            raise RuntimeError("simulated failure")
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(store, "merge_chunk", fail_on_third_chunk)
    with pytest.raises(RuntimeError, match="simulated failure"):
        import_file(database_url, path, batch_id="failing", workers=2, chunk_rows=100)
    assert _staged_tables(database_url) == []

    monkeypatch.setattr(store, "merge_chunk", real_merge)
    status = import_file(database_url, path, batch_id="failing", workers=2, chunk_rows=100)
    assert (status["status"], status["progress"]["processed"]) == ("completed", 1_000)
    assert sql_value(database_url, "SELECT count(*) FROM leads") == status["results"]["imported"]
    assert _staged_tables(database_url) == []


def test_an_import_drops_the_chunks_staged_by_imports_no_process_runs_and_keeps_those_of_running_ones(
    database_url: str, tmp_path: Path
) -> None:
    """A killed import's workers may have staged chunks it never merged (a server crash empties them): the next
    import to start drops them, but not those of an import another process is running."""
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + _rows(4, 50), encoding="utf-8")
    with connect(database_url, autocommit=True) as running:
        assert liveness.claim(running, liveness.IMPORT, 900)
        for name in ("i900_c3", "i901_c3", "i901_c4_folds"):
            running.execute(f'CREATE UNLOGGED TABLE {staging.SCHEMA}."{name}" (row_number integer)')
        with connect(database_url) as conn:
            create_list(conn, "prospects", owner="tester")
        import_file(database_url, path)
        assert _staged_tables(database_url) == ["i900_c3"]


def test_undoing_an_import_drops_the_chunks_it_staged_and_never_merged(database_url: str, tmp_path: Path) -> None:
    """An import killed with chunks staged and never resumed leaves them (sealed values of its file) until an import
    starts: undoing it drops them at once."""
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + _rows(5, 50), encoding="utf-8")
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    status = import_file(database_url, path)
    import_id = int(status["importId"])
    with connect(database_url, autocommit=True) as conn:
        for name in (f"i{import_id}_c3", f"i{import_id}_c4_folds"):
            conn.execute(f'CREATE UNLOGGED TABLE {staging.SCHEMA}."{name}" (row_number integer)')
    with connect(database_url) as conn, conn.transaction():
        store.undo_import(conn, import_id, "tester")
    assert _staged_tables(database_url) == []
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0
