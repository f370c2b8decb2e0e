"""The search rows (``lead_search``, sql/009): they follow every change of a lead, an import's partition gets its
indexes in bulk at the end (also after a crash and a re-run), and a text search pages exactly like a scan."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
import pytest

from leads_pipeline.lib import normalize as norm
from leads_pipeline.lib.filters import Selection, Sort
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store import search as search_module
from leads_pipeline.lib.store import search_index
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations, discover, sql_dir
from leads_pipeline.lib.store.search import search, select_lead_ids
from leads_pipeline_tests.paths import DATABLIST, DEMO_FILE
from leads_pipeline_tests.support import database_before, import_file, import_text

USER = "tester"
CUSTOMERS_1000 = DATABLIST / "customers-1000.csv"


def _ids(database_url: str, query: str, lists: tuple[str, ...] = ()) -> list[int]:
    with connect(database_url) as conn:
        return select_lead_ids(conn, Selection(query=query, lists=lists), USER)


def _page_ids(database_url: str, query: str, sort: Sort, limit: int = 500) -> list[int]:
    with connect(database_url) as conn:
        return [int(r["id"]) for r in search(conn, Selection(query=query), USER, sort=sort, limit=limit).leads]


def _stale_rows(database_url: str) -> list[dict[str, Any]]:
    """Search rows that disagree with their lead (or have none, or a lead without one)."""
    with connect(database_url) as conn:
        return list(
            conn.execute(
                "SELECT l.id, x.lead_id FROM leads l FULL JOIN lead_search x ON x.lead_id = l.id"
                " WHERE x.lead_id IS NULL OR l.id IS NULL OR x.list_id <> l.list_id"
                " OR x.last_name IS DISTINCT FROM l.last_name OR x.search_text <> lead_search_text(l)"
                " OR x.import_id IS DISTINCT FROM l.created_by_import OR x.name_key IS DISTINCT FROM l.name_key"
            )
        )


@pytest.fixture
def fair(database_url: str) -> dict[str, Any]:
    with connect(database_url) as conn:
        create_list(conn, "fair", owner=USER)
        create_list(conn, "other", owner=USER)
    return import_file(database_url, DEMO_FILE, "fair")


def test_search_rows_follow_updates_moves_deletes_and_undo(database_url: str, fair: dict[str, Any]) -> None:
    [sheryl, *_] = _ids(database_url, "sheryl baxter")
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET last_name = 'Quixotic', score = 50 WHERE id = %s", (sheryl,))
        conn.execute("UPDATE leads SET score = 10")  # no search field changes: nothing to do for the trigger
        conn.execute("UPDATE leads SET list_id = (SELECT id FROM lists WHERE name = 'other') WHERE id = %s", (sheryl,))
    assert _ids(database_url, "quixotic") == [sheryl]
    assert _ids(database_url, "sheryl baxter") == []
    assert _ids(database_url, "quixotic", ("fair",)) == [], "the search row moved with its lead"
    assert _ids(database_url, "quixotic", ("other",)) == [sheryl]
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO leads (list_id, first_name, last_name) SELECT list_id, 'Zebedee', 'Copy' FROM leads"
            " WHERE id = %s",
            (sheryl,),
        )
        conn.execute("DELETE FROM leads WHERE id = %s", (sheryl,))
    assert _ids(database_url, "quixotic") == []
    assert len(_ids(database_url, "zebedee")) == 1, "a lead made outside an import is searchable at once"
    assert _stale_rows(database_url) == []
    with connect(database_url) as conn:
        store.undo_import(conn, int(fair["importId"]), "tester")
    assert _stale_rows(database_url) == []
    assert _ids(database_url, "e") == _ids(database_url, "zebedee"), "only the lead made outside the import is left"


def test_work_alongside_the_index_build_sees_every_lead_once_per_run(database_url: str) -> None:
    """The asset's checks run while the trigram index builds: every lead is stored by then, and a re-run of a
    completed batch checks it again without importing anything."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)
    seen: list[int] = []

    def count_leads() -> None:
        with connect(database_url) as conn:
            row = conn.execute("SELECT count(*) AS n FROM leads").fetchone()
            assert row is not None
            seen.append(int(row["n"]))

    for _ in range(2):
        status = import_file(
            database_url, CUSTOMERS_1000, batch_id="batch-alongside", chunk_rows=300, alongside_index_build=count_leads
        )
        assert status["status"] == "completed"
    assert seen == [1000, 1000]
    with connect(database_url) as conn:
        names = {r["indexname"] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_trgm'")}
    assert f"lead_search_i{status['importId']}_trgm" in names


def test_the_partition_indexes_build_side_by_side(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each index builds on a connection of its own at the same time as the others: one after another, the sort
    and name indexes ran alone on one core after the trigram index. Each build here waits until all have begun."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)
    all_begun = threading.Barrier(len(search_index.PARTITION_INDEXES), timeout=20)
    real_build = search_index.build_index
    built: list[str] = []

    def build_once_all_began(conn: psycopg.Connection[Any], import_id: int, index: str) -> None:
        all_begun.wait()
        real_build(conn, import_id, index)
        built.append(index)

    monkeypatch.setattr(search_index, "build_index", build_once_all_began)
    status = import_file(database_url, CUSTOMERS_1000, chunk_rows=300)
    assert status["status"] == "completed" and sorted(built) == ["name", "sort", "trgm"]
    partition = f"lead_search_i{status['importId']}"
    with connect(database_url) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (partition,))
        assert {r["indexname"] for r in rows} == {f"{partition}_{name}" for name in ("lead_id_idx", *built)}
    assert len(_ids(database_url, "e")) > 300


def test_an_import_running_the_code_from_before_sql_106_still_builds_its_indexes(database_url: str) -> None:
    """sql/106 made the build one index per call; an import still running the older code when a newer command
    migrated the database calls the one-argument form at its end, and dropping it failed that import."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)
    partition = f"lead_search_i{import_file(database_url, DEMO_FILE)['importId']}"
    with connect(database_url) as conn:
        for name in ("trgm", "sort", "name"):
            conn.execute(f"DROP INDEX {partition}_{name}")
        conn.execute("SELECT lead_search_build_partition(%s::bigint)", (int(partition.removeprefix("lead_search_i")),))
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (partition,))
        assert {r["indexname"] for r in rows} == {f"{partition}_{n}" for n in ("lead_id_idx", "trgm", "sort", "name")}


def test_a_failure_alongside_the_build_fails_the_run_and_a_rerun_completes_it(database_url: str) -> None:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)

    def broken_check() -> None:
        raise RuntimeError("check crashed")

    def run(alongside: Any) -> dict[str, Any]:
        return import_file(
            database_url, CUSTOMERS_1000, batch_id="batch-broken-check", chunk_rows=300, alongside_index_build=alongside
        )

    with pytest.raises(RuntimeError, match="check crashed"):
        run(broken_check)
    with connect(database_url) as conn:
        [record] = list(conn.execute("SELECT status, imported FROM imports"))
    assert record == {"status": "failed", "imported": 1000}, "every lead stored, the run reported as failed"
    status = run(None)
    assert status["status"] == "completed" and status["results"]["imported"] == 1000
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM leads").fetchone()
    assert row is not None and row["n"] == 1000, "the re-run added nothing twice"
    assert _stale_rows(database_url) == []


def test_a_segment_is_indexed_while_the_import_runs_and_a_rerun_after_a_crash_finishes_the_rest(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's search partition is split into segments of a few chunks (sql/241): a segment's indexes build
    while the next chunks merge, so a crash on the last chunk leaves the first segment's built and the second's
    not; the re-run builds those and the partition's, which take in the segments', and the index finds what a
    scan of the leads finds."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)
    monkeypatch.setattr(search_index, "SEGMENT_ROWS", 600)  # chunks of 300: chunks 0-1 segment 0, 2-3 segment 1
    real_merge = store.merge_chunk

    def crash_on_last_chunk(*args: Any, **kwargs: Any) -> Any:
        if kwargs["chunk"].index == 3:
            raise RuntimeError("simulated crash")
        return real_merge(*args, **kwargs)

    def indexes(table: str) -> set[str]:
        with connect(database_url) as conn:
            rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,))
            return {r["indexname"].removeprefix(f"{table}_") for r in rows}

    monkeypatch.setattr(store, "merge_chunk", crash_on_last_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_file(database_url, CUSTOMERS_1000, batch_id="batch-segments", chunk_rows=300)
    with connect(database_url) as conn:
        [record] = list(conn.execute("SELECT id FROM imports"))
    partition = f"lead_search_i{record['id']}"
    assert indexes(f"{partition}_s0") == {"lead_id_idx", "trgm", "sort", "name"}
    assert indexes(f"{partition}_s1") == {"lead_id_idx"}
    assert indexes(partition) == {"lead_id_idx"}

    monkeypatch.setattr(store, "merge_chunk", real_merge)
    status = import_file(database_url, CUSTOMERS_1000, batch_id="batch-segments", chunk_rows=300)
    assert status["status"] == "completed"
    for table in (partition, f"{partition}_s0", f"{partition}_s1"):
        assert indexes(table) == {"lead_id_idx", "trgm", "sort", "name"}, table
    with connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        attached = conn.execute(
            "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = %s::regclass", (f"{partition}_trgm",)
        ).fetchone()
        scanned = conn.execute(
            "SELECT count(*) AS n FROM leads l WHERE lead_search_text(l) LIKE '%kristin%'"
        ).fetchone()
    assert attached is not None and attached["n"] == 2
    assert scanned is not None and scanned["n"] > 0
    assert len(_ids(database_url, "kristin")) == scanned["n"]
    assert _stale_rows(database_url) == []


@pytest.mark.parametrize("walk_rows", [2, 20_000], ids=["walk-too-short", "walk-finds-the-page"])
def test_text_search_pages_in_every_sort_order_like_the_plain_selection(
    database_url: str, fair: dict[str, Any], walk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the walk in page order finds the page or the trigram index has to, the pages are the same."""
    monkeypatch.setattr(search_module, "WALK_ROWS", walk_rows)
    with connect(database_url) as conn:  # ties and empty last names: the hard cases for keyset paging
        conn.execute("UPDATE leads SET last_name = NULL WHERE id % 5 = 0")
        conn.execute("UPDATE leads SET last_name = 'Same' WHERE id % 5 = 1")
    everything = set(_ids(database_url, "e"))
    assert len(everything) > 20
    for sort in (Sort(), Sort("id", True), Sort("last_name"), Sort("last_name", True), Sort("country")):
        seen: list[int] = []
        cursor: str | None = None
        while True:
            with connect(database_url) as conn:
                page = search(conn, Selection(query="e"), USER, sort=sort, limit=3, after=cursor)
            seen.extend(int(r["id"]) for r in page.leads)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == _page_ids(database_url, "e", sort), sort
        assert set(seen) == everything, sort


def test_a_crashed_import_is_searchable_and_its_rerun_builds_the_indexes(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner=USER)
    real_merge = store.merge_chunk

    def crash_on_third_chunk(*args: Any, **kwargs: Any) -> Any:
        if kwargs["chunk"].index == 2:
            raise RuntimeError("simulated crash")
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(store, "merge_chunk", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_file(database_url, CUSTOMERS_1000, batch_id="batch-crash", chunk_rows=300)
    with connect(database_url) as conn:
        [record] = list(conn.execute("SELECT id FROM imports"))
    partition = f"lead_search_i{record['id']}"

    def indexes() -> set[str]:
        with connect(database_url) as conn:
            rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (partition,))
            return {r["indexname"] for r in rows}

    assert indexes() == {f"{partition}_lead_id_idx"}, "no trigram index while the import is unfinished"
    found = _ids(database_url, "e")
    assert len(found) > 300, "its leads are searchable all the same"

    monkeypatch.setattr(store, "merge_chunk", real_merge)
    import_file(database_url, CUSTOMERS_1000, batch_id="batch-crash", chunk_rows=300)
    assert indexes() == {f"{partition}_lead_id_idx", f"{partition}_trgm", f"{partition}_sort", f"{partition}_name"}
    assert set(found) < set(_ids(database_url, "e"))
    assert _stale_rows(database_url) == []


@pytest.mark.parametrize("walk_rows", [2, 20_000], ids=["walk-too-short", "walk-finds-the-page"])
def test_filters_on_searched_fields_find_what_the_plain_selection_finds(
    database_url: str, fair: dict[str, Any], walk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter on a searched field narrows by the search rows too (``search`` joins them, other selections
    use a subquery): both give the same leads, with or without a query."""
    monkeypatch.setattr(search_module, "WALK_ROWS", walk_rows)
    cases = [
        Selection.build(where=["company ~ llc"]),
        Selection.build(where=["company ~ e", "country is not empty"]),
        Selection.build(where=["last_name = mata"]),
        Selection.build(query="e", where=["email ~ .org"], lists=["fair"]),
    ]
    for selection in cases:
        with connect(database_url) as conn:
            expected = select_lead_ids(conn, selection, USER)
            for sort in (Sort(), Sort("last_name")):
                found = search(conn, selection, USER, sort=sort, limit=1000).leads
                assert sorted(int(r["id"]) for r in found) == expected, (selection, sort)
        assert expected, selection


def test_the_linkedin_migration_decodes_the_slugs_stored_percent_encoded(postgres_server: str, tmp_path: Path) -> None:
    """sql/034 on a database whose leads have LinkedIn URLs as imports stored them before: a percent-encoded slug
    becomes the Unicode one an import stores now (so the same profile finds its lead again), one that does not
    decode to UTF-8 or decodes to a space stays."""
    with database_before(postgres_server, 34, tmp_path) as url:
        stored = [
            "https://www.linkedin.com/in/j%c3%bcrgen-m%c3%bcller-1a",
            "https://www.linkedin.com/in/ju%cc%88rgen",
            "https://www.linkedin.com/company/caf%c3%a9-du-monde",
            "https://www.linkedin.com/in/ann%20lee",
            "https://www.linkedin.com/in/bad%ff",
            "https://www.linkedin.com/in/plain",
        ]
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner=USER).id
            for value in stored:
                conn.execute("INSERT INTO leads (list_id, linkedin_url) VALUES (%s, %s)", (list_id, value))
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= 34]
        with connect(url) as conn:
            kept = [r["linkedin_url"] for r in conn.execute("SELECT linkedin_url FROM leads ORDER BY id")]
        assert kept == [
            *norm.linkedin_urls(pd.Series(stored[:3], dtype="str")).values.tolist(),
            *stored[3:],
        ]
        assert kept[:3] == [
            "https://www.linkedin.com/in/jürgen-müller-1a",
            "https://www.linkedin.com/in/jürgen",
            "https://www.linkedin.com/company/café-du-monde",
        ]


def test_the_linkedin_case_migration_lowercases_the_slugs_034_left_in_upper_case(
    postgres_server: str, tmp_path: Path
) -> None:
    """An import before sql/034 lower-cased a percent-encoded slug's hex digits only ("%c3%9c" is "Ü"); 034 decoded
    it and lower-cased it with the database's ASCII-only lower(), so "Über" stayed upper-case and the same profile
    imported again ("über", as Python lower-cases it) did not find its lead. sql/043 stores the slug as an import
    normalizes it now (the database is made with the C locale, whose lower() is ASCII-only; under another locale
    the final capital sigma of "ΟΔΟΣ" became the medial small one where Python writes the final one)."""
    name = f"before_043_{os.getpid()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
    url = urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    folders = {version: tmp_path / f"sql-{version}" for version in (34, 43)}
    for version, folder in folders.items():
        folder.mkdir()
        for migration in discover(sql_dir()):
            if migration.version < version:
                shutil.copy(migration.path, folder)
    apply_migrations(url, folders[34])
    stored = [
        "https://www.linkedin.com/in/%c3%9cber-%c3%85se",
        "https://www.linkedin.com/company/%ce%9f%ce%94%ce%9f%ce%a3-%c3%a9",  # ΟΔΟΣ: a final sigma
        "https://www.linkedin.com/in/plain",
        "https://www.linkedin.com/in/bad%ff",
    ]
    with connect(url) as conn:
        list_id = create_list(conn, "prospects", owner=USER).id
        for value in stored:
            conn.execute("INSERT INTO leads (list_id, linkedin_url) VALUES (%s, %s)", (list_id, value))
    try:
        apply_migrations(url, folders[43])
        with connect(url) as conn:
            left = [r["linkedin_url"] for r in conn.execute("SELECT linkedin_url FROM leads ORDER BY id")]
        assert left[0] == "https://www.linkedin.com/in/Über-Åse", "as sql/034 left it"
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= 43]
        with connect(url) as conn:
            kept = [r["linkedin_url"] for r in conn.execute("SELECT linkedin_url FROM leads ORDER BY id")]
        assert kept == norm.linkedin_urls(pd.Series(stored, dtype="str")).values.tolist()
        assert kept[:2] == ["https://www.linkedin.com/in/über-åse", "https://www.linkedin.com/company/οδος-é"]
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("version", "companies", "keys", "spelled"),
    [
        (44, {"Müller GmbH": "muller", "Acme": "acme"}, ["mueller", "acme"], "Mueller GmbH"),
        (
            109,
            {"Ørsted A/S": "orsted a s", "Natura S/A": "natura s a", "Acme": "acme"},
            ["orsted", "natura", "acme"],
            "Ørsted",
        ),
    ],
    ids=["044-umlauts", "109-slashed-legal-forms"],
)
def test_a_company_key_migration_recomputes_the_keys_of_stored_leads(
    postgres_server: str, tmp_path: Path, version: int, companies: dict[str, str], keys: list[str], spelled: str
) -> None:
    """sql/044 and sql/109 on a database whose leads have company keys as an import stored them before
    ("Müller GmbH": "muller", "Ørsted A/S": "orsted a s"): their company and name keys become the ones an import
    derives now ("mueller", "orsted"), so that a row of the other spelling ("Jan Berg, Mueller GmbH", "Jan Berg,
    Ørsted") finds the lead by name, the search rows carry the new name key, a company profile cached under the
    old key is found under the new one, and the leads do not count as changed since their import (their undo
    stays possible); a company the migration is not about keeps its key."""
    first, old_key = next(iter(companies.items()))
    with database_before(postgres_server, version, tmp_path) as url:
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner=USER).id
            for company, stored in companies.items():
                conn.execute(
                    "INSERT INTO leads (list_id, first_name, last_name, company, company_key, name_key)"
                    " VALUES (%s, 'Jan', 'Berg', %s, %s, %s)",
                    (list_id, company, stored, f"jan berg|{stored}"),
                )
            conn.execute(
                "INSERT INTO company_profiles (lookup_key, provider, status, name, name_key, expires_at)"
                " VALUES (%s, 'gemini', 'found', %s, %s, now() + interval '30 days')",
                (f"name:{old_key}", first, old_key),
            )
            written = list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id"))
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= version]
        assert norm.company_key(pd.Series([spelled, *companies], dtype="str")).tolist() == [keys[0], *keys]
        with connect(url) as conn:
            leads = list(conn.execute("SELECT company_key, name_key FROM leads ORDER BY id"))
            assert leads == [{"company_key": key, "name_key": f"jan berg|{key}"} for key in keys]
            searched = [r["name_key"] for r in conn.execute("SELECT name_key FROM lead_search ORDER BY lead_id")]
            assert searched == [f"jan berg|{key}" for key in keys]
            profiles = list(conn.execute("SELECT lookup_key, name_key FROM company_profiles ORDER BY lookup_key"))
            assert profiles == [
                {"lookup_key": f"name:{keys[0]}", "name_key": keys[0]},
                {"lookup_key": f"name:{old_key}", "name_key": keys[0]},
            ]
            assert list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id")) == written


def test_the_family_first_migration_splits_the_full_names_an_earlier_import_kept_whole(
    postgres_server: str, tmp_path: Path
) -> None:
    """An import from a full-name column before it split Chinese and Korean names kept 王伟 whole in the last name,
    with no first name and a name key no row of that person has now: a row of 李娜 at 腾讯科技 without an email made
    a second lead. sql/239 splits those names by the import's rule (伟 and 王, 민준 and 빈), their name keys and
    search rows follow, and the leads do not count as changed since their import. A Japanese name (山田花子, 田中実
    in Japan) and a name written whole in a last-name column stay as they are."""
    full = {"Name": "full_name", "Company": "company"}
    two = {"First Name": "first_name", "Last Name": "last_name", "Company": "company"}
    stored = [("王伟", None, full), ("李娜", None, full), ("빈민준", None, full), ("山田花子", None, full)]
    stored += [("田中実", "JP", full), ("张伟", None, two)]
    lasts = pd.Series([name for name, _, _ in stored], dtype="str")
    company_key = norm.company_key(pd.Series(["腾讯科技"] * len(stored), dtype="str"))
    old_keys = norm.name_key(pd.Series([None] * len(stored), dtype="str"), lasts, company_key).tolist()
    with database_before(postgres_server, 239, tmp_path) as url:
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner=USER).id
            for (name, country, mapping), key in zip(stored, old_keys, strict=True):
                record = store.start_import(
                    conn, batch_id=f"old-{name}", list_id=list_id, file_path="old.csv", sha256="0", size=1,
                    mapping=mapping, options={}, dialect={}, chunk_rows=1, total_rows=1, user=USER,
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO leads (list_id, last_name, full_name, company, company_key, name_key, country,"
                    " created_by_import) VALUES (%s, %s, %s, '腾讯科技', %s, %s, %s, %s)",
                    (list_id, name, name, company_key[0], key, country, record["id"]),
                )
                conn.execute("UPDATE imports SET status = 'completed' WHERE id = %s", (record["id"],))
            written = list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id"))
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= 239]
        with connect(url) as conn:
            leads = list(conn.execute("SELECT first_name, last_name, full_name, name_key FROM leads ORDER BY id"))
            searched = list(conn.execute("SELECT last_name, name_key FROM lead_search ORDER BY lead_id"))
            assert list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id")) == written
        names = [(r["first_name"], r["last_name"]) for r in leads]
        assert names == [("伟", "王"), ("娜", "李"), ("민준", "빈"), *((None, name) for name, _, _ in stored[3:])]
        assert [r["full_name"] for r in leads] == lasts.tolist()
        firsts = pd.Series([first for first, _ in names], dtype="str")
        new_keys = norm.name_key(firsts, pd.Series([last for _, last in names], dtype="str"), company_key).tolist()
        assert [r["name_key"] for r in leads] == new_keys and new_keys[3:] == old_keys[3:]
        assert searched == [
            {"last_name": last, "name_key": key} for (_, last), key in zip(names, new_keys, strict=True)
        ]
        status = import_text(url, tmp_path / "again.csv", "Full Name,Company\n李娜,腾讯科技\n")
        assert status["results"] == {"imported": 0, "updated": 0, "skipped": 1, "errors": 0}


def test_the_name_key_migration_keys_chinese_japanese_and_korean_names_as_written(
    postgres_server: str, tmp_path: Path
) -> None:
    """A lead of 山田 and 花子 in two columns was keyed "花子 山田", and a row of the same person written 山田花子 (a
    Japanese name, kept whole) did not find it by name and company: the import made a second lead. sql/240 keys the
    stored Chinese, Japanese and Korean names as written, their search rows follow, the leads do not count as
    changed; a Latin name and a name kept whole keep their keys."""
    names = [("花子", "山田"), ("伟", "王"), ("Hanako", "Yamada"), (None, "李娜")]
    firsts = pd.Series([first for first, _ in names], dtype="str")
    lasts = pd.Series([last for _, last in names], dtype="str")
    company_key = norm.company_key(pd.Series(["トヨタ自動車"] * len(names), dtype="str"))
    old_keys = ["花子 山田|トヨタ自動車", "伟 王|トヨタ自動車", "hanako yamada|トヨタ自動車", "李娜|トヨタ自動車"]
    with database_before(postgres_server, 240, tmp_path) as url:
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner=USER).id
            for (first, last), key in zip(names, old_keys, strict=True):
                conn.execute(
                    "INSERT INTO leads (list_id, first_name, last_name, company, company_key, name_key)"
                    " VALUES (%s, %s, %s, 'トヨタ自動車', %s, %s)",
                    (list_id, first, last, company_key[0], key),
                )
            written = list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id"))
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= 240]
        keys = norm.name_key(firsts, lasts, company_key).tolist()
        assert keys == ["山田花子|トヨタ自動車", "王伟|トヨタ自動車", *old_keys[2:]]
        with connect(url) as conn:
            assert [r["name_key"] for r in conn.execute("SELECT name_key FROM leads ORDER BY id")] == keys
            assert [r["name_key"] for r in conn.execute("SELECT name_key FROM lead_search ORDER BY lead_id")] == keys
            assert list(conn.execute("SELECT id, updated_at, write_xact FROM leads ORDER BY id")) == written
        status = import_text(url, tmp_path / "again.csv", "Full Name,Company\n山田花子,トヨタ自動車\n")
        assert status["results"] == {"imported": 0, "updated": 0, "skipped": 1, "errors": 0}


def test_the_name_lookup_migration_carries_the_name_keys_of_stored_leads(postgres_server: str, tmp_path: Path) -> None:
    """sql/012 on a database that already has leads (one in a finished import's partition, one made otherwise):
    their name keys reach the search rows, every built partition gets its name index, and a later import finds
    both leads by name and company."""
    with database_before(postgres_server, 12, tmp_path) as url:

        def text(*values: str) -> pd.Series:
            return pd.Series(values, dtype="str")

        keys = norm.name_key(text("Ann", "Bob"), text("Lee", "Ray"), norm.company_key(text("Acme", "Beta"))).tolist()
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner=USER).id
            record = store.start_import(
                conn, batch_id="old", list_id=list_id, file_path="old.csv", sha256="0", size=1, mapping={}, options={},
                dialect={}, chunk_rows=1, total_rows=1, user=USER,
            )  # fmt: skip
            conn.execute(
                "INSERT INTO leads (list_id, first_name, last_name, company, name_key, created_by_import)"
                " VALUES (%s, 'Ann', 'Lee', 'Acme', %s, %s), (%s, 'Bob', 'Ray', 'Beta', %s, NULL)",
                (list_id, keys[0], record["id"], list_id, keys[1]),
            )
            conn.execute("UPDATE imports SET status = 'completed' WHERE id = %s", (record["id"],))
            conn.execute("SELECT lead_search_build_partition(%s)", (record["id"],))
        assert apply_migrations(url) == [m.version for m in discover(sql_dir()) if m.version >= 12]
        with connect(url) as conn:
            rows = list(
                conn.execute(
                    "SELECT x.name_key, l.name_key AS kept FROM lead_search x JOIN leads l ON l.id = x.lead_id"
                )
            )
            indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%name%'")
            named = {r["indexname"] for r in indexes}
        assert sorted(r["name_key"] for r in rows) == sorted(keys) and all(r["name_key"] == r["kept"] for r in rows)
        assert {f"lead_search_i{record['id']}_name", "lead_search_no_import_name"} <= named
        assert "leads_list_name_key" not in named
        with connect(url) as conn:  # sql/015 rebuilt the finished import's name index to compare bytewise
            index = f"lead_search_i{record['id']}_name"
            built = conn.execute("SELECT pg_get_indexdef(%s::regclass) AS d", (index,)).fetchone()
        assert built is not None and 'name_key COLLATE "C"' in built["d"]
        status = import_text(url, tmp_path / "names.csv", "First Name,Last Name,Company\nAnn,Lee,Acme\nBob,Ray,Beta\n")
        assert status["results"] == {"imported": 0, "updated": 0, "skipped": 2, "errors": 0}
