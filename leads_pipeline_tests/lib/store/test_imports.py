"""Importing files into lists on the embedded PostgreSQL: real datablist files, dedupe, update, undo, bad input,
and an import that dies half-way (simulated and with a real ``kill -9`` of ``leads import``)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import psycopg
import pytest
from psycopg import sql

from leads_pipeline.lib import importer
from leads_pipeline.lib.errors import InputFileError, LeadsError, NotFoundError, PermanentError
from leads_pipeline.lib.fields import MATCH_COLUMNS
from leads_pipeline.lib.importer import INTERRUPTED, ImportOptions, run_import
from leads_pipeline.lib.prepare import DedupeKey, OnDuplicate
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store import retention, staging
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list, get_list
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.paths import DATABLIST, DEMO_FILE
from leads_pipeline_tests.support import (
    bidx,
    database_before,
    import_file,
    live_leads,
    sql_rows,
    sql_value,
    survivors,
    while_uncommitted,
)

# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def datablist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gzipped datablist files, unpacked once for the module."""
    folder = tmp_path_factory.mktemp("datablist")
    for name in ("customers-10000", "leads-10000"):
        with gzip.open(DATABLIST / f"{name}.csv.gz", "rb") as source, (folder / f"{name}.csv").open("wb") as target:
            shutil.copyfileobj(source, target)
    return folder


@pytest.fixture
def customers_10000(datablist_dir: Path) -> Path:
    return datablist_dir / "customers-10000.csv"


@pytest.fixture
def leads_10000(datablist_dir: Path) -> Path:
    return datablist_dir / "leads-10000.csv"


CUSTOMERS_1000 = DATABLIST / "customers-1000.csv"


def _new_list(database_url: str, name: str = "prospects", dedupe: DedupeKey = "email") -> int:
    with connect(database_url) as conn:
        return create_list(conn, name, owner="tester", dedupe=dedupe).id


def _duplicate_emails(database_url: str) -> list[dict[str, Any]]:
    return sql_rows(
        database_url,
        "SELECT list_id, email, count(*) AS n FROM leads WHERE email IS NOT NULL AND deleted_at IS NULL"
        " GROUP BY list_id, email HAVING count(*) > 1",
    )


def _batch_size(database_url: str, batch_id: str) -> int:
    """How many live leads belong to the batch (through the batch_members view where the schema has one)."""
    view = sql_value(database_url, "SELECT to_regclass('batch_members') IS NOT NULL")
    members = "batch_members" if view else "batch_leads"
    return int(
        sql_value(
            database_url,
            f"SELECT count(*) FROM {members} b JOIN leads l ON l.id = b.lead_id"
            " WHERE b.batch_id = %s AND l.deleted_at IS NULL",
            batch_id,
        )
    )


def _lead_by_index(database_url: str, index: str) -> dict[str, Any]:
    rows = sql_rows(database_url, "SELECT * FROM leads WHERE custom->>'Index' = %s", index)
    assert len(rows) == 1, f"expected one lead with Index {index}, found {len(rows)}"
    return rows[0]


def _all_leads(database_url: str) -> list[dict[str, Any]]:
    return sql_rows(database_url, "SELECT * FROM leads ORDER BY id")


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


# --------------------------------------------------------------------------------------------------------------
# The datablist files
# --------------------------------------------------------------------------------------------------------------


def test_import_customers_10000(database_url: str, customers_10000: Path) -> None:
    list_id = _new_list(database_url)
    status = import_file(database_url, customers_10000)

    assert status["status"] == "completed"
    assert status["results"] == {"imported": 10_000, "updated": 0, "skipped": 0, "errors": 0}
    assert status["progress"] == {"processed": 10_000, "total": 10_000, "percentage": 100.0}
    assert live_leads(database_url, list_id) == 10_000
    assert _duplicate_emails(database_url) == []
    assert _batch_size(database_url, status["batchId"]) == 10_000

    _, rows = _read_csv(customers_10000)
    stored = {r["email"] for r in sql_rows(database_url, "SELECT email FROM leads")}
    assert stored == {r[9].strip().lower() for r in rows}

    # 2,10dAcafEBbA5FcA,Kristina,Ferrell,"Horn, Shepard and Watson",Aaronville,Andorra,932-062-1802,...
    kristina = _lead_by_index(database_url, "2")
    assert kristina["country"] == "AD"
    assert kristina["website"] == "tyler-pugh.info"  # https://tyler-pugh.info/ -> bare domain
    assert kristina["full_name"] == "Kristina Ferrell"
    assert kristina["company"] == "Horn, Shepard and Watson"
    assert kristina["custom"] == {
        "Index": "2",
        "Customer Id": "10dAcafEBbA5FcA",
        "Phone 2": "(209)172-7124x3651",
        "Subscription Date": "2020-04-27",
    }
    # 6,...,Senegal,+1-134-348-0265x9132,...: international number, extension split off
    trevor = _lead_by_index(database_url, "6")
    assert (trevor["phone"], trevor["phone_ext"], trevor["country"]) == ("+11343480265", "9132", "SN")
    # 10,...,Ukraine,001-315-224-3556,...: "00" international prefix
    assert _lead_by_index(database_url, "10")["phone"] == "+13152243556"
    # 11,...,Lopez Inc,...: legal suffix kept in the name, not in the key
    lopez = _lead_by_index(database_url, "11")
    assert (lopez["company"], lopez["company_key"]) == ("Lopez Inc", "lopez")
    assert lopez["website"] == "newman.com"  # https://www.newman.com/

    # Every invalid phone/country is a warning whose value is kept in custom under its header.
    warnings = sql_rows(
        database_url,
        "SELECT e.row_number, e.column_name, e.value FROM import_errors e WHERE e.import_id = %s",
        int(status["importId"]),
    )
    assert len(warnings) == status["warnings"] > 0
    index_of_line = {str(line): r[0] for line, r in enumerate(rows, start=2)}
    for warning in warnings[:20]:
        lead = _lead_by_index(database_url, index_of_line[str(warning["row_number"])])
        assert lead["custom"][warning["column_name"]] == warning["value"]
        field = {"Phone 1": "phone", "Country": "country"}[warning["column_name"]]
        assert lead[field] is None


def test_a_warned_cell_is_kept_in_its_error_up_to_a_thousand_characters(database_url: str, tmp_path: Path) -> None:
    """A pasted document in a phone cell: the lead keeps the value whole under its header, the import error keeps
    (sealed) its first 1,000 characters, enough to see what was wrong (the cut was only applied to values in clear,
    which no longer reach the store, so every error row held the whole cell)."""
    pasted = "call me " + "1" * 4_000
    path = tmp_path / "pasted.csv"
    path.write_text(f"email,Phone\nann@acme.com,{pasted}\n", encoding="utf-8")
    list_id = _new_list(database_url)
    status = import_file(database_url, path)
    [error] = sql_rows(
        database_url, "SELECT column_name, value FROM import_errors WHERE import_id = %s", int(status["importId"])
    )
    assert (error["column_name"], error["value"]) == ("Phone", pasted[:1000])
    assert sql_value(database_url, "SELECT custom->>'Phone' FROM leads WHERE list_id = %s", list_id) == pasted


def test_the_merge_session_keeps_its_settings_and_leaves_each_chunk_its_own_transaction(database_url: str) -> None:
    with connect(database_url) as conn:
        store.open_merge_session(conn)
        # No transaction left open: each chunk's `with conn.transaction()` must commit on its own.
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        for _ in range(2):
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE stg (n integer) ON COMMIT DROP")
        shown = {name: conn.execute(f"SHOW {name}").fetchone() for name in store.MERGE_SESSION}
    assert {name: row[name] if row else None for name, row in shown.items()} == store.MERGE_SESSION


def test_the_staging_table_holds_the_duplicate_lookup_keys_before_the_lead_fields(database_url: str) -> None:
    """The lookups scan the staged chunk ~9 times for its keys: a scan reads each row up to the last column it
    needs, and with the blind indexes last of ~40 columns they cost ~40% more server CPU."""
    chunk = SimpleNamespace(custom_columns=["custom_1"])  # the DDL reads a chunk's custom columns only
    with connect(database_url) as conn, conn.transaction():
        conn.execute(store._staging_ddl(chunk))  # type: ignore[arg-type]
        order = [
            row["attname"]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'stg'::regclass AND attnum > 0 ORDER BY attnum"
            )
        ]
    keys = order[5 : 5 + len(MATCH_COLUMNS)]
    assert order[:5] == ["row_number", "lead_id", "dup", "tree", "changes"]
    assert sorted(keys) == sorted(MATCH_COLUMNS.values())
    assert order[-1] == "custom_1"


def test_an_import_returns_with_its_leads_in_the_search_index(database_url: str, customers_10000: Path) -> None:
    """An import fills its own lead_search partition and builds its trigram index in bulk at the end (sql/009)."""
    _new_list(database_url)
    status = import_file(database_url, customers_10000, chunk_rows=2_000)
    partition = f"lead_search_i{int(status['importId'])}"
    with connect(database_url, autocommit=True) as conn:
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (partition,)).fetchall()
        conn.execute("SET enable_seqscan = off")
        found = conn.execute(
            "SELECT count(*) AS n FROM lead_search x JOIN leads l ON l.id = x.lead_id"
            " WHERE x.search_text LIKE '%kristina%' AND l.first_name ILIKE 'kristina'"
        ).fetchone()
        rows = conn.execute(f"SELECT count(*) AS n FROM {partition}").fetchone()
    assert {f"{partition}_trgm", f"{partition}_sort"} <= {r["indexname"] for r in indexes}
    assert found is not None and found["n"] > 0
    assert rows is not None and rows["n"] == status["results"]["imported"]


def test_import_leads_10000_with_two_email_columns_in_a_process_pool(database_url: str, leads_10000: Path) -> None:
    """leads-10000 has "Email 1" and "Email 2": the first is the lead's email, the second stays in custom.
    Two worker processes prepare chunks ahead of the merge; the leads still arrive in file order."""
    list_id = _new_list(database_url)
    status = import_file(database_url, leads_10000, workers=2, chunk_rows=2_500)

    assert status["status"] == "completed"
    assert status["results"] == {"imported": 10_000, "updated": 0, "skipped": 0, "errors": 0}
    assert live_leads(database_url, list_id) == 10_000
    assert status["mapping"]["Email 1"] == "email"
    assert status["mapping"]["Email 2"] is None

    header, rows = _read_csv(leads_10000)
    first = dict(zip(header, rows[0], strict=True))
    lead = _lead_by_index(database_url, first["Index"])
    assert lead["email"] == first["Email 1"].lower()
    assert lead["custom"]["Email 2"] == first["Email 2"]
    assert lead["notes"] == first["Notes"]
    assert lead["website"] == "black.com"  # https://black.com/

    order = [int(r["idx"]) for r in sql_rows(database_url, "SELECT custom->>'Index' AS idx FROM leads ORDER BY id")]
    assert order == list(range(1, 10_001)), "chunks prepared in parallel are merged in file order"
    imports = sql_rows(database_url, "SELECT chunks_done, processed_rows FROM imports")
    assert imports == [{"chunks_done": 4, "processed_rows": 10_000}]


def test_reimporting_the_same_file_skips_every_row(database_url: str) -> None:
    list_id = _new_list(database_url)
    first = import_file(database_url, CUSTOMERS_1000)
    before = _all_leads(database_url)
    again = import_file(database_url, CUSTOMERS_1000)

    assert first["results"]["imported"] == 1_000
    assert again["status"] == "completed"
    assert again["results"] == {"imported": 0, "updated": 0, "skipped": 1_000, "errors": 0}
    assert live_leads(database_url, list_id) == 1_000
    assert _duplicate_emails(database_url) == []
    assert _all_leads(database_url) == before, "skipping must not touch the existing leads"


def test_a_file_whose_name_is_not_utf8_is_imported(database_url: str, tmp_path: Path) -> None:
    """A file named in Latin-1 (unzipped from a Windows archive, copied from an old share): its path holds bytes
    that are no UTF-8, which Python keeps as surrogates, and the import failed three times over (retries) on
    writing that path into its record ("surrogates not allowed"). Its record shows them as U+FFFD, as would a
    failure naming it."""
    _new_list(database_url)
    path = tmp_path / os.fsdecode(b"r\xe9sum\xe9 leads.csv")
    shutil.copyfile(DEMO_FILE, path)
    status = import_file(database_url, path, batch_id="batch-latin-1-name")  # as the commands name batches
    assert status["status"] == "completed" and status["results"]["imported"] > 0
    assert status["file"] == str(tmp_path / "r\ufffdsum\ufffd leads.csv")
    with connect(database_url) as conn:
        store.fail_import(conn, int(status["importId"]), f"{path}: gone")
        record = store.import_status(conn, int(status["importId"]))
    assert record["failure"] == f"{tmp_path}/r\ufffdsum\ufffd leads.csv: gone"


def test_same_file_into_another_list_is_imported_again(database_url: str) -> None:
    first_list = _new_list(database_url, "first")
    second_list = _new_list(database_url, "second")
    import_file(database_url, CUSTOMERS_1000, "first")
    status = import_file(database_url, CUSTOMERS_1000, "second")
    assert status["results"]["imported"] == 1_000
    assert live_leads(database_url, first_list) == live_leads(database_url, second_list) == 1_000


def test_a_batch_of_another_list_is_refused_and_nothing_is_written(database_url: str) -> None:
    """Two runs given one batch for two lists: the second must not report the first list's import as its own."""
    _new_list(database_url, "first")
    second_list = _new_list(database_url, "second")
    import_file(database_url, DEMO_FILE, "first", batch_id="batch-shared")
    with pytest.raises(PermanentError, match="batch batch-shared is an import into another list, not into 'second'"):
        import_file(database_url, DEMO_FILE, "second", batch_id="batch-shared")
    assert live_leads(database_url, second_list) == 0


def test_an_interrupted_import_says_so_and_resumes(database_url: str) -> None:
    """A run terminated from the Dagster UI mid-import (an interruption, no Exception) left its import failed with
    'DagsterExecutionInterruptedError: ' as the only word on why; it now says it was interrupted and how to go on."""
    _new_list(database_url, "prospects")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    options = ImportOptions(chunk_rows=10, workers=1)
    with pytest.raises(KeyboardInterrupt):
        run_import(
            database_url,
            batch_id="b-stop",
            path=DEMO_FILE,
            list_name="prospects",
            options=options,
            user="tester",
            on_progress=interrupt,
        )
    with connect(database_url) as conn:
        record = store.import_for_batch(conn, "b-stop")
        assert record is not None
        status = store.import_status(conn, record["id"])
    assert (status["status"], status["progress"]["processed"]) == ("failed", 10)
    assert status["failure"] == INTERRUPTED
    resumed = run_import(database_url, batch_id="b-stop", path=DEMO_FILE, list_name="prospects", options=options)
    assert (resumed["status"], resumed["results"]["imported"], resumed["failure"]) == ("completed", 33, None)


def test_a_running_import_holds_its_lock_so_it_is_not_run_twice_nor_undone(database_url: str) -> None:
    """While a process runs an import, a second run of its batch was let in (both prepared every chunk) and its
    status could not tell a running import from a killed one. The running one holds its lock: it reads processing,
    a second run and an undo are refused; its end lets go of the lock (a kill does too: the tests of a real kill
    below)."""
    list_id = _new_list(database_url, "prospects")
    committed, go_on = threading.Event(), threading.Event()

    def hold(done: int, total: int) -> None:
        committed.set()
        assert go_on.wait(timeout=60)

    options = ImportOptions(chunk_rows=10, workers=1)
    run = {"batch_id": "b-held", "path": DEMO_FILE, "list_name": "prospects", "options": options}
    results: list[dict[str, Any]] = []
    running = threading.Thread(target=lambda: results.append(run_import(database_url, **run, on_progress=hold)))
    running.start()
    try:
        assert committed.wait(timeout=60)
        import_id = int(sql_value(database_url, "SELECT id FROM imports WHERE batch_id = 'b-held'"))
        with connect(database_url) as conn:
            assert store.import_status(conn, import_id)["status"] == "processing"
            assert [r["status"] for r in store.list_imports(conn, [list_id])] == ["processing"]
        with pytest.raises(PermanentError, match=f"import {import_id} is still running in another process"):
            run_import(database_url, **run)
        with pytest.raises(PermanentError, match=f"import {import_id} is still processing"):
            _undo(database_url, import_id)
    finally:
        go_on.set()
        running.join(timeout=60)
    assert [r["status"] for r in results] == ["completed"]
    assert sql_value(database_url, "SELECT chunks_done FROM imports WHERE id = %s", import_id) == 4


def test_a_resume_holds_its_import_while_it_reads_the_file_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume of an interrupted import read the whole file again (seconds for a large one) before taking the
    import's lock: meanwhile the import read interrupted, and the drop folder took the Dagster run resuming it for
    the killed one (its import's lock free) and reported it failed. The lock is held from the start of a resume."""
    _new_list(database_url, "prospects")

    def stop(done: int, total: int) -> None:
        raise RuntimeError("stopped")

    options = ImportOptions(chunk_rows=10, workers=1)
    run = {"batch_id": "b-reread", "path": DEMO_FILE, "list_name": "prospects", "options": options}
    with pytest.raises(RuntimeError):
        run_import(database_url, **run, on_progress=stop)
    import_id = int(sql_value(database_url, "SELECT id FROM imports WHERE batch_id = 'b-reread'"))
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET status = 'processing' WHERE id = %s", (import_id,))  # as a kill leaves it
        assert store.find_import(conn, import_id)["status"] == "interrupted"
    planned = importer.plan_import
    statuses: list[str] = []

    def planning(*args: Any, **kwargs: Any) -> Any:
        with connect(database_url) as conn:
            statuses.append(store.find_import(conn, import_id)["status"])
        return planned(*args, **kwargs)

    monkeypatch.setattr(importer, "plan_import", planning)
    assert run_import(database_url, **run)["status"] == "completed"
    assert statuses == ["processing"]


def test_a_resume_that_finds_its_import_undone_meanwhile_writes_nothing(database_url: str) -> None:
    """A resume reads the import before it takes its lock: an undo committed in between (the import was
    interrupted then) was followed by the resume merging the rest of the file into the undone import."""
    _new_list(database_url, "prospects")

    def fail(done: int, total: int) -> None:
        raise RuntimeError("stopped")

    options = ImportOptions(chunk_rows=10, workers=1)
    with pytest.raises(RuntimeError):
        run_import(
            database_url, batch_id="b-undone", path=DEMO_FILE, list_name="prospects", options=options, on_progress=fail
        )
    [record] = sql_rows(database_url, "SELECT * FROM imports")
    _undo(database_url, record["id"])
    with connect(database_url) as conn, pytest.raises(PermanentError, match=f"import {record['id']} was undone"):
        store.start_import(
            conn,
            batch_id="b-undone",
            list_id=record["list_id"],
            file_path=str(DEMO_FILE),
            sha256=record["file_sha256"],
            size=record["file_size"],
            mapping=record["mapping"],
            options=record["options"],
            dialect=record["dialect"],
            chunk_rows=10,
            total_rows=record["total_rows"],
            user="tester",
        )
    assert sql_rows(database_url, "SELECT status, chunks_done FROM imports") == [{"status": "undone", "chunks_done": 1}]


# --------------------------------------------------------------------------------------------------------------
# on_duplicate="update"
# --------------------------------------------------------------------------------------------------------------


def _import_rows(
    database_url: str, path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], **options: Any
) -> dict[str, Any]:
    """Write ``rows`` under ``header`` to ``path`` and import it into "prospects"."""
    return import_file(database_url, _write_csv(path, header, rows), **options)


def _modified_customers(tmp_path: Path) -> Path:
    """customers-1000 with three changed rows, one row with blanked cells only, and two new rows."""
    header, rows = _read_csv(CUSTOMERS_1000)
    col = {name: i for i, name in enumerate(header)}
    rows = [list(r) for r in rows]
    rows[0][col["First Name"]] = "Andy"  # overwrite
    rows[0][col["Company"]] = ""  # empty: must not erase
    rows[1][col["Website"]] = "https://www.new-domain.example/"  # overwrite a normalized field
    rows[2][col["City"]] = ""  # only blanks in this row: nothing changes
    rows[2][col["Phone 2"]] = ""  # (a custom column)
    rows[3][col["Subscription Date"]] = "2030-01-01"  # custom values are overwritten too
    for n, template in enumerate(rows[4:6]):
        new = list(template)
        new[col["Index"]] = f"new-{n}"
        new[col["Email"]] = f"new{n}@new-domain.example"
        rows.append(new)
    return _write_csv(tmp_path / "customers-1000-modified.csv", header, rows)


def test_update_fills_and_overwrites_with_new_values_and_never_erases(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    import_file(database_url, CUSTOMERS_1000)
    before = {r["custom"]["Index"]: r for r in _all_leads(database_url)}

    status = import_file(database_url, _modified_customers(tmp_path), on_duplicate="update")

    assert status["status"] == "completed"
    assert status["results"] == {"imported": 2, "updated": 3, "skipped": 997, "errors": 0}
    after = {r["custom"]["Index"]: r for r in _all_leads(database_url)}
    assert len(after) == 1_002

    andy = after["1"]
    assert (andy["first_name"], andy["full_name"]) == ("Andy", "Andy Goodman")
    assert andy["company"] == before["1"]["company"] == "Stewart-Flynn"
    assert after["2"]["website"] == "new-domain.example"
    assert after["3"] == before["3"], "a row whose only differences are empty cells changes nothing"
    assert after["4"]["custom"]["Subscription Date"] == "2030-01-01"
    assert {k: v for k, v in after["4"]["custom"].items() if k != "Subscription Date"} == {
        k: v for k, v in before["4"]["custom"].items() if k != "Subscription Date"
    }
    untouched = [i for i in before if i not in ("1", "2", "4")]
    assert all(after[i] == before[i] for i in untouched)
    assert after["new-0"]["email"] == "new0@new-domain.example"


def test_update_writes_each_phone_with_its_own_extension(database_url: str, tmp_path: Path) -> None:
    """A new number replaces the old one's extension (with none when it has none); a row without a phone keeps
    both; the same number with a new extension is a change; undo restores the old pairs."""
    list_id = _new_list(database_url)
    header = ["Email", "Phone", "Mobile Phone", "First Name"]
    first = [
        ["ann@x.com", "+1 212 555 0101 x 77", "+1 212 555 0301 ext 5", "Ann"],
        ["bob@x.com", "+1 212 555 0102 x 12", "+1 212 555 0302 x 6", "Bob"],
        ["cy@x.com", "+1 212 555 0103 x 3", "", "Cy"],
    ]
    import_file(database_url, _write_csv(tmp_path / "first.csv", header, first))
    update = [
        ["ann@x.com", "+1 212 555 0199", "+1 212 555 0399", "Ann"],  # new numbers without extensions
        ["bob@x.com", "", "", "Bobby"],  # no phones: the numbers and their extensions stay
        ["cy@x.com", "+1 212 555 0103 x 4", "", "Cy"],  # the same number, another extension
    ]
    status = import_file(database_url, _write_csv(tmp_path / "update.csv", header, update), on_duplicate="update")
    assert status["results"]["updated"] == 3

    def phones() -> list[tuple[Any, ...]]:
        rows = sql_rows(
            database_url,
            "SELECT first_name, phone, phone_ext, mobile_phone, mobile_phone_ext FROM leads WHERE list_id = %s"
            " ORDER BY id",
            list_id,
        )
        return [tuple(r.values()) for r in rows]

    assert phones() == [
        ("Ann", "+12125550199", None, "+12125550399", None),
        ("Bobby", "+12125550102", "12", "+12125550302", "6"),
        ("Cy", "+12125550103", "4", None, None),
    ]
    _undo(database_url, status["importId"])
    assert phones() == [
        ("Ann", "+12125550101", "77", "+12125550301", "5"),
        ("Bob", "+12125550102", "12", "+12125550302", "6"),
        ("Cy", "+12125550103", "3", None, None),
    ]


def test_update_of_the_same_file_changes_nothing(database_url: str) -> None:
    _new_list(database_url)
    import_file(database_url, CUSTOMERS_1000)
    before = _all_leads(database_url)
    status = import_file(database_url, CUSTOMERS_1000, on_duplicate="update")
    assert status["results"] == {"imported": 0, "updated": 0, "skipped": 1_000, "errors": 0}
    assert _all_leads(database_url) == before


# --------------------------------------------------------------------------------------------------------------
# Dedupe settings against the list
# --------------------------------------------------------------------------------------------------------------

DEDUPE_HEADER = ["Email", "Phone", "First Name"]
EXISTING = [["ann@example.com", "+1 415 555 0101", "Ann"], ["bob@example.com", "+1 415 555 0102", "Bob"]]
INCOMING = [
    ["ANN@Example.com", "+1 415 555 0199", "Ann2"],  # Ann's email, new phone
    ["cat@example.com", "(415) 555-0102", "Cat"],  # Bob's phone, new email
    ["dan@example.com", "(415) 555-0104", "Dan"],  # nothing in common
    ["dan@example.com", "(415) 555-0104", "Dan again"],  # Dan twice in the file
]


@pytest.mark.parametrize(
    ("dedupe", "imported", "names"),
    [
        ("email", ["Cat", "Dan"], {"Ann", "Bob", "Cat", "Dan"}),
        ("phone", ["Ann2", "Dan"], {"Ann", "Ann2", "Bob", "Dan"}),
        ("both", ["Dan"], {"Ann", "Bob", "Dan"}),
    ],
)
def test_duplicates_against_the_list_follow_its_dedupe_setting(
    database_url: str, tmp_path: Path, dedupe: DedupeKey, imported: list[str], names: set[str]
) -> None:
    list_id = _new_list(database_url, dedupe=dedupe)
    import_file(database_url, _write_csv(tmp_path / "existing.csv", DEDUPE_HEADER, EXISTING))
    status = import_file(database_url, _write_csv(tmp_path / "incoming.csv", DEDUPE_HEADER, INCOMING))

    assert status["results"]["imported"] == len(imported)
    assert status["results"]["skipped"] == len(INCOMING) - len(imported)
    assert status["results"]["errors"] == 0
    stored = {
        r["first_name"] for r in sql_rows(database_url, "SELECT first_name FROM leads WHERE list_id = %s", list_id)
    }
    assert stored == names
    assert live_leads(database_url, list_id) == len(names)


@pytest.mark.parametrize("dedupe", ["email", "phone", "both"])
def test_update_with_each_dedupe_setting_updates_the_matched_lead(
    database_url: str, tmp_path: Path, dedupe: DedupeKey
) -> None:
    _new_list(database_url, dedupe=dedupe)
    _import_rows(database_url, tmp_path / "existing.csv", [*DEDUPE_HEADER, "Title"], [[*EXISTING[1], ""]])
    same_email = ["bob@example.com", "", "", "CTO"]
    same_phone = ["", "(415) 555-0102", "", "CFO"]
    incoming = {"email": [same_email], "phone": [same_phone], "both": [same_email, same_phone]}[dedupe]
    status = import_file(
        database_url,
        _write_csv(tmp_path / "incoming.csv", [*DEDUPE_HEADER, "Title"], incoming),
        on_duplicate="update",
    )
    [bob] = _all_leads(database_url)
    assert status["results"]["imported"] == 0
    assert bob["first_name"] == "Bob" and bob["email"] == "bob@example.com" and bob["phone"] == "+14155550102"
    # with "both", both rows are the same lead: each updates it in file order, as in a chunk each
    assert bob["title"] == {"email": "CTO", "phone": "CFO", "both": "CFO"}[dedupe]
    assert status["results"]["updated"] == len(incoming)


def test_the_same_file_imported_again_with_update_counts_each_row_against_the_lead_as_it_finds_it(
    database_url: str, tmp_path: Path
) -> None:
    """The second import of one file with --on-duplicate update: Ann's rows find her stored with CTO; the first
    (CEO) changes her, the second (CTO) changes her back, the third brings nothing: 2 updated, 2 skipped, as a row
    per chunk (the fold once counted all skipped since it left her as it found her, and a fold whose first row
    brought the stored title counted that row updated). A changed row counts them again."""
    _new_list(database_url)
    header = ["Email", "First Name", "Title"]
    rows = [["ann@example.com", "Ann", "CEO"], ["ann@example.com", "Ann", "CTO"], ["ANN@example.com", "Ann", ""]]
    rows.append(["bob@example.com", "Bob", "CFO"])
    first = _import_rows(database_url, tmp_path / "a.csv", header, rows, on_duplicate="update")
    again = _import_rows(database_url, tmp_path / "b.csv", header, rows, on_duplicate="update")
    rows[2][2] = "COO"
    changed = _import_rows(database_url, tmp_path / "c.csv", header, rows, on_duplicate="update")

    assert first["results"] == {"imported": 2, "updated": 1, "skipped": 1, "errors": 0}
    assert again["results"] == {"imported": 0, "updated": 2, "skipped": 2, "errors": 0}
    assert changed["results"] == {"imported": 0, "updated": 3, "skipped": 1, "errors": 0}
    assert [lead["title"] for lead in _all_leads(database_url)] == ["COO", "CFO"]


def test_update_in_a_list_deduped_by_both_keys_never_gives_a_lead_another_leads_key(
    database_url: str, tmp_path: Path
) -> None:
    """Ann's email with Bob's phone: the row updates Ann (found by email) but leaves her phone, since giving her
    Bob's would leave two leads of the list sharing a dedupe key; a warning names Bob."""
    _new_list(database_url, dedupe="both")
    _import_rows(database_url, tmp_path / "existing.csv", DEDUPE_HEADER, EXISTING)
    status = _import_rows(
        database_url,
        tmp_path / "incoming.csv",
        [*DEDUPE_HEADER, "Title"],
        [["ann@example.com", "(415) 555-0102 x7", "Ann", "CEO"]],
        on_duplicate="update",
    )
    ann, bob = _all_leads(database_url)
    assert (ann["phone"], ann["phone_ext"], ann["title"]) == ("+14155550101", None, "CEO")
    assert bob["phone"] == "+14155550102"
    assert status["results"] == {"imported": 0, "updated": 1, "skipped": 0, "errors": 0}
    assert status["warnings"] == 1
    [warning] = status["errors"]
    assert (warning["row"], warning["column"], warning["severity"]) == (2, "Phone", "warning")
    assert f"lead {bob['id']} " in warning["reason"]


# --------------------------------------------------------------------------------------------------------------
# Undo
# --------------------------------------------------------------------------------------------------------------


def _undo(database_url: str, import_id: str | int) -> dict[str, int]:
    with connect(database_url) as conn:
        return store.undo_import(conn, int(import_id), "tester")


def test_undo_removes_the_leads_an_import_created(database_url: str) -> None:
    list_id = _new_list(database_url)
    kept = import_file(database_url, DEMO_FILE)
    kept_leads = _all_leads(database_url)
    status = import_file(database_url, CUSTOMERS_1000)
    assert live_leads(database_url, list_id) == len(kept_leads) + status["results"]["imported"]

    result = _undo(database_url, status["importId"])

    assert result == {"removed": status["results"]["imported"], "restored": 0}
    assert _all_leads(database_url) == kept_leads, "only the undone import's leads are gone"
    assert _batch_size(database_url, status["batchId"]) == 0
    with connect(database_url) as conn:
        after = store.import_status(conn, int(status["importId"]))
    assert after["status"] == "undone"
    assert kept["status"] == "completed"


def test_undo_restores_updated_leads_exactly(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    import_file(database_url, CUSTOMERS_1000)
    before = _all_leads(database_url)

    update = import_file(database_url, _modified_customers(tmp_path), on_duplicate="update")
    assert update["results"]["updated"] == 3
    assert _all_leads(database_url) != before

    result = _undo(database_url, update["importId"])

    assert result == {"removed": 2, "restored": 3}
    assert _all_leads(database_url) == before, "every column of every lead is back as it was"
    # the previous values (~1.7 KB a lead, a person's former email and phone among them) were kept for good,
    # though nothing reads an undone import's snapshots
    assert sql_value(database_url, "SELECT count(*) FROM import_updates") == 0


def test_undo_twice_is_a_clear_error(database_url: str) -> None:
    _new_list(database_url)
    status = import_file(database_url, DEMO_FILE)
    _undo(database_url, status["importId"])
    with pytest.raises(PermanentError, match=rf"import {status['importId']} was already undone") as info:
        _undo(database_url, status["importId"])
    assert "\n" not in str(info.value)


def test_an_import_whose_snapshots_the_retention_removed_says_it_can_no_longer_be_undone(
    database_url: str, tmp_path: Path
) -> None:
    """An import that was not undone kept the previous values of every lead it updated (~1.7 KB a lead, a
    person's former email and phone among them) until the lead was deleted. The leads policy removes them with
    the other traces of imports as old as it; undoing that import then says so and when, instead of restoring
    nothing. A newer import keeps its own and is undone as before."""
    _new_list(database_url)
    import_file(database_url, CUSTOMERS_1000)
    old = import_file(database_url, _modified_customers(tmp_path), on_duplicate="update")
    recent = import_file(database_url, CUSTOMERS_1000, on_duplicate="update")
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET created_at = now() - interval '40 days' WHERE id = %s", (old["importId"],))
        retention.set_policy(conn, "leads", 30, list_id=None, actor="dpo")
        report = retention.apply(conn, inbox=tmp_path / "inbox", actor="dpo")
        today = conn.execute("SELECT now()::date AS d").fetchone()
    assert today is not None
    assert report.snapshots == {"prospects": 3} and report.leads == {}
    left = sql_rows(database_url, "SELECT import_id, count(*) AS n FROM import_updates GROUP BY import_id")
    assert left == [{"import_id": int(recent["importId"]), "n": recent["results"]["updated"]}]
    with pytest.raises(PermanentError) as info:
        _undo(database_url, old["importId"])
    assert str(info.value) == (
        f"import {old['importId']} can no longer be undone: the previous values of the leads it updated were"
        f" removed on {today['d']:%Y-%m-%d} by the retention policy (`leads retention show`)"
    )
    assert _undo(database_url, recent["importId"])["restored"] == recent["results"]["updated"]


def test_undo_of_an_unknown_import(database_url: str) -> None:
    with pytest.raises(NotFoundError, match="import 999: not found or not shared with you"):
        _undo(database_url, 999)


def _lead(database_url: str, email: str) -> dict[str, Any]:
    return next(r for r in _all_leads(database_url) if r["email"] == email)


def test_undo_is_refused_while_a_later_import_updated_its_leads_and_newest_first_restores_all(
    database_url: str, tmp_path: Path
) -> None:
    _new_list(database_url)
    header = ["Email", "First Name", "Company", "Title"]
    _import_rows(database_url, tmp_path / "0.csv", header, [["u1@x.com", "Ann", "Acme", "Engineer"]])
    first_state = _all_leads(database_url)
    a = _import_rows(
        database_url, tmp_path / "a.csv", header, [["u1@x.com", "", "AcmeA", "CTO"]], on_duplicate="update"
    )
    b = _import_rows(database_url, tmp_path / "b.csv", header, [["u1@x.com", "", "AcmeB", ""]], on_duplicate="update")
    assert (_lead(database_url, "u1@x.com")["company"], _lead(database_url, "u1@x.com")["title"]) == ("AcmeB", "CTO")

    with pytest.raises(PermanentError, match=rf"import {b['importId']} updated leads it wrote since") as info:
        _undo(database_url, a["importId"])
    assert f"leads imports undo {b['importId']}" in str(info.value)
    assert _lead(database_url, "u1@x.com")["company"] == "AcmeB", "nothing was undone"

    _undo(database_url, b["importId"])
    _undo(database_url, a["importId"])
    assert _all_leads(database_url) == first_state, "undone newest first, the lead is as the first import left it"


def test_undo_is_refused_after_a_later_edit_unless_forced(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    header = ["Email", "First Name", "Company", "Title"]
    _import_rows(database_url, tmp_path / "0.csv", header, [["e1@x.com", "Eve", "Acme", "Engineer"]])
    before = _all_leads(database_url)
    update = _import_rows(
        database_url, tmp_path / "1.csv", header, [["e1@x.com", "", "AcmeNew", ""]], on_duplicate="update"
    )
    edited = _lead(database_url, "e1@x.com")["id"]
    with connect(database_url) as conn:  # as `leads bulk set` writes
        conn.execute("UPDATE leads SET title = 'Manual CTO', updated_at = now() WHERE id = %s", (edited,))

    with pytest.raises(PermanentError, match=rf"1 lead it wrote changed since \(lead {edited}:.*--force"):
        _undo(database_url, update["importId"])
    assert _lead(database_url, "e1@x.com")["title"] == "Manual CTO"

    with connect(database_url) as conn:
        assert store.undo_import(conn, int(update["importId"]), "tester", force=True) == {"removed": 0, "restored": 1}
    assert _all_leads(database_url) == before


def test_undo_is_refused_after_an_edit_that_began_before_the_last_chunk_and_committed_after_it(
    database_url: str, tmp_path: Path
) -> None:
    """A writer's updated_at is its transaction's start: an edit begun while the import was still writing and
    committed after its last chunk is older than that chunk, and yet the undo would overwrite it."""
    _new_list(database_url)
    header = ["Email", "First Name", "Company", "Title"]
    rows = [["e1@x.com", "Eve", "Acme", "Engineer"], ["e2@x.com", "Max", "Beta", "Engineer"]]
    _import_rows(database_url, tmp_path / "0.csv", header, rows)
    edited = _lead(database_url, "e1@x.com")["id"]
    with connect(database_url) as editor:

        def edit_after_the_first_chunk(processed: int, _total: int) -> None:
            if processed == 1:  # the first chunk (e1) is committed, the second (e2) not yet begun
                editor.execute("UPDATE leads SET title = 'Manual CTO', updated_at = now() WHERE id = %s", (edited,))

        update = run_import(
            database_url,
            batch_id="concurrent",
            path=_write_csv(
                tmp_path / "1.csv", header, [["e1@x.com", "", "AcmeNew", ""], ["e2@x.com", "", "BetaNew", ""]]
            ),
            list_name="prospects",
            options=ImportOptions(on_duplicate="update", workers=1, chunk_rows=1),
            user="tester",
            on_progress=edit_after_the_first_chunk,
        )
        editor.commit()
    assert update["results"]["updated"] == 2

    with pytest.raises(PermanentError, match=rf"1 lead it wrote changed since \(lead {edited}:.*--force"):
        _undo(database_url, update["importId"])
    assert _lead(database_url, "e1@x.com")["title"] == "Manual CTO"


@pytest.mark.parametrize("on_duplicate", ["skip", "update"])
def test_undo_is_refused_after_an_edit_in_flight_when_it_began_commits(
    database_url: str, tmp_path: Path, on_duplicate: OnDuplicate
) -> None:
    """`leads imports undo` while a `bulk set` on a lead the import wrote had not committed yet: the undo checked
    the lead as the import left it, waited for the edit, then deleted the lead it created (or restored the one it
    updated) over the edit, silently. It now waits for the edit before its checks, and is refused."""
    _new_list(database_url)
    header = ["Email", "First Name", "Title"]
    _import_rows(database_url, tmp_path / "0.csv", header, [["e1@x.com", "Eve", "Engineer"]])
    if on_duplicate == "update":
        status = _import_rows(
            database_url, tmp_path / "1.csv", header, [["e1@x.com", "", "CTO"]], on_duplicate="update"
        )
    else:
        status = _import_rows(database_url, tmp_path / "1.csv", header, [["e2@x.com", "Max", "CTO"]])
    edited = (
        sql_value(database_url, "SELECT max(id) FROM leads")
        if on_duplicate == "skip"
        else _lead(database_url, "e1@x.com")["id"]
    )
    with pytest.raises(LeadsError) as refused:
        while_uncommitted(  # as `leads bulk set title "Manual CTO"` writes
            database_url,
            lambda editor: editor.execute(
                "UPDATE leads SET title = 'Manual CTO', updated_at = now() WHERE id = %s", (edited,)
            ),
            lambda: _undo(database_url, status["importId"]),
        )

    assert f"1 lead it wrote changed since (lead {edited}:" in str(refused.value)
    assert sql_value(database_url, "SELECT title FROM leads WHERE id = %s", edited) == "Manual CTO"


def test_two_imports_into_one_list_at_once_leave_no_duplicates_by_its_key(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports with overlapping emails into one list: the second matched the list while the first's chunk
    had inserted its leads but not committed them, missed them and inserted them again (`leads import` of two
    3,000-row files sharing 1,500 emails at once left 200 duplicates). It now waits for the first chunk to end."""
    list_id = _new_list(database_url)
    header = ["Email", "First Name"]
    a = _write_csv(tmp_path / "a.csv", header, [["shared@x.com", "Ann"], ["only-a@x.com", "Abe"]])
    b = _write_csv(tmp_path / "b.csv", header, [["shared@x.com", "Ann"], ["only-b@x.com", "Bea"]])
    first_inserted, second_matched = threading.Event(), threading.Event()
    insert_new, match_rows = store._insert_new, store._match_rows

    def insert_and_hold(*args: Any) -> int:
        inserted = insert_new(*args)
        if not first_inserted.is_set():  # the first import's chunk: give the second time to match the list
            first_inserted.set()
            second_matched.wait(timeout=3)
        return inserted

    def match_then_tell(*args: Any) -> int:
        matched = match_rows(*args)
        if first_inserted.is_set():
            second_matched.set()
        return matched

    monkeypatch.setattr(store, "_insert_new", insert_and_hold)
    monkeypatch.setattr(store, "_match_rows", match_then_tell)
    results: dict[str, dict[str, int]] = {}

    def second() -> None:
        first_inserted.wait(timeout=10)
        results["b"] = import_file(database_url, b)["results"]

    thread = threading.Thread(target=second)
    thread.start()
    results["a"] = import_file(database_url, a)["results"]
    thread.join()

    assert (
        sql_value(database_url, "SELECT count(*) - count(DISTINCT email_bidx) FROM leads WHERE list_id = %s", list_id)
        == 0
    ), "no two leads of the list share an email"
    assert live_leads(database_url, list_id) == 3
    assert results["a"]["imported"] == 2
    assert (results["b"]["imported"], results["b"]["skipped"]) == (1, 1)


def test_an_import_stops_when_its_list_is_purged_while_it_runs(database_url: str, tmp_path: Path) -> None:
    """`leads lists delete --purge` while an import writes the list: the chunks after the purge inserted their
    leads live into the deleted list, personal data the purge was to remove for good. The import now stops at
    the next chunk, saying the list was deleted."""
    from leads_pipeline.lib.store.lists import delete_list

    _new_list(database_url)
    rows = [[f"p{i}@x.com", f"P{i}"] for i in range(3)]
    path = _write_csv(tmp_path / "p.csv", ["Email", "First Name"], rows)

    def purge_after_the_first_chunk(processed: int, _total: int) -> None:
        if processed == 1:
            with connect(database_url) as conn:
                delete_list(conn, get_list(conn, "prospects", None), purge=True)

    with pytest.raises(NotFoundError, match=r"list 'prospects' was deleted; import \d+ stopped"):
        run_import(
            database_url,
            batch_id="purged",
            path=path,
            list_name="prospects",
            options=ImportOptions(workers=1, chunk_rows=1),
            user="tester",
            on_progress=purge_after_the_first_chunk,
        )
    assert sql_value(database_url, "SELECT count(*) FROM leads") == 0
    assert sql_value(database_url, "SELECT status FROM imports WHERE batch_id = 'purged'") == "failed"


def test_an_update_import_during_a_merge_updates_the_survivor(database_url: str, tmp_path: Path) -> None:
    """`leads import --on-duplicate update` while `leads dedupe --merge` merged the lead a row finds: the import
    matched the lead, waited for the merge, then updated it although it had been merged away; the survivor (now
    holding its email) kept the old title. The import now waits for the merge before matching."""
    from leads_pipeline.lib.store.merges import merge_cluster

    _new_list(database_url)
    header = ["Email", "First Name", "Last Name", "Company", "Phone", "Title", "City"]
    _import_rows(database_url, tmp_path / "a.csv", header, [["ann@acme.com", "Ann", "Lee", "", "", "", ""]])
    complete = ["", "Annie", "Lee-Smith", "Acme", "+12125550101", "Engineer", "New York"]
    _import_rows(database_url, tmp_path / "b.csv", header, [complete])
    ids = [r["id"] for r in _all_leads(database_url)]
    rows = [["ann@acme.com", "", "", "", "", "CTO", ""]]

    def merging(conn: Any) -> None:  # as `leads dedupe --merge` merges
        merge = merge_cluster(conn, ids, "tester", reasons=["same person"], score=1.0)
        assert merge.survivor_id == ids[1], "the most complete lead survives"

    results = while_uncommitted(
        database_url,
        merging,
        lambda: _import_rows(database_url, tmp_path / "c.csv", header, rows, on_duplicate="update"),
    )

    live = sql_rows(database_url, "SELECT id, title FROM leads WHERE deleted_at IS NULL")
    assert live == [{"id": ids[1], "title": "CTO"}]
    assert results["results"]["updated"] == 1


def test_an_update_import_during_a_bulk_delete_of_the_lead_it_finds_creates_it_again(
    database_url: str, tmp_path: Path
) -> None:
    """`leads import --on-duplicate update` while `leads bulk delete` deleted the lead a row finds: the import
    matched the lead, waited for the delete, then updated the deleted lead ("updated 1", and no live lead had
    the row's values). It now waits before matching, as after the delete: the row is a new lead."""
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store import bulk

    _new_list(database_url)
    header = ["Email", "First Name", "Title"]
    _import_rows(database_url, tmp_path / "a.csv", header, [["ann@acme.com", "Ann", "Engineer"]])
    [deleted] = [r["id"] for r in _all_leads(database_url)]
    results = while_uncommitted(
        database_url,
        lambda conn: bulk.delete(conn, Selection.build(ids=[deleted]), "tester"),  # as `leads bulk delete`
        lambda: _import_rows(
            database_url, tmp_path / "c.csv", header, [["ann@acme.com", "", "CTO"]], on_duplicate="update"
        ),
    )

    live = sql_rows(database_url, "SELECT id, title FROM leads WHERE deleted_at IS NULL")
    assert [r["title"] for r in live] == ["CTO"] and live[0]["id"] != deleted
    assert results["results"]["imported"] == 1
    assert sql_value(database_url, "SELECT title FROM leads WHERE id = %s", deleted) == "Engineer"


def test_undo_is_refused_while_a_merge_holds_a_lead_it_created(database_url: str, tmp_path: Path) -> None:
    from leads_pipeline.lib.store.merges import merge_cluster, undo_merge

    _new_list(database_url)
    _import_rows(database_url, tmp_path / "a.csv", ["Email", "First Name"], [["keep@acme.com", "Karen"]])
    kept = _all_leads(database_url)
    second = _import_rows(database_url, tmp_path / "b.csv", ["Phone", "First Name"], [["+12125550101", "Karen"]])
    ids = [r["id"] for r in _all_leads(database_url)]
    with connect(database_url) as conn:
        merge = merge_cluster(conn, ids, "tester", reasons=["same person"], score=1.0)

    refused = rf"in merge {merge.merge_id}.*leads merges undo {merge.merge_id}"
    with pytest.raises(PermanentError, match=refused), connect(database_url) as conn:
        store.undo_import(conn, int(second["importId"]), "tester", force=True)
    assert live_leads(database_url) == 1, "the merge and both leads stay"

    with connect(database_url) as conn:
        undo_merge(conn, merge.merge_id, "tester")
    _undo(database_url, second["importId"])
    assert _all_leads(database_url) == kept, "the first import's lead is back as it was, the second's is gone"


# --------------------------------------------------------------------------------------------------------------
# Bad input: a one-line error naming the file, and nothing written
# --------------------------------------------------------------------------------------------------------------

# Bytes that are text neither in UTF-8 nor in cp1252 (0x81, 0x8D, 0x8F, 0x90 and 0x9D are no cp1252 character).
UNDECODABLE = b"Email,Name\n" + b"".join(b"a%d@example.com,\xe9\x81\x8d\x8f\x90\x9d\n" % i for i in range(3))


def _huge_field(path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("Email,Notes\n")
        for i in range(1_000):
            handle.write(f"user{i}@example.com,fine\n")
        handle.write("huge@example.com," + "x" * (10 * 1024 * 1024) + "\n")
        handle.write("after@example.com,fine\n")


def _nul_byte_after_the_sample(path: Path) -> None:
    """A text file whose NUL byte comes after the first 256 KB that encoding detection samples."""
    with path.open("wb") as handle:
        handle.write(b"Email,Notes\n")
        for i in range(8_000):
            handle.write(b"user%d@example.com,some notes to pad the file out\n" % i)
        handle.write(b"nul@example.com,bad\x00value\n")


GENERATED: dict[str, Any] = {"ten-megabyte-field": _huge_field, "nul-byte-after-sample": _nul_byte_after_the_sample}

BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    "empty": (b"", "empty"),
    "header-only": (b"First Name,Last Name,Email\n", "only a header row"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 20, "binary"),
    "undecodable": (UNDECODABLE, "encoding"),
    "ten-megabyte-field": (None, "line 1002"),
    "duplicate-headers": (b"Email,Name,email\nann@example.com,Ann,ann@example.org\n", "duplicate header name"),
    "nul-byte-after-sample": (None, "line 8002"),
}


def _assert_nothing_written(database_url: str) -> None:
    for table in ("leads", "imports", "import_errors", "batches", "batch_leads", "import_updates"):
        assert sql_value(database_url, f"SELECT count(*) FROM {table}") == 0, f"{table} has rows"


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_with_one_line_and_nothing_is_written(database_url: str, tmp_path: Path, case: str) -> None:
    _new_list(database_url)
    content, problem = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    if content is None:
        GENERATED[case](path)
    else:
        path.write_bytes(content)

    with pytest.raises(LeadsError) as info:
        import_file(database_url, path, batch_id=f"bad-{case}", chunk_rows=1_000)

    message = str(info.value)
    assert isinstance(info.value, InputFileError)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message
    assert len(message) < 400
    _assert_nothing_written(database_url)


def test_unknown_list_is_refused_with_one_line_and_nothing_is_written(database_url: str) -> None:
    _new_list(database_url, "customers")
    with pytest.raises(LeadsError) as info:
        import_file(database_url, DEMO_FILE, "no-such-list")
    message = str(info.value)
    assert isinstance(info.value, NotFoundError)
    assert "'no-such-list'" in message
    assert "leads lists ls" in message and "customers" not in message  # points to yours, names no other list
    assert "\n" not in message
    _assert_nothing_written(database_url)


def test_wrong_field_counts_and_rows_without_identity_do_not_block_good_rows(database_url: str) -> None:
    _new_list(database_url)
    status = import_file(database_url, DEMO_FILE)
    errors = {(e["row"], e["severity"]): e for e in status["errors"]}
    assert errors[(36, "error")]["reason"] == "expected 12 fields, found 13"
    assert "identify" in errors[(33, "error")]["reason"]
    assert errors[(35, "warning")]["value"] == "not a phone"
    assert status["results"]["errors"] == 2
    assert live_leads(database_url) == status["results"]["imported"] > 30


def test_out_of_range_employee_count_is_a_row_warning_not_a_failed_import(database_url: str, tmp_path: Path) -> None:
    """leads.employee_count is an integer column: a count above 2**31-1 must be caught like any invalid value
    (warning, value kept in custom), not crash the COPY of the whole chunk."""
    list_id = _new_list(database_url)
    path = _write_csv(
        tmp_path / "employees.csv",
        ["Email", "Employees"],
        [["big@example.com", "3000000000"], ["small@example.com", "12"]],
    )
    status = import_file(database_url, path)
    assert status["status"] == "completed"
    assert status["results"]["imported"] == 2
    leads = {r["email"]: r for r in sql_rows(database_url, "SELECT * FROM leads WHERE list_id = %s", list_id)}
    assert leads["small@example.com"]["employee_count"] == 12
    assert leads["big@example.com"]["employee_count"] is None
    assert leads["big@example.com"]["custom"] == {"Employees": "3000000000"}
    assert [(e["row"], e["column"], e["severity"]) for e in status["errors"]] == [(2, "Employees", "warning")]


def test_leads_reachable_only_by_phone_are_not_duplicated_in_an_email_list(database_url: str, tmp_path: Path) -> None:
    """A list deduplicated by email still must not double the leads that have no email when the same file is
    imported twice (or the same phone-only lead appears twice in one file)."""
    list_id = _new_list(database_url, dedupe="email")
    path = _write_csv(
        tmp_path / "phones.csv",
        ["First Name", "Phone", "Email"],
        [
            ["Ann", "+1 415 555 0101", ""],
            ["Bob", "+1 415 555 0102", ""],
            ["Bob", "(415) 555-0102", ""],
            ["Cy", "+1 415 555 0103", "cy@example.com"],
        ],
    )
    first = import_file(database_url, path)
    second = import_file(database_url, path)
    assert live_leads(database_url, list_id) == 3
    assert first["results"]["imported"] == 3
    assert second["results"] == {"imported": 0, "updated": 0, "skipped": 4, "errors": 0}


def test_a_national_number_without_a_country_is_the_default_regions_number(database_url: str, tmp_path: Path) -> None:
    """The same digits in rows without a country, in files imported with different ``--default-region``s, are two
    numbers (030 1234567: a Berlin one with DE, a French one with FR), so two leads in a list deduplicated by phone;
    the same file with the same region again is the same lead (README, Validation)."""
    list_id = _new_list(database_url, dedupe="phone")
    path = _write_csv(tmp_path / "ann.csv", ["First Name", "Last Name", "Phone"], [["Ann", "Lee", "030 1234567"]])
    assert import_file(database_url, path, default_region="DE")["results"]["imported"] == 1
    assert import_file(database_url, path, default_region="FR")["results"]["imported"] == 1
    assert import_file(database_url, path, default_region="DE")["results"]["skipped"] == 1
    assert live_leads(database_url, list_id) == 2
    phones = sql_rows(database_url, "SELECT phone FROM leads WHERE list_id = %s ORDER BY id", list_id)
    assert [r["phone"] for r in phones] == ["+49301234567", "+33301234567"]


def test_values_with_quotes_commas_newlines_and_unicode_survive_the_copy(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    tricky = 'She said "hi", then left; \\N ü 日本 🙂'
    path = _write_csv(
        tmp_path / "tricky.csv",
        ["Email", "Company", "Remark", "Empty"],
        [["ann@example.com", 'Acme "Rockets", Inc.', tricky, ""], ["bob@example.com", "Łódź Sp. z o.o.", "\\N", "x"]],
    )
    status = import_file(database_url, path)
    assert status["results"]["imported"] == 2
    leads = {r["email"]: r for r in _all_leads(database_url)}
    assert leads["ann@example.com"]["company"] == 'Acme "Rockets", Inc.'
    assert leads["ann@example.com"]["custom"] == {"Remark": tricky}  # empty cells are not stored
    assert leads["bob@example.com"]["company"] == "Łódź Sp. z o.o."
    assert leads["bob@example.com"]["custom"] == {"Remark": "\\N", "Empty": "x"}


def test_a_multi_line_custom_column_keeps_its_lines_and_a_name_is_one_line(database_url: str, tmp_path: Path) -> None:
    """A custom text column written in lines (an About column, a CRM's Description exported) was stored as one
    run-on line: outside notes the import made every line break a space. A custom value keeps its lines as a note
    does (CRLF and CR stored as LF, spaces collapsed within each line, blank lines around it trimmed); a name or a
    title with a line break (a cell typed with Alt+Enter) is one line; a custom column without one as before."""
    _new_list(database_url)
    path = tmp_path / "lines.csv"
    path.write_bytes(
        b"Email,First Name,Title,About,Remark\r\n"
        b'ann@example.com,"Ann\r\nMarie"," Head of\nSales ",'
        b'"\r\n Founded  1999\r\n\r\n- Madrid\r- Lisbon  \r\n","  fair  x"\r\n'
    )
    assert import_file(database_url, path)["results"]["imported"] == 1
    [ann] = _all_leads(database_url)
    assert (ann["first_name"], ann["title"]) == ("Ann Marie", "Head of Sales")
    assert ann["custom"] == {"About": "Founded 1999\n\n- Madrid\n- Lisbon", "Remark": "fair x"}


def test_an_update_with_a_new_last_name_alone_keeps_the_full_name_whole(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    header = ["Email", "First Name", "Last Name"]
    _import_rows(database_url, tmp_path / "a.csv", header, [["ana@x.com", "Ana", "García"]])
    _import_rows(database_url, tmp_path / "b.csv", header, [["ana@x.com", "", "Ruiz"]], on_duplicate="update")
    ana = next(r for r in _all_leads(database_url) if r["email"] == "ana@x.com")
    assert (ana["first_name"], ana["last_name"], ana["full_name"]) == ("Ana", "Ruiz", "Ana Ruiz")

    named = _write_csv(tmp_path / "c.csv", ["Email", "Full Name"], [["ana@x.com", "Dr. Ana Ruiz"]])
    import_file(database_url, named, on_duplicate="update")
    ana = next(r for r in _all_leads(database_url) if r["email"] == "ana@x.com")
    assert ana["full_name"] == "Dr. Ana Ruiz", "a full name the file gives is written"
    renamed = _write_csv(tmp_path / "d.csv", ["Email", "Full Name"], [["ana@x.com", "Ana Ortega"]])
    import_file(database_url, renamed, on_duplicate="update")  # splits cleanly into Ana / Ortega: still given
    ana = next(r for r in _all_leads(database_url) if r["email"] == "ana@x.com")
    assert (ana["last_name"], ana["full_name"]) == ("Ortega", "Ana Ortega")


def test_undo_restores_a_full_name_the_name_trigger_would_rewrite(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    header = ["Email", "First Name", "Last Name"]
    _import_rows(database_url, tmp_path / "a.csv", header, [["ana@x.com", "Ana", ""]])
    with connect(database_url) as conn:  # a full name written by hand beside an empty last name
        conn.execute("UPDATE leads SET full_name = 'Ana Ruiz'")
    before = _all_leads(database_url)
    update = _import_rows(database_url, tmp_path / "b.csv", header, [["ana@x.com", "", "Ruiz"]], on_duplicate="update")
    ana = _all_leads(database_url)[0]
    assert (ana["last_name"], ana["full_name"]) == ("Ruiz", "Ana Ruiz")
    _undo(database_url, update["importId"])
    assert _all_leads(database_url) == before, "restored exactly: the full name is not re-derived from 'Ana'"


def test_undo_restores_a_lead_the_import_updated_in_two_chunks(database_url: str, tmp_path: Path) -> None:
    _new_list(database_url)
    header = ["Email", "First Name", "Title", "City"]
    import_file(
        database_url,
        _write_csv(
            tmp_path / "a.csv", header, [["bob@example.com", "Bob", "", "Oslo"], ["cy@example.com", "Cy", "", ""]]
        ),
    )
    before = _all_leads(database_url)
    update = import_file(
        database_url,
        _write_csv(
            tmp_path / "b.csv",
            header,
            [
                ["bob@example.com", "", "CTO", ""],
                ["new@example.com", "New", "", ""],
                ["new@example.com", "", "Intern", ""],  # a lead this import created, updated in the next chunk
                ["bob@example.com", "Robert", "", "Bergen"],
            ],
        ),
        on_duplicate="update",
        chunk_rows=2,
    )
    bob = next(r for r in _all_leads(database_url) if r["email"] == "bob@example.com")
    assert (bob["first_name"], bob["title"], bob["city"]) == ("Robert", "CTO", "Bergen")
    new = next(r for r in _all_leads(database_url) if r["email"] == "new@example.com")
    assert new["title"] == "Intern"
    assert update["results"]["imported"] == 1

    _undo(database_url, update["importId"])
    assert _all_leads(database_url) == before


def test_a_file_without_a_single_email_imports(database_url: str, tmp_path: Path) -> None:
    """A chunk with no email at all (a file without the column, or a stretch of rows without one) is sealed and
    merged like any other: no email domain, nothing to open."""
    list_id = _new_list(database_url)
    path = _write_csv(
        tmp_path / "no-emails.csv",
        ["First Name", "Last Name", "Company", "Phone"],
        [["Ann", "Lee", "Acme", "+1 415 555 0101"], ["Bob", "Ray", "Beta", ""]],
    )
    status = import_file(database_url, path)
    assert status["results"] == {"imported": 2, "updated": 0, "skipped": 0, "errors": 0}
    rows = sql_rows(
        database_url,
        "SELECT email, email_domain, phone IS NOT NULL AS phoned FROM leads WHERE list_id = %s ORDER BY id",
        list_id,
    )
    assert [(r["email"], r["email_domain"], r["phoned"]) for r in rows] == [(None, None, True), (None, None, False)]


def test_rows_known_only_by_name_and_company_find_their_lead_wherever_it_was_made(
    database_url: str, tmp_path: Path
) -> None:
    """The name lookup reads every kind of search partition: a finished import's, the one for leads made or moved
    otherwise, an import's that stopped half-way (no indexes yet), and this import's own earlier chunks."""
    list_id = _new_list(database_url)
    _new_list(database_url, "other")
    header = ["First Name", "Last Name", "Company", "Email"]
    stopped = _import_rows(database_url, tmp_path / "0.csv", header, [["Fay", "Gil", "Foxtrot", "fay@f.io"]])
    with connect(database_url) as conn:  # as an import killed before its last chunk leaves its partition
        conn.execute("UPDATE imports SET status = 'failed' WHERE id = %s", (int(stopped["importId"]),))
        for index in ("trgm", "sort", "name"):
            conn.execute(f"DROP INDEX lead_search_i{int(stopped['importId'])}_{index}")
    rows = [["Ann", "Lee", "Acme", "ann@acme.io"], ["Cy", "Dee", "Gamma", "cy@gamma.io"]]
    import_file(database_url, _write_csv(tmp_path / "1.csv", header, rows))
    import_file(database_url, _write_csv(tmp_path / "b.csv", header, [["Bob", "Ray", "Beta", "bob@beta.io"]]), "other")
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET deleted_at = now() WHERE first_name = 'Cy'")
        conn.execute("UPDATE leads SET list_id = %s WHERE first_name = 'Bob'", (list_id,))

    rows = [
        ["Dan", "Eng", "Delta", "dan@delta.io"],
        ["Eve", "Fox", "Echo", "eve@echo.io"],
        ["Ann", "Lee", "Acme", ""],  # a finished import's lead
        ["Bob", "Ray", "Beta", ""],  # a lead moved in from another list
        ["Cy", "Dee", "Gamma", ""],  # only a deleted lead has this name: a new lead
        ["Dan", "Eng", "Delta", ""],  # the lead this import made two chunks before
        ["Fay", "Gil", "Foxtrot", ""],  # the lead of the import that stopped half-way
        ["Gus", "Hay", "Golf", ""],
    ]
    status = import_file(database_url, _write_csv(tmp_path / "2.csv", header, rows), chunk_rows=2)
    assert status["results"] == {"imported": 4, "updated": 0, "skipped": 4, "errors": 0}
    live = sql_rows(
        database_url,
        "SELECT first_name, count(*) AS n FROM leads WHERE list_id = %s AND deleted_at IS NULL GROUP BY first_name",
        list_id,
    )
    assert {r["first_name"]: r["n"] for r in live} == {n: 1 for n in ("Ann", "Bob", "Cy", "Dan", "Eve", "Fay", "Gus")}


def test_a_row_whose_linkedin_url_finds_no_lead_is_matched_by_name_and_company(
    database_url: str, tmp_path: Path
) -> None:
    """README: a row without the list's key is matched by LinkedIn URL, then by name + company; a lead with another
    LinkedIn URL is another person of the same name."""
    list_id = _new_list(database_url)
    header = ["First Name", "Last Name", "Company", "Email", "LinkedIn"]
    existing = [
        ["Karen", "Keeper", "Acme", "keep@acme.com", ""],
        ["Lee", "Other", "Beta", "", "https://linkedin.com/in/lee-one"],
    ]
    import_file(database_url, _write_csv(tmp_path / "existing.csv", header, existing))
    rows = [
        ["Karen", "Keeper", "Acme", "", "https://linkedin.com/in/karenk"],  # Karen: her lead has no URL
        ["Lee", "Other", "Beta", "", "https://linkedin.com/in/lee-two"],  # another Lee Other: a new lead
        ["Lee", "Other", "Beta", "", ""],  # no URL: the first Lee Other
    ]
    status = import_file(database_url, _write_csv(tmp_path / "rows.csv", header, rows), chunk_rows=1)
    assert status["results"] == {"imported": 1, "updated": 0, "skipped": 2, "errors": 0}
    leads = sql_rows(database_url, "SELECT first_name, linkedin_url FROM leads WHERE list_id = %s ORDER BY id", list_id)
    assert [(r["first_name"], r["linkedin_url"]) for r in leads] == [
        ("Karen", None),
        ("Lee", "https://www.linkedin.com/in/lee-one"),
        ("Lee", "https://www.linkedin.com/in/lee-two"),
    ]
    again = import_file(database_url, _write_csv(tmp_path / "again.csv", header, rows[:1]), on_duplicate="update")
    assert again["results"] == {"imported": 0, "updated": 1, "skipped": 0, "errors": 0}
    karen = sql_rows(database_url, "SELECT linkedin_url FROM leads WHERE first_name = 'Karen'")
    assert [r["linkedin_url"] for r in karen] == ["https://www.linkedin.com/in/karenk"]


def test_a_linkedin_member_id_keeps_its_case_and_finds_its_lead_stored_lower_cased(
    database_url: str, tmp_path: Path
) -> None:
    """A member id ("/in/ACoAA...") is case-sensitive: stored as written, while a lead an earlier import stored
    with it lower-cased is still that member's (and an update gives it the working URL)."""
    list_id = _new_list(database_url)
    header = ["First Name", "Last Name", "Company", "LinkedIn"]
    old = [["Ann", "Lee", "Acme", "https://www.linkedin.com/in/ACoAAB12345/"]]
    import_file(database_url, _write_csv(tmp_path / "old.csv", header, old))
    assert sql_rows(database_url, "SELECT linkedin_url FROM leads WHERE list_id = %s", list_id) == [
        {"linkedin_url": "https://www.linkedin.com/in/ACoAAB12345"}
    ]
    with connect(database_url) as conn:  # as imports before and sql/043 stored it
        conn.execute("UPDATE leads SET linkedin_url = lower(linkedin_url) WHERE list_id = %s", [list_id])
    rows = [
        ["Ann", "Lee", "Acme", "linkedin.com/in/ACoAAB12345"],  # the lead stored lower-cased
        ["Ann", "Lee", "Acme", "linkedin.com/in/ACoAAb12345"],  # another member of that name
    ]
    status = import_file(database_url, _write_csv(tmp_path / "new.csv", header, rows), on_duplicate="update")
    assert status["results"] == {"imported": 1, "updated": 1, "skipped": 0, "errors": 0}
    leads = sql_rows(database_url, "SELECT linkedin_url FROM leads WHERE list_id = %s ORDER BY id", list_id)
    assert [r["linkedin_url"] for r in leads] == [
        "https://www.linkedin.com/in/ACoAAB12345",
        "https://www.linkedin.com/in/ACoAAb12345",
    ]


SECONDARY_HEADER = ["First Name", "Last Name", "Company", "Email", "Phone", "LinkedIn", "Title"]
# Rows that are one lead only through a key tried after the list's own: the first has the list's key, a later one
# lacks it and shares another key with it (a later row also brings a title, so that an update changes the lead).
SECONDARY_ROWS: dict[str, tuple[DedupeKey, list[list[str]]]] = {
    "phone in an email list": (
        "email",
        [
            ["Ann", "Lee", "Acme", "ann@acme.io", "+1 415 555 0101", "", ""],
            ["Bob", "Ray", "Beta", "bob@beta.io", "", "", ""],
            ["", "", "", "", "(415) 555-0101", "", "CTO"],
        ],
    ),
    "email in a phone list": (
        "phone",
        [
            ["Ann", "Lee", "Acme", "ann@acme.io", "+1 415 555 0101", "", ""],
            ["Ann", "", "", "ANN@acme.io", "", "", "CTO"],
        ],
    ),
    "LinkedIn URL": (
        "email",
        [
            ["Ann", "Lee", "Acme", "ann@acme.io", "", "linkedin.com/in/annlee", ""],
            ["Ann", "Lee", "", "", "", "https://www.linkedin.com/in/annlee/", "CTO"],
        ],
    ),
    "name and company": (
        "both",
        [
            ["Ann", "Lee", "Acme Inc", "ann@acme.io", "+1 415 555 0101", "", ""],
            ["ann", "LEE", "ACME, Inc.", "", "", "", "CTO"],
        ],
    ),
    "a chain of secondary keys": (  # the last row shares a key only with the middle one, a duplicate of the first
        "email",
        [
            ["Ann", "Lee", "Acme", "ann@acme.io", "+1 415 555 0101", "", ""],
            ["", "", "", "", "+1 415 555 0101", "linkedin.com/in/annlee", ""],
            ["", "", "", "", "", "linkedin.com/in/annlee", "CTO"],
        ],
    ),
}


def _stored_leads(database_url: str, list_id: int) -> list[dict[str, Any]]:
    """The list's leads as they read (sealed values by their blind index: each sealing differs), in creation
    order."""
    return sql_rows(
        database_url,
        "SELECT first_name, last_name, full_name, company, title, email_bidx, phone_bidx, linkedin_url, name_key,"
        " custom FROM leads WHERE list_id = %s AND deleted_at IS NULL ORDER BY id",
        list_id,
    )


def _imported_in_one_chunk_and_in_many(
    database_url: str,
    path: Path,
    dedupe: DedupeKey,
    on_duplicate: OnDuplicate,
    stored: Path | None = None,
    name: str = "chunks",
) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
    """Import ``path`` into a list of its own (holding the leads of ``stored`` first) a row per chunk and all rows
    in one chunk; check both give the same counts, warnings and leads, and return them."""
    results = []
    for chunk_rows in (1, 50_000):
        list_name = f"{name} of {chunk_rows}"
        list_id = _new_list(database_url, list_name, dedupe=dedupe)
        if stored is not None:
            import_file(database_url, stored, list_name)
        status = import_file(database_url, path, list_name, on_duplicate=on_duplicate, chunk_rows=chunk_rows)
        results.append((status["results"], status["warnings"], _stored_leads(database_url, list_id)))
    assert results[1] == results[0], f"{name}: {dedupe} list, {on_duplicate}: {results[0]} != {results[1]}"
    return results[0]


@pytest.mark.parametrize("on_duplicate", ["skip", "update"])
@pytest.mark.parametrize("case", sorted(SECONDARY_ROWS))
def test_rows_of_one_lead_by_a_secondary_key_give_the_same_leads_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path, case: str, on_duplicate: OnDuplicate
) -> None:
    """A row that finds an earlier row's lead only by its other contact key, LinkedIn URL or name + company is
    that lead whether the earlier row was merged in an earlier chunk or is in the same chunk."""
    dedupe, rows = SECONDARY_ROWS[case]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, leads = _imported_in_one_chunk_and_in_many(database_url, path, dedupe, on_duplicate)
    # a skipped row adds no key to the lead: the chain's last row finds the lead only through the middle row's URL
    chained = case == "a chain of secondary keys" and on_duplicate == "update"
    assert len(leads) == len(rows) - 1 - chained
    assert counts["imported"] == len(leads)
    assert leads[0]["title"] == ("CTO" if on_duplicate == "update" else None)


def test_an_update_counts_a_row_that_changes_nothing_as_skipped_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path
) -> None:
    rows = [
        ["Ann", "Lee", "Acme", "ann@acme.io", "+1 415 555 0101", "", ""],
        ["Ann", "", "", "ANN@acme.io", "", "", ""],  # nothing new
        ["", "", "", "", "(415) 555-0101", "", "CTO"],  # a title
        ["", "", "Acme", "ann@acme.io", "", "", "CTO"],  # nothing new since the row before
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, _ = _imported_in_one_chunk_and_in_many(database_url, path, "email", "update")
    assert counts == {"imported": 1, "updated": 1, "skipped": 2, "errors": 0}


def test_an_update_by_a_name_kept_whole_keeps_the_two_names_it_is_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path
) -> None:
    """A Japanese name in a full-name column is kept whole in the last name (山田花子, no first name). On update it
    overwrote the last name of the lead of 花子 and 山田 (two columns) and left its first name: 花子 / 山田花子,
    whose full name followed as 山田花子花子. A name kept whole that is the lead's two names joined (or an earlier
    row's of the same lead) brings nothing: the two names stay, in one chunk as in many."""
    header = ["First Name", "Last Name", "Full Name", "Email", "Title"]
    stored = _write_csv(tmp_path / "stored.csv", header, [["花子", "山田", "", "hanako@example.jp", ""]])
    rows = [
        ["", "", "山田花子", "hanako@example.jp", ""],  # the stored lead's name: nothing new
        ["太郎", "山田", "", "taro@example.jp", ""],
        ["", "", "山田太郎", "taro@example.jp", "CTO"],  # an earlier row's name, and a title
    ]
    path = _write_csv(tmp_path / "rows.csv", header, rows)
    counts, _, leads = _imported_in_one_chunk_and_in_many(database_url, path, "email", "update", stored=stored)
    assert counts == {"imported": 1, "updated": 1, "skipped": 1, "errors": 0}
    names = [(lead["first_name"], lead["last_name"], lead["full_name"], lead["title"]) for lead in leads]
    assert names == [("花子", "山田", "山田花子", None), ("太郎", "山田", "山田太郎", "CTO")]


def test_rows_sharing_no_key_that_find_one_stored_lead_each_update_it_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path
) -> None:
    """In a list deduplicated by both keys, one row finds the stored lead by its email, a later one by its phone:
    a row per chunk, both update the lead in file order; in one chunk only the first was merged (the second counted
    skipped and its company lost)."""
    stored = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["Ann", "Lee", "Acme", "ann@acme.io",
                        "+1 415 555 0101", "", ""]])  # fmt: skip
    rows = [
        ["", "", "", "ann@acme.io", "", "", "CTO"],
        ["", "", "Acme Labs", "", "(415) 555-0101", "", "CEO"],
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, [lead] = _imported_in_one_chunk_and_in_many(database_url, path, "both", "update", stored)
    assert counts == {"imported": 0, "updated": 2, "skipped": 0, "errors": 0}
    assert (lead["company"], lead["title"]) == ("Acme Labs", "CEO")


def test_a_row_finds_a_lead_by_the_keys_it_holds_now_not_by_those_an_earlier_row_overwrote(
    database_url: str, tmp_path: Path
) -> None:
    """On update the second row takes the first row's lead by its phone and gives it its email: the third row's
    email is no longer the lead's, so it is a lead of its own, a row per chunk as in one chunk (in one chunk all
    three rows were folded into one lead by the email the lead had lost). The fourth finds the second lead by its
    email and does not give it the first lead's phone."""
    rows = [
        ["", "", "", "e1@acme.io", "+1 415 555 0101", "", ""],
        ["", "", "", "e2@acme.io", "+1 415 555 0101", "", ""],
        ["", "", "", "e1@acme.io", "+1 415 555 0103", "", "CTO"],
        ["", "", "", "e1@acme.io", "+1 415 555 0101", "", ""],  # the first lead's phone: not given to the second
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, leads = _imported_in_one_chunk_and_in_many(database_url, path, "both", "update")
    assert counts == {"imported": 2, "updated": 1, "skipped": 1, "errors": 0}
    assert [(lead["email_bidx"], lead["phone_bidx"]) for lead in leads] == [
        (bidx("e2@acme.io"), bidx("+14155550101", "phone")),
        (bidx("e1@acme.io"), bidx("+14155550103", "phone")),
    ]


def test_a_row_without_email_does_not_find_the_lead_a_later_row_creates(database_url: str, tmp_path: Path) -> None:
    """A list deduplicated by email holds Ann with phone 0101. The file's first row gives Ann another phone; the
    second has no email and phone 0101, which no lead has any more when it is read; the third, Bo, has phone
    0101 too: three leads, a row per chunk as in one chunk (in one chunk the second row waited for a second round
    of the merge, by when Bo's lead had been created, and was folded into it)."""
    stored_path = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["Ann", "", "", "ann@acme.io",
                             "+1 415 555 0101", "", ""]])  # fmt: skip
    rows = [
        ["", "", "", "ann@acme.io", "+1 415 555 0109", "", ""],
        ["", "", "", "", "+1 415 555 0101", "", "CTO"],
        ["Bo", "", "", "bo@acme.io", "+1 415 555 0101", "", ""],
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, leads = _imported_in_one_chunk_and_in_many(database_url, path, "email", "update", stored_path)
    assert counts == {"imported": 2, "updated": 1, "skipped": 0, "errors": 0}
    assert [(lead["email_bidx"], lead["phone_bidx"], lead["title"]) for lead in leads] == [
        (bidx("ann@acme.io"), bidx("+14155550109", "phone"), None),
        (None, bidx("+14155550101", "phone"), "CTO"),
        (bidx("bo@acme.io"), bidx("+14155550101", "phone"), None),
    ]


# Random files over a tiny alphabet of keys (collisions everywhere), imported a row per chunk and in one chunk.
_NAMES = [("Ann", "Lee", "Acme"), ("Bo", "Ray", "Beta")]
_EMAILS = ["e1@acme.io", "e2@acme.io", "e3@acme.io"]
_PHONES = ["+1 415 555 0101", "+1 415 555 0102", "+1 415 555 0103"]
_URLS = ["linkedin.com/in/a1", "linkedin.com/in/b2"]


def _random_row(rng: random.Random) -> list[str]:
    """A row of SECONDARY_HEADER, each key present or not (a row can have none, and is rejected)."""
    name = rng.choice([*_NAMES, ("", "", ""), ("", "", "")])
    return [*name, rng.choice([*_EMAILS, "", ""]), rng.choice([*_PHONES, "", ""]), rng.choice([*_URLS, "", "", ""]),
            rng.choice(["CTO", "CEO", "", ""])]  # fmt: skip


def _random_case(seed: int) -> tuple[DedupeKey, OnDuplicate, list[list[str]], list[list[str]]]:
    """The list's dedupe key, the import's mode, 0-3 rows of leads stored before, and the file's 3-8 rows."""
    rng = random.Random(seed)
    dedupe: DedupeKey = rng.choice(["email", "phone", "both"])
    on_duplicate: OnDuplicate = rng.choice(["skip", "update"])
    stored = [_random_row(rng) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
    return dedupe, on_duplicate, stored, [_random_row(rng) for _ in range(rng.randint(3, 8))]


def _check_random_files(database_url: str, tmp_path: Path, seeds: Sequence[int]) -> None:
    """Each seed's file imported a row per chunk and in one chunk, into lists holding the same stored leads, gives
    the same leads (in creation order) and the same counts and warnings."""
    for seed in seeds:
        dedupe, on_duplicate, stored, rows = _random_case(seed)
        path = _write_csv(tmp_path / f"rows-{seed}.csv", SECONDARY_HEADER, rows)
        stored_path = _write_csv(tmp_path / f"stored-{seed}.csv", SECONDARY_HEADER, stored) if stored else None
        _imported_in_one_chunk_and_in_many(database_url, path, dedupe, on_duplicate, stored_path, f"seed {seed}")


def test_random_files_give_the_same_leads_and_counts_in_one_chunk_as_in_many(database_url: str, tmp_path: Path) -> None:
    """Seeds 14, 15 and 19 found that on skip a row of the chunk found by the keys of an earlier one that was
    skipped as a stored lead's duplicate (so its keys went to no lead) was skipped too, where a row per chunk it
    became a lead: e.g. a list by email holding e3/p1, rows e3/p3 then Bo with p3 and no email, Bo was lost."""
    _check_random_files(database_url, tmp_path, [4, 8, 14, 15, 19])


def test_random_files_folded_on_update_against_stored_leads(database_url: str, tmp_path: Path) -> None:
    """On update, rows of one chunk are folded before the list's leads are seen: the folded row found a stored
    lead by a key only a later row brought (seed 65: a list by phone holding Bo Ray of Beta; rows e2, then Bo Ray
    of Beta with e2: a row per chunk Bo's row updates the e2 lead, in one chunk the fold updated the stored Bo and
    the e2 lead was never made); rows of one fold found other stored leads than the fold (seed 11, a list by
    phone); and a row between a fold's rows found its stored lead and changed it (seed 136, a list by both)."""
    _check_random_files(database_url, tmp_path, [11, 65, 136])


def test_the_rows_of_a_fold_that_finds_a_stored_lead_count_against_it_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path
) -> None:
    """A list by email holds e1 with title CEO; rows (e1, CEO) then (e1, CTO): a row per chunk the first changes
    nothing (skipped) and the second the title (updated). In one chunk the fold counted both updated: its first
    row's values, and a later row's values no earlier row brought, were counted as changes without comparing
    them with the stored lead. Seeds 24, 112, 154, 177, 253, 264, 295 and 341 of the random files found it and its
    kin: in a list by both, a fold's row whose phone another lead holds (not written, so no change, and a warning
    of its own where the fold warned only for its last phone)."""
    stored = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["", "", "", "e1@acme.io", "", "", "CEO"]])
    rows = [["", "", "", "e1@acme.io", "", "", "CEO"], ["", "", "", "e1@acme.io", "", "", "CTO"]]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, [lead] = _imported_in_one_chunk_and_in_many(database_url, path, "email", "update", stored)
    assert counts == {"imported": 0, "updated": 1, "skipped": 1, "errors": 0}
    assert lead["title"] == "CTO"
    _check_random_files(database_url, tmp_path, [24, 112, 154, 177, 253, 264, 295, 341])


def test_folds_whose_rows_find_another_stored_lead_by_what_the_chunk_gave_it_are_merged_row_by_row(
    database_url: str, tmp_path: Path
) -> None:
    """Seeds of the random files whose leads differed in one chunk: a row between a fold's rows found a stored lead
    and gave it the name (seed 351), the LinkedIn URL (60, 332) or the email (219: found by the row as read, not
    by its fold) a later row of the fold has, and that older lead is the one the later row finds; a row of another
    fold, as read, found the fold's stored lead between its rows (70); a fold's later row with a LinkedIn URL
    joined it by name, which finds no stored lead with another URL (214)."""
    _check_random_files(database_url, tmp_path, [60, 70, 214, 219, 332, 351])


def test_a_suppressed_row_of_a_fold_merged_row_by_row_is_dropped(database_url: str, tmp_path: Path) -> None:
    """A fold merged a row at a time (its first row finds no lead, the fold found the stored Bo by the name a later
    row brought) puts its rows back as read: the first one's email, suppressed, was not the fold's (the later row's
    email replaced it), and must still keep the row out, as a row per chunk."""
    stored = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["Bo", "Ray", "Beta", "", "", "", ""]])
    rows = [
        ["", "", "", "gone@acme.io", "", "linkedin.com/in/a1", ""],
        ["Bo", "Ray", "Beta", "e2@acme.io", "", "linkedin.com/in/a1", "CTO"],
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO suppressions (hash, kind, reason, created_by) VALUES (%s, 'email', 'erasure request', 'x')",
            (bidx("gone@acme.io"),),
        )
    counts, _, [lead] = _imported_in_one_chunk_and_in_many(database_url, path, "phone", "update", stored)
    assert counts == {"imported": 0, "updated": 1, "skipped": 0, "errors": 1}
    assert (lead["email_bidx"], lead["title"]) == (bidx("e2@acme.io"), "CTO")


def test_a_row_between_the_rows_of_a_fold_that_changes_its_stored_lead_is_merged_before_them(
    database_url: str, tmp_path: Path
) -> None:
    """A list by email holds e3 with phone 0101. The first and third rows (no email, phone 0101) are one fold, the
    second (e3, phone 0103) finds the same stored lead: a row per chunk the second row gives the lead phone 0103,
    so the third finds no lead and is one of its own. In one chunk the fold updated the stored lead with the third
    row's URL before the second row was merged (seed 14 on update)."""
    stored = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["", "", "", "e3@acme.io", "+1 415 555 0101",
                        "", ""]])  # fmt: skip
    rows = [
        ["", "", "", "", "+1 415 555 0101", "", "CEO"],
        ["", "", "", "e3@acme.io", "+1 415 555 0103", "", ""],
        ["", "", "", "", "+1 415 555 0101", "linkedin.com/in/a1", ""],
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, _, leads = _imported_in_one_chunk_and_in_many(database_url, path, "email", "update", stored)
    assert counts == {"imported": 1, "updated": 2, "skipped": 0, "errors": 0}
    assert [(lead["email_bidx"], lead["phone_bidx"], lead["linkedin_url"], lead["title"]) for lead in leads] == [
        (bidx("e3@acme.io"), bidx("+14155550103", "phone"), None, "CEO"),
        (None, bidx("+14155550101", "phone"), "https://www.linkedin.com/in/a1", None),
    ]


def test_rows_of_one_fold_that_find_two_stored_leads_update_each_in_one_chunk_as_in_many(
    database_url: str, tmp_path: Path
) -> None:
    """In a list by both keys holding e1 and, apart, p1: the first row (e1, p1) finds the e1 lead (its phone not
    written: the other lead has it), the second (e2, p1) the p1 lead. In one chunk the rows were folded into one
    (e2, p1) before the list was seen, which updated the p1 lead alone: the e1 lead kept no title, the warning was
    lost, and both rows counted updated."""
    stored = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, [["", "", "", "e1@acme.io", "", "", ""],
                        ["", "", "", "", "+1 415 555 0101", "", ""]])  # fmt: skip
    rows = [
        ["", "", "", "e1@acme.io", "+1 415 555 0101", "", "CTO"],
        ["", "", "", "e2@acme.io", "+1 415 555 0101", "", "CEO"],
    ]
    path = _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows)
    counts, warnings, leads = _imported_in_one_chunk_and_in_many(database_url, path, "both", "update", stored)
    assert (counts, warnings) == ({"imported": 0, "updated": 2, "skipped": 0, "errors": 0}, 1)
    assert [(lead["email_bidx"], lead["phone_bidx"], lead["title"]) for lead in leads] == [
        (bidx("e1@acme.io"), None, "CTO"),
        (bidx("e2@acme.io"), bidx("+14155550101", "phone"), "CEO"),
    ]


def _plans_of_overcounted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The plans of the fold counts' queries (``_overcounted``) of the imports that follow, each explained before
    it runs."""
    plans: list[dict[str, Any]] = []
    overcounted = store._overcounted

    class Explained:
        """The merge's connection, explaining each query before it runs."""

        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, query: Any, params: Any = None) -> Any:
            plans.append(self.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query)).fetchone())
            return self.conn.execute(query, params)

    monkeypatch.setattr(store, "_overcounted", lambda conn, *args: overcounted(Explained(conn), *args))
    return plans


def _joins_by_filter(plan: dict[str, Any]) -> list[str]:
    """The nested loops of a plan that compare each outer row with each inner one (a join filter, no index)."""
    found = [plan["Join Filter"]] if plan["Node Type"] == "Nested Loop" and "Join Filter" in plan else []
    return found + [f for child in plan.get("Plans", []) for f in _joins_by_filter(child)]


def test_the_rows_of_folds_that_find_stored_leads_are_counted_without_pairing_every_fold_with_every_row(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file imported again with update, each lead of a list by both a fold of three rows: the rows that change
    their stored lead are counted per fold (``_overcounted``). Joined back to the staged rows by fold, the counts
    were planned as a nested loop over every fold and every staged row (the planner expects 200 folds): a 50k-row
    chunk of 14k folds compared 160M pairs, half of its merge."""
    stored = [["", "", "", f"e{i}@acme.io", f"+1 415 555 {i:04d}", "", "CEO"] for i in range(2000)]
    path = _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, stored)
    rows = [[*row[:6], title] for row in stored for title in ("CEO", "CTO", "CTO")]
    _new_list(database_url, dedupe="both")
    import_file(database_url, path)
    plans = _plans_of_overcounted(monkeypatch)
    status = _import_rows(database_url, tmp_path / "rows.csv", SECONDARY_HEADER, rows, on_duplicate="update")
    assert status["results"] == {"imported": 0, "updated": 2000, "skipped": 4000, "errors": 0}
    assert plans
    assert [f for plan in plans for f in _joins_by_filter(plan["QUERY PLAN"][0]["Plan"])] == []


def _subplans(plan: dict[str, Any]) -> list[str]:
    """The subqueries of a plan run per row of the node holding them (an EXISTS in a select list)."""
    found = [plan["Subplan Name"]] if plan.get("Parent Relationship") == "SubPlan" else []
    return found + [name for child in plan.get("Plans", []) for name in _subplans(child)]


def test_the_rows_of_folds_whose_keys_other_leads_hold_are_counted_without_looking_them_up_again(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list by both holds e0, e1 and e2, each with a phone; the file's rows are folds by email, and a row of each
    brings the next lead's phone (not written: a warning). Counting the folds' rows against their leads looked up
    whether another lead holds a row's key by a probe of the list's leads per row and key column (~0.5 s per 100k
    rows); the lookup that warned for those rows has found them: the counts, warnings and leads are still those
    of a row per chunk, and the count runs no subquery per row."""
    stored = [["", "", "", f"e{i}@acme.io", f"+1 415 555 {i:04d}", "", "CEO"] for i in range(3)]
    rows = [
        row
        for i in range(3)
        for row in (
            ["", "", "", f"e{i}@acme.io", "", "", "CTO"],
            ["", "", "", f"e{i}@acme.io", f"+1 415 555 {(i + 1) % 3:04d}", "", "CTO"],
            ["", "", "", f"e{i}@acme.io", f"+1 415 555 {i:04d}", "", "CFO"],
        )
    ]
    plans = _plans_of_overcounted(monkeypatch)
    counts, warnings, leads = _imported_in_one_chunk_and_in_many(
        database_url,
        _write_csv(tmp_path / "rows.csv", SECONDARY_HEADER, rows),
        "both",
        "update",
        _write_csv(tmp_path / "stored.csv", SECONDARY_HEADER, stored),
    )
    assert counts == {"imported": 0, "updated": 6, "skipped": 3, "errors": 0} and warnings == 3
    assert [lead["title"] for lead in leads] == ["CFO"] * 3
    assert plans
    assert [name for plan in plans for name in _subplans(plan["QUERY PLAN"][0]["Plan"])] == []


# --------------------------------------------------------------------------------------------------------------
# An import that dies half-way
# --------------------------------------------------------------------------------------------------------------


def test_crash_half_way_then_rerun_finishes_without_duplicates(
    database_url: str, customers_10000: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    list_id = _new_list(database_url)
    real_merge = store.merge_chunk
    calls: list[int] = []

    def crash_on_third_chunk(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["chunk"].index)
        if len(calls) == 3:
            # half of the chunk is written in the transaction, then the process "dies"
            real_merge(*args, **kwargs)
            raise RuntimeError("simulated crash")
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(store, "merge_chunk", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_file(database_url, customers_10000, batch_id="batch-crash", chunk_rows=1_000)

    [record] = sql_rows(database_url, "SELECT * FROM imports")
    assert (record["status"], record["chunks_done"], record["processed_rows"]) == ("failed", 2, 2_000)
    assert "simulated crash" in record["failure"]
    assert live_leads(database_url, list_id) == 2_000, "the crashed chunk left nothing behind"

    monkeypatch.setattr(store, "merge_chunk", real_merge)
    status = import_file(database_url, customers_10000, batch_id="batch-crash", chunk_rows=50_000)

    assert status["importId"] == str(record["id"]), "the re-run resumes the same import"
    assert status["status"] == "completed"
    assert status["results"] == {"imported": 10_000, "updated": 0, "skipped": 0, "errors": 0}
    assert status["progress"] == {"processed": 10_000, "total": 10_000, "percentage": 100.0}
    assert status["completedAt"] is not None
    assert live_leads(database_url, list_id) == 10_000
    assert _duplicate_emails(database_url) == []
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 1
    [done] = sql_rows(database_url, "SELECT chunks_done, chunk_rows FROM imports")
    assert done == {"chunks_done": 10, "chunk_rows": 1_000}, "the resumed run kept the original chunk size"
    # the rows each chunk recorded as problems are not recorded twice
    assert (
        sql_value(
            database_url,
            "SELECT count(*) FROM (SELECT row_number, column_name FROM import_errors"
            " GROUP BY row_number, column_name HAVING count(*) > 1) d",
        )
        == 0
    )

    # a completed batch is returned as it is
    assert import_file(database_url, customers_10000, batch_id="batch-crash") == status


def _big_file(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("Email,First Name,Last Name\n")
        for i in range(rows):
            handle.write(f"person{i}@example.com,First{i},Last{i}\n")
    return path


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "LEADS_"))}
    env.update(DATABASE_URL=database_url, LEADS_HOME=str(tmp_path / "home"), LEADS_USER="tester")
    return env


def _leads_command() -> list[str]:
    executable = Path(sys.executable).parent / "leads"
    return (
        [str(executable)]
        if executable.exists()
        else [sys.executable, "-c", "from leads_pipeline.cli import main; main()"]
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes this test starts; their process groups are killed at the end whatever happens."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the import's worker processes, if any are left
        process.wait(timeout=30)


KILLED_CHUNK = 5_000
KILLED_ROWS = 26_000
"""The import ``_killed_half_way`` kills: six chunks (`leads import --chunk-rows`), prepared by chunk workers."""


def _killed_half_way(
    database_url: str, command: list[str], env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    """Run `leads import` (``command``) and ``kill -9`` it alone (as the OOM killer or ``kill -9 PID`` does, not
    its process group) once its first chunk is committed; its record, as stored. Every process it started ends
    with it: the chunk workers and their forkserver were left waiting for good (two ``multiprocessing.forkserver``
    processes a kill, and the resource tracker)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    started.append(process)
    deadline = time.monotonic() + 120
    record: dict[str, Any] | None = None
    with connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline and process.poll() is None:
            record = conn.execute("SELECT id, chunks_done FROM imports WHERE status = 'processing'").fetchone()
            if record is not None and record["chunks_done"] >= 1:
                break
            time.sleep(0.02)
    assert process.poll() is None, f"leads import ended before it could be killed: {process.communicate()}"
    assert record is not None and record["chunks_done"] >= 1
    children = psutil.Process(process.pid).children(recursive=True)
    assert any("multiprocessing.forkserver" in " ".join(child.cmdline()) for child in children), "chunk workers"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    left = survivors(children, timeout_s=10)
    assert left == [], f"processes of the killed import still run: {left}"
    [killed] = sql_rows(database_url, "SELECT * FROM imports WHERE id = %s", record["id"])
    assert killed["status"] == "processing", "as stored: nothing could write its end"
    assert 1 <= killed["chunks_done"] < -(-KILLED_ROWS // KILLED_CHUNK)
    return killed


def _staged_chunks(database_url: str) -> int:
    """How many chunks' tables the import's workers staged are left (``store.staging``)."""
    return int(sql_value(database_url, "SELECT count(*) FROM pg_tables WHERE schemaname = %s", staging.SCHEMA))


def _leads_json(env: dict[str, str], *args: str) -> Any:
    """The JSON a ``leads`` command prints."""
    result = subprocess.run(
        [*_leads_command(), *args, "--json"], env=env, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def test_kill_9_of_leads_import_then_rerun_resumes_the_same_import(
    database_url: str, tmp_path: Path, cli_env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    """The killed import read "processing" at its committed rows for good; it reads "interrupted" now (no
    process holds its lock), in `imports show` and `imports list`."""
    list_id = _new_list(database_url, "killed")
    path = _big_file(tmp_path / "big.csv", KILLED_ROWS)
    command = [*_leads_command(), "import", str(path), "--list", "killed", "--chunk-rows", str(KILLED_CHUNK), "--json"]

    killed = _killed_half_way(database_url, command, cli_env, started)
    assert live_leads(database_url, list_id) == KILLED_CHUNK * killed["chunks_done"], "whole chunks or nothing"
    shown = _leads_json(cli_env, "imports", "show", str(killed["id"]))
    assert (shown["status"], shown["progress"]["processed"]) == ("interrupted", KILLED_CHUNK * killed["chunks_done"])
    assert [i["status"] for i in _leads_json(cli_env, "imports", "list")] == ["interrupted"]
    shown_text = subprocess.run(
        [*_leads_command(), "imports", "show", str(killed["id"])], env=cli_env, capture_output=True, check=True
    ).stdout.decode()
    assert f"import {killed['id']} interrupted" in shown_text
    assert "the same `leads import` of the file into the list resumes it" in " ".join(shown_text.split())

    rerun = subprocess.run(command, env=cli_env, capture_output=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()
    status = json.loads(rerun.stdout)
    assert status["importId"] == str(killed["id"])
    assert status["batchId"] == killed["batch_id"]
    assert status["status"] == "completed"
    assert status["results"] == {"imported": KILLED_ROWS, "updated": 0, "skipped": 0, "errors": 0}
    assert live_leads(database_url, list_id) == KILLED_ROWS
    assert _duplicate_emails(database_url) == []
    assert sql_value(database_url, "SELECT count(*) FROM imports") == 1
    assert _staged_chunks(database_url) == 0, "the chunks the killed run's workers staged were dropped"


def _stored_as_is(database_url: str) -> list[tuple[Any, ...]]:
    """Every lead row as stored, sealed values as they are (sealed with the keys of the CLI's leads home)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT * FROM leads.leads ORDER BY id").fetchall()


def test_an_import_killed_half_way_is_undone_exactly_and_imported_anew_after(
    database_url: str, tmp_path: Path, cli_env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    """`leads imports undo` of a killed import said "still processing" for good. Interrupted, it is undone as a
    failed one is: the leads its committed chunks created are removed and those they updated are as they were
    (every column); the same `leads import` after the undo imports the file anew, as a new import."""
    list_id = _new_list(database_url, "killed")
    known = _write_csv(
        tmp_path / "known.csv",
        ["Email", "First Name", "Last Name", "Title"],
        [[f"person{i}@example.com", f"Known{i}", "", "CEO"] for i in range(0, KILLED_ROWS, 500)],
    )
    _leads_json(cli_env, "import", str(known), "--list", "killed")  # sealed with the keys of the CLI's home
    before = _stored_as_is(database_url)
    path = _big_file(tmp_path / "big.csv", KILLED_ROWS)
    command = [*_leads_command(), "import", str(path), "--list", "killed", "--on-duplicate", "update"]
    command += ["--chunk-rows", str(KILLED_CHUNK), "--json"]

    killed = _killed_half_way(database_url, command, cli_env, started)
    updated = KILLED_CHUNK // 500 * killed["chunks_done"]  # the known leads among the committed chunks' rows
    known_count = KILLED_ROWS // 500
    assert killed["updated"] == updated
    assert (
        sql_value(database_url, "SELECT count(*) FROM leads WHERE first_name LIKE 'Known%%'") == known_count - updated
    )
    undone = subprocess.run(
        [*_leads_command(), "imports", "undo", str(killed["id"])], env=cli_env, capture_output=True, check=False
    )
    assert undone.returncode == 0, undone.stderr.decode()
    removed = KILLED_CHUNK * killed["chunks_done"] - updated
    assert f"{removed:,} leads removed, {updated:,} restored" in undone.stdout.decode()
    assert _stored_as_is(database_url) == before

    again = subprocess.run(command, env=cli_env, capture_output=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr.decode()
    status = json.loads(again.stdout)
    assert status["importId"] != str(killed["id"]), "the undone import is not resumed"
    assert (status["status"], status["results"]["imported"], status["results"]["updated"]) == (
        "completed",
        KILLED_ROWS - known_count,
        known_count,
    )
    assert live_leads(database_url, list_id) == KILLED_ROWS
    assert _leads_json(cli_env, "imports", "show", str(killed["id"]))["status"] == "undone"
    assert _staged_chunks(database_url) == 0, "the chunks the killed run's workers staged were dropped"


# --------------------------------------------------------------------------------------------------------------
# Status, history, errors
# --------------------------------------------------------------------------------------------------------------


def test_import_status_has_the_prd_shape(database_url: str) -> None:
    list_id = _new_list(database_url)
    status = import_file(database_url, DEMO_FILE)
    with connect(database_url) as conn:
        assert store.import_status(conn, int(status["importId"])) == status
        history = [store.import_summary(r) for r in store.list_imports(conn, [list_id])]
        errors = store.import_errors(conn, int(status["importId"]))

    assert set(status) >= {"importId", "status", "progress", "results", "errors", "completedAt"}
    assert isinstance(status["importId"], str) and status["importId"].isdigit()
    assert status["status"] == "completed"
    assert status["progress"] == {"processed": 36, "total": 36, "percentage": 100.0}
    # 36 rows: 33 new, row 31 repeats row 4's email in upper case, rows 33 (no identity) and 36 (13 fields) rejected
    assert status["results"] == {"imported": 33, "updated": 0, "skipped": 1, "errors": 2}
    datetime.fromisoformat(status["completedAt"])
    assert all(set(e) == {"row", "column", "value", "reason", "severity"} for e in status["errors"])
    assert [(e["row"], e["severity"]) for e in status["errors"]] == [(33, "error"), (35, "warning"), (36, "error")]
    assert json.loads(json.dumps(status)) == status, "the document is plain JSON"

    assert [h["importId"] for h in history] == [status["importId"]], "history names imports as status does"
    assert history[0]["list"] == "prospects" and history[0]["results"] == status["results"]
    assert history[0]["completedAt"] == status["completedAt"]
    assert json.loads(json.dumps(history)) == history
    assert [e["row_number"] for e in errors] == [33, 35, 36]


def test_import_status_of_unknown_import(database_url: str) -> None:
    with connect(database_url) as conn, pytest.raises(NotFoundError, match="import 42: not found or not shared"):
        store.import_status(conn, 42)


def test_list_lead_count_after_import(database_url: str) -> None:
    _new_list(database_url)
    status = import_file(database_url, DEMO_FILE)
    with connect(database_url) as conn:
        lead_list = get_list(conn, "PROSPECTS", None)  # names are case-insensitive
    assert lead_list.name == "prospects"
    assert live_leads(database_url, lead_list.id) == status["results"]["imported"]


def test_migrations_are_applied_once(database_url: str) -> None:
    from leads_pipeline.lib.store.migrations import apply_migrations, discover, sql_dir

    assert apply_migrations(database_url) == [], "the test database is already migrated: nothing to do"
    versions = [r["version"] for r in sql_rows(database_url, "SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in discover(sql_dir())]


def test_the_mapping_migration_empties_mappings_that_were_a_data_row(postgres_server: str, tmp_path: Path) -> None:
    """sql/047 on a database with imports made before the header check: a mapping whose column names were a
    person's row (an email address, a number with its country code or 10 digits) is emptied; ordinary headers,
    a date range, a bare number and a name-only row (which no rule tells from headers) are kept."""
    mappings: list[dict[str, str | None]] = [
        {"Ana": None, "Garcia": None, "ANA@ACME.ES": "email"},
        {"Ana": None, "'+34 912 345 678": "phone"},
        {"Jo": None, "(415) 555-0100": "phone"},
        {"First Name": "first_name", "Email": "email", "2023-2024": None, "20231231": None},
        {"Ana": None, "Garcia": None, "Acme": None},
    ]
    with database_before(postgres_server, 47, tmp_path) as url:
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner="tester").id
            for i, mapping in enumerate(mappings):
                conn.execute("INSERT INTO batches (id, kind, list_id) VALUES (%s, 'import', %s)", (f"b{i}", list_id))
                conn.execute(
                    "INSERT INTO imports (batch_id, list_id, file_path, file_sha256, file_size, mapping, chunk_rows,"
                    " created_by) VALUES (%s, %s, 'f.csv', 'x', 1, %s, 1000, 'tester')",
                    (f"b{i}", list_id, json.dumps(mapping)),
                )
        assert 47 in apply_migrations(url)
        with connect(url) as conn:
            kept = [r["mapping"] for r in conn.execute("SELECT mapping FROM imports ORDER BY id")]
    assert kept == [{}, {}, {}, *mappings[3:]]
