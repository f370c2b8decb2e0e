"""Key rotation: every sealed value ends under the new key, an interrupted rotation resumes and finishes, audited.
The upgrade: values written in clear by older versions are sealed and indexed by it, under the database's keys."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import RowMaker, dict_row
from psycopg.types.json import Jsonb

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.prepare import PROBLEM_VALUE_CHARS
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.store import contacts, enrichment, keys, migrations
from leads_pipeline.lib.store.audit import entries
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.keys import key_usage, require_database_keys, rotate
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations, prepare_database
from leads_pipeline_tests.paths import DATABLIST
from leads_pipeline_tests.support import company_job, database_before, enrich_after_import, import_file, import_text


class Interrupted(Exception):
    pass


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    crypto.forget_keyring()
    yield tmp_path
    crypto.forget_keyring()


def _raw(database_url: str, query: str) -> list[tuple[object, ...]]:
    """Rows as stored (a plain psycopg connection does not open sealed values)."""
    from leads_pipeline.lib.runtime import plain_postgres_url

    with psycopg.connect(plain_postgres_url(database_url), options="-c search_path=leads") as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def _key_ids(database_url: str) -> set[str]:
    """The key ids of every sealed value in the tables rotation covers."""
    rows = _raw(
        database_url,
        "SELECT split_part(v, ':', 2) FROM (SELECT email AS v FROM leads UNION ALL SELECT phone FROM leads"
        " UNION ALL SELECT value FROM import_errors UNION ALL SELECT value FROM lead_facts"
        " UNION ALL SELECT jsonb_path_query(custom, 'strict $.*')#>>'{}' FROM leads) s WHERE v LIKE 'enc:%'",
    )
    return {str(r[0]) for r in rows}


def test_an_interrupted_rotation_resumes_and_leaves_everything_under_the_new_key(
    database_url: str, key_home: Path
) -> None:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_file(database_url, DATABLIST / "customers-1000.csv")
    with connect(database_url) as conn:
        before = list(conn.execute("SELECT id, email, phone, custom FROM leads ORDER BY id"))
    assert _key_ids(database_url) == {"k1"}

    crypto.add_file_key(key_home / crypto.KEY_FILE, "k2")
    batches = 0

    def stop_after_two(table: str, done: int, total: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise Interrupted

    with connect(database_url, autocommit=True) as conn, pytest.raises(Interrupted):
        rotate(conn, "admin", pages_per_batch=8, on_batch=stop_after_two)
    assert _key_ids(database_url) == {"k1", "k2"}, "half-way: both keys in use, every value still opens"
    with connect(database_url) as conn:
        assert list(conn.execute("SELECT id, email, phone, custom FROM leads ORDER BY id")) == before
        [running] = conn.execute("SELECT * FROM key_rotations").fetchall()
        assert running["status"] == "running" and running["progress"]["leads"] == 16

    reported: dict[str, list[tuple[int, int]]] = {}
    with connect(database_url, autocommit=True) as conn:
        summary = rotate(
            conn, "admin", pages_per_batch=8, on_batch=lambda t, d, n: reported.setdefault(t, []).append((d, n))
        )
    assert summary["rotationId"] == running["id"], "the same rotation, resumed"
    assert len({total for _, total in reported["leads"]}) == 1, "the total does not grow as re-sealed rows move"
    assert reported["leads"][-1][0] == reported["leads"][-1][1]
    assert summary["resealed"] >= len(before)
    assert _key_ids(database_url) == {"k2"}
    with connect(database_url) as conn:
        assert list(conn.execute("SELECT id, email, phone, custom FROM leads ORDER BY id")) == before
        assert key_usage(conn) == {"k2": sum(1 for r in before for v in (r["email"], r["phone"]) if v)}
        actions = [e["action"] for e in entries(conn)]
        assert "keys.rotate-start" in actions and "keys.rotate" in actions
    # the old key can go: everything opens with the new one alone
    lines = (key_home / crypto.KEY_FILE).read_text().splitlines()
    (key_home / crypto.KEY_FILE).write_text(lines[-1] + "\n")
    crypto.forget_keyring()
    with connect(database_url) as conn:
        assert list(conn.execute("SELECT id, email, phone, custom FROM leads ORDER BY id")) == before


def test_rotation_reseals_the_webhook_urls_of_jobs_and_list_settings(database_url: str, key_home: Path) -> None:
    """A webhook URL holds its token: sealed when stored, re-sealed under the new key like personal data (one
    stored in clear by an older version was sealed by the upgrade: sql/080)."""
    hook = "https://hooks.slack.com/services/T0/B0/SECRET"
    with connect(database_url) as conn:
        list_id = create_list(conn, "prospects", owner="tester").id
        enrich_after_import(conn, list_id, notify_url=hook)
    import_text(database_url, key_home / "one.csv", "Email\nann@example.com\n", batch_id="job-1")  # a job's batch
    with connect(database_url) as conn:
        job = company_job(conn, "job-1", notify_url=hook)
    query = "SELECT notify_url FROM list_enrichment_settings UNION ALL SELECT notify_url FROM enrichment_jobs"
    assert [str(v).split(":")[:2] for (v,) in _raw(database_url, query)] == [["enc", "k1"]] * 2
    crypto.add_file_key(key_home / crypto.KEY_FILE, "k2")
    with connect(database_url, autocommit=True) as conn:
        rotate(conn, "admin")
    assert [str(v).split(":")[:2] for (v,) in _raw(database_url, query)] == [["enc", "k2"]] * 2
    with connect(database_url) as conn:
        settings = enrichment.list_settings(conn, list_id)
        assert enrichment.get_job(conn, job.id).notify_url == hook
    assert settings is not None and settings["notify_url"] == hook


def _legacy_caches(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """The verification cache, pattern evidence and Do-Not-Call copy as stored before sql/010 (keyed in clear),
    the addresses each with a second row that has the same blind index (another spelling of the address)."""
    conn.execute(
        "INSERT INTO email_verifications (email, method, status, confidence)"
        " VALUES ('old@legacy.example', 'smtp', 'valid', 90), ('Old@Legacy.example', 'smtp', 'valid', 80),"
        " ('old@legacy.example', 'mx', 'valid', 50)"
    )
    conn.execute(
        "INSERT INTO email_pattern_evidence (domain, local_part, pattern, source)"
        " VALUES ('legacy.example', 'old', 'first', 'test'), ('legacy.example', 'Old', 'first', 'test')"
    )
    conn.execute(
        "WITH copy AS (INSERT INTO dnc_lists (kind, format, snapshot_date, file_path, file_sha256, numbers,"
        " rejected, loaded_by) VALUES ('full', 'plain', current_date, 'x', 'x', 1, 0, 't') RETURNING id)"
        " INSERT INTO dnc_numbers (number, list_id, snapshot_date) SELECT '+14155550100', id, current_date FROM copy"
    )


def test_an_upgrade_rekeys_the_caches_keyed_in_clear_before_encryption(
    postgres_server: str, tmp_path: Path, key_home: Path
) -> None:
    """The verification cache, pattern evidence and Do-Not-Call copy of a database from before sql/010 stayed
    keyed by the address or number in clear until ``leads keys rotate``: every lookup by blind index missed them,
    so a number on the Do-Not-Call copy was not screened. The upgrade re-keys them (a duplicate is dropped)."""
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            _legacy_caches(conn)
        assert 112 in apply_migrations(url)
        email_key, phone_key = (
            crypto.blind_index("email", "old@legacy.example"),
            crypto.blind_index("phone", "+14155550100"),
        )
        verifications = "SELECT email_bidx, method, confidence FROM email_verifications ORDER BY method"
        assert _raw(url, verifications) == [(email_key, "mx", 50), (email_key, "smtp", 90)]
        assert _raw(url, "SELECT domain, address_bidx FROM email_pattern_evidence") == [("legacy.example", email_key)]
        assert _raw(url, "SELECT number_bidx FROM dnc_numbers") == [(phone_key,)]
        with connect(url) as conn:
            assert contacts.dnc_numbers(conn, ["+14155550100", "+14155550101"]) == {"+14155550100"}


def test_webhook_urls_stored_in_clear_are_sealed_by_the_upgrade(
    postgres_server: str, key_home: Path, tmp_path: Path
) -> None:
    """A token stored in clear by a version before webhook URLs were sealed does not wait for a rotation."""
    hook = "https://hooks.slack.com/services/T0/B0/SECRET"
    query = "SELECT notify_url FROM list_enrichment_settings UNION ALL SELECT notify_url FROM enrichment_jobs"
    with database_before(postgres_server, 80, tmp_path) as url:
        with connect(url) as conn:
            list_id = create_list(conn, "prospects", owner="tester").id
            enrich_after_import(conn, list_id, notify_url=hook)
            conn.execute("INSERT INTO batches (id, kind, description) VALUES ('job-1', 'import', 'one.csv')")
            job = company_job(conn, "job-1", notify_url=hook)
            conn.execute("UPDATE list_enrichment_settings SET notify_url = %s", (hook,))  # as stored before
            conn.execute("UPDATE enrichment_jobs SET notify_url = %s", (hook,))
        assert [v for (v,) in _raw(url, query)] == [hook, hook]
        assert 80 in apply_migrations(url)
        assert [str(v).split(":")[0] for (v,) in _raw(url, query)] == ["enc", "enc"]
        with connect(url) as conn:
            settings = enrichment.list_settings(conn, list_id)
            assert enrichment.get_job(conn, job.id).notify_url == hook
        assert settings is not None and settings["notify_url"] == hook


def _add_import(conn: psycopg.Connection[dict[str, Any]], batch_id: str = "import-1") -> None:
    """An import into the one list (its rejected cells need one)."""
    conn.execute(
        "INSERT INTO imports (batch_id, list_id, file_path, file_sha256, file_size, chunk_rows, created_by)"
        " SELECT %s, id, 'fair.csv', 'x', 1, 1, 'tester' FROM lists",
        (batch_id,),
    )


def _ann_and_an_import(conn: psycopg.Connection[dict[str, Any]], email: str | None) -> None:
    """The list "fair" with one lead, Ann (her email as stored before sql/010, in clear, or none), and an import."""
    create_list(conn, "fair", owner="tester")
    conn.execute("INSERT INTO leads (list_id, first_name, email) SELECT id, 'Ann', %s FROM lists", (email,))
    _add_import(conn)


def _rejected_cell(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """A cell of Ann's that the import rejected, stored as the version before sealing did (in clear)."""
    conn.execute(
        "INSERT INTO import_errors (import_id, chunk, row_number, value, reason)"
        " SELECT id, 0, 3, 'Ann Lee <ann@acme.com>', 'no name' FROM imports"
    )


def _snapshot(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """The import's snapshot of each lead as it was before the import updated it (a copy of the row as stored)."""
    conn.execute(
        "INSERT INTO import_updates (import_id, lead_id, previous) SELECT i.id, l.id, to_jsonb(l)"
        " FROM imports i, leads l"
    )


def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("LEADS_HOME", str(home))
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    crypto.forget_keyring()


def _refusal(database_url: str) -> str | None:
    try:
        with connect(database_url) as conn:
            require_database_keys(conn)
    except ConfigurationError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("recorded", [True, False], ids=["checks-recorded", "database-from-before-085"])
def test_a_leads_home_with_keys_of_its_own_is_refused_by_a_database_sealed_under_others(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: bool
) -> None:
    """With DATABASE_URL, each machine (the daemon's host, a CLI, a container) has its own leads home, which
    generated keys of its own: the values it sealed opened nowhere else, and its import of the same file made a
    second lead of everyone with an email. A database from before sql/085 has no check values: the keys are tried
    on a stored email first, so the first process after the upgrade cannot record its wrong keys."""
    first, second = tmp_path / "first", tmp_path / "second"
    people = tmp_path / "people.csv"
    people.write_text("first_name,last_name,email\nAnn,Lee,ann@acme.com\n", encoding="utf-8")
    _use_home(monkeypatch, first)
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
        if recorded:
            require_database_keys(conn)
    import_file(database_url, people, "fair")
    _use_home(monkeypatch, second)
    assert f"encryption key 'k1' of {second / 'encryption.keys'} is not the key 'k1'" in str(_refusal(database_url))
    shutil.copy(first / "encryption.keys", second / "encryption.keys")
    crypto.forget_keyring()
    refused = str(_refusal(database_url))
    assert refused.startswith(f"the suppression key of {second / 'suppression.key'} is not the one"), refused
    shutil.copy(first / "suppression.key", second / "suppression.key")
    crypto.forget_keyring()
    assert _refusal(database_url) is None
    assert import_file(database_url, people, "fair")["results"]["skipped"] == 1
    with connect(database_url) as conn:
        assert [row["name"] for row in conn.execute("SELECT name FROM key_checks ORDER BY name")] == [
            "encryption:k1",
            "suppression",
        ]


@pytest.mark.parametrize("version", [80, 93], ids=["before-080-no-key-checks", "before-093-checks-recorded"])
def test_an_upgrade_by_a_leads_home_with_keys_of_its_own_is_refused_before_it_seals_anything(
    postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    """sql/080, 086 and 093 seal what older versions stored in clear under the keys of the process applying them:
    a second machine's or a container's leads home, with keys of its own, sealed them under keys that open
    nowhere else, and only then was refused. It is refused before any migration, and the right home upgrades."""
    first, second = tmp_path / "first", tmp_path / "second"
    in_clear = "SELECT value, (SELECT max(version) FROM schema_migrations) FROM import_errors"
    _use_home(monkeypatch, first)
    with database_before(postgres_server, version, tmp_path) as url:
        with connect(url) as conn:
            create_list(conn, "fair", owner="tester")
            conn.execute(
                "INSERT INTO leads (list_id, first_name, email, email_bidx) SELECT id, 'Ann', %s, %s FROM lists",
                (crypto.seal("ann@acme.com"), crypto.blind_index("email", "ann@acme.com")),
            )
            if version > 85:
                require_database_keys(conn)
            _add_import(conn)
            _rejected_cell(conn)
        before = _raw(url, in_clear)
        _use_home(monkeypatch, second)
        with pytest.raises(ConfigurationError) as refused:
            prepare_database(url)
        assert str(refused.value).startswith(f"encryption key 'k1' of {second / 'encryption.keys'} is not the key")
        assert "\n" not in str(refused.value)
        latest = {80: 79, 93: 91}[version]
        assert _raw(url, in_clear) == before == [("Ann Lee <ann@acme.com>", latest)]
        _use_home(monkeypatch, first)
        prepare_database(url)
        assert [str(v).split(":")[:2] for (v, _) in _raw(url, in_clear)] == [["enc", "k1"]]
        with connect(url) as conn:
            opened = conn.execute("SELECT value FROM import_errors").fetchall()
        assert opened == [{"value": "Ann Lee <ann@acme.com>"}]


def test_an_upgrade_seals_and_indexes_the_leads_stored_in_clear_so_an_import_finds_them(
    postgres_server: str, tmp_path: Path, key_home: Path
) -> None:
    """A database from before sql/010 held emails and phones in clear with no blind index: after the upgrade, an
    import of the same file found none of its leads by email and made every person a second lead, until someone
    ran ``leads keys rotate``."""
    people = tmp_path / "people.csv"
    people.write_text("first_name,last_name,email,phone\nAnn,Lee,ann@acme.com,+4915112345678\n", encoding="utf-8")
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            create_list(conn, "fair", owner="tester")
            conn.execute(
                "INSERT INTO leads (list_id, first_name, last_name, email, phone)"
                " SELECT id, 'Ann', 'Lee', 'ann@acme.com', '+4915112345678' FROM lists"
            )
        apply_migrations(url)
        assert _raw(url, "SELECT email LIKE 'enc:k1:%', phone LIKE 'enc:k1:%', email_domain FROM leads") == [
            (True, True, "acme.com")
        ]
        assert import_file(url, people, "fair")["results"]["skipped"] == 1
        with connect(url) as conn:
            assert conn.execute("SELECT email, phone FROM leads").fetchall() == [
                {"email": "ann@acme.com", "phone": "+4915112345678"}
            ]


def test_an_upgrade_stores_blank_emails_and_phones_from_before_encryption_as_none(
    postgres_server: str, tmp_path: Path, key_home: Path
) -> None:
    """Versions before sql/010 could store '' for a lead's missing email or phone: sql/086 sealed it with no blind
    index, the CHECK constraints of sql/010 refused the row, and the whole upgrade failed (CheckViolation)."""
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            _ann_and_an_import(conn, "")
            conn.execute("UPDATE leads SET phone = ' ', street = ''")
            _snapshot(conn)
        assert 86 in apply_migrations(url)
        blank = "SELECT email, email_bidx, email_domain, phone, phone_bidx, street FROM leads"
        assert _raw(url, blank) == [(None,) * 6]
        [(previous,)] = _raw(url, "SELECT previous FROM import_updates")
        assert (
            isinstance(previous, dict)
            and [previous[k] for k in ("email", "email_bidx", "phone", "street")] == [None] * 4
        )


def test_an_upgrade_seals_the_values_other_tables_kept_in_clear(
    postgres_server: str, tmp_path: Path, key_home: Path
) -> None:
    """sql/086 sealed the leads stored in clear before sql/010, but their lead facts, rejected cells and the
    snapshots an import kept of them stayed in clear: `leads keys rotate` re-seals sealed values only, so they
    stayed so for good (readable in any dump), and the privacy registry found the rejected cells by their text."""
    facts = "SELECT field, value, details FROM lead_facts ORDER BY field"
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            _ann_and_an_import(conn, "ann@acme.com")
            _rejected_cell(conn)
            _snapshot(conn)
            conn.execute(
                "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details)"
                " SELECT id, f, v, 'apify', 90, d::jsonb FROM leads,"
                ' (VALUES (\'email\', \'ann@acme.com\', \'{"email": "ann@acme.com", "status": "found"}\'),'
                " ('title', 'CEO', '{\"title\": \"CEO\"}')) x(f, v, d)"
            )
            conn.execute("INSERT INTO crm_connections (name, crm) VALUES ('hub', 'hubspot')")
            conn.execute(
                "WITH run AS (INSERT INTO crm_sync_runs (connection, direction, started_by) VALUES ('hub', 'push', 't')"
                " RETURNING id)"
                " INSERT INTO crm_sync_log (sync_id, lead_id, action, message)"
                " SELECT run.id, l.id, 'failed', 'HubSpot: ann@acme.com is invalid' FROM run, leads l"
            )
        assert 93 in apply_migrations(url)
        ann = crypto.blind_index("email", "ann@acme.com")
        [(email_fact, details), (title, title_details)] = _raw(
            url, "SELECT value, details FROM lead_facts ORDER BY field"
        )
        assert str(email_fact).startswith("enc:k1:") and (title, title_details) == ("CEO", {"title": "CEO"})
        assert isinstance(details, dict) and details["email"].startswith("enc:k1:")
        assert (details["email_bidx"], details["status"]) == (ann, "found")
        [(error, subjects)] = _raw(url, "SELECT value, subjects FROM import_errors")
        assert str(error).startswith("enc:k1:") and subjects == [ann]
        [(previous,)] = _raw(url, "SELECT previous FROM import_updates")
        assert isinstance(previous, dict) and previous["email"].startswith("enc:k1:")
        assert (previous["email_bidx"], previous["email_domain"]) == (ann, "acme.com")
        with connect(url) as conn:
            opened = [(f["field"], f["value"], f["details"].get("email")) for f in conn.execute(facts)]
            [error] = conn.execute("SELECT value FROM import_errors").fetchall()
        assert opened == [("email", "ann@acme.com", "ann@acme.com"), ("title", "CEO", None)]
        assert error == {"value": "Ann Lee <ann@acme.com>"}
        [(message,)] = _raw(url, "SELECT message FROM crm_sync_log")
        assert str(message).startswith("enc:k1:"), "the privacy registry searches sync messages by lead only"


def test_an_upgrade_seals_a_large_database_in_pages(
    postgres_server: str, tmp_path: Path, key_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sql/080 loaded every webhook URL in clear at once and sql/086 every lead in clear (and rotation every
    cache row keyed in clear): the upgrade of a big database from before values were sealed held all of them in
    memory. Each statement of the upgrade now brings at most ``PAGES_PER_BATCH`` pages' rows to the client, and
    everything is sealed and re-keyed."""
    people, jobs, errors, verified = 3_000, 1_000, 1_000, 1_000
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            create_list(conn, "fair", owner="tester")
            conn.execute(
                "INSERT INTO leads (list_id, first_name, email, phone) SELECT id, 'Ann', 'p' || n || '@acme.com',"
                " '+49151' || lpad(n::text, 7, '0') FROM lists, generate_series(1, %s) n",
                (people,),
            )
            conn.execute(
                "INSERT INTO batches (id, kind, description) SELECT 'job-' || n, 'import', 'x'"
                " FROM generate_series(1, %s) n",
                (jobs,),
            )
            conn.execute(
                "INSERT INTO enrichment_jobs (id, sources, template, notify_url, created_by)"
                " SELECT id, '{company}', 'basic', 'https://hooks.example/' || id, 'tester' FROM batches"
            )
            _add_import(conn, "job-1")
            conn.execute(
                "INSERT INTO import_errors (import_id, chunk, row_number, value, reason)"
                " SELECT id, 0, n, 'p' || n || '@acme.com', 'no name' FROM imports, generate_series(1, %s) n",
                (errors,),
            )
            conn.execute(
                "INSERT INTO email_verifications (email, method, status, confidence)"
                " SELECT 'p' || n || '@acme.com', 'smtp', 'valid', 90 FROM generate_series(1, %s) n",
                (verified,),
            )
            per_page = max(
                int(row["n"])
                for table in ("leads", "enrichment_jobs", "import_errors", "email_verifications")
                for row in conn.execute(
                    f"SELECT count(*) AS n FROM {table} GROUP BY (ctid::text::point)[0]"  # type: ignore[arg-type]
                )
            )
        monkeypatch.setattr(keys, "PAGES_PER_BATCH", 2)
        bound = 2 * per_page
        assert bound * 4 < min(people, jobs, errors, verified), "each table spans many batches"
        fetched: list[int] = []

        def counting(cursor: psycopg.Cursor[Any]) -> RowMaker[dict[str, Any]]:
            if cursor.pgresult is not None:
                fetched.append(cursor.pgresult.ntuples)
            return dict_row(cursor)

        def counting_connect(database_url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
            conn = connect(database_url, autocommit=autocommit)
            conn.row_factory = counting  # type: ignore[assignment]
            return conn

        monkeypatch.setattr(migrations, "connect", counting_connect)
        assert {80, 86, 93, 112} <= set(apply_migrations(url))
        assert 0 < max(fetched) <= bound
        sealed = (
            "SELECT (SELECT count(*) FROM leads WHERE email LIKE 'enc:k1:%' AND phone LIKE 'enc:k1:%'"
            " AND email_bidx IS NOT NULL AND phone_bidx IS NOT NULL),"
            " (SELECT count(*) FROM enrichment_jobs WHERE notify_url LIKE 'enc:k1:%'),"
            " (SELECT count(*) FROM import_errors WHERE value LIKE 'enc:k1:%' AND cardinality(subjects) = 1),"
            " (SELECT count(*) FROM email_verifications WHERE email_bidx ~ '^[0-9a-f]{64}$')"
        )
        assert _raw(url, sealed) == [(people, jobs, errors, verified)]


_SEALED_BUT_NO_EMAIL: dict[str, str] = {
    "webhook-url": "INSERT INTO list_enrichment_settings (list_id, notify_url) SELECT id, %(hook)s FROM lists",
    # first a cell cut short with an address cut in two (its subjects from the whole cell), then Ann's
    "import-error": "INSERT INTO import_errors (import_id, chunk, row_number, value, reason, subjects)"
    " SELECT id, 0, n, v, 'no name', ARRAY[h] FROM imports, (VALUES (2, %(cut)s, %(bob)s), (3, %(error)s, %(ann)s))"
    " AS cells (n, v, h)",
    "lead-phone": "INSERT INTO leads (list_id, first_name, phone, phone_bidx)"
    " SELECT id, 'Ann', %(phone)s, %(phone_bidx)s FROM lists",
    "fact-details": "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details)"
    " SELECT id, 'title', 'CEO', 'apify', 90, %(details)s FROM leads",
}


@pytest.mark.parametrize("stored", sorted(_SEALED_BUT_NO_EMAIL))
def test_an_upgrade_by_a_leads_home_with_keys_of_its_own_is_refused_when_no_lead_has_an_email(
    postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """A database from before sql/085 (no check values) was checked by opening a stored lead's email: one whose
    sealed values were all elsewhere (webhook URLs, import errors, phones, facts) let a leads home with keys of
    its own through, which then sealed the values in clear under keys that open nowhere else (sql/086, 093) and
    recorded them as the database's. Any sealed value stored is tried now; the suppression key on a lead's phone
    with its blind index or on a rejected cell with its subjects (a wrong one blind-indexed the leads of sql/086
    and the cells of sql/093 so that no import or privacy request found them)."""
    first, second = tmp_path / "first", tmp_path / "second"
    _use_home(monkeypatch, first)
    with database_before(postgres_server, 85, tmp_path) as url:
        with connect(url) as conn:
            _ann_and_an_import(conn, None)
            conn.execute(
                _SEALED_BUT_NO_EMAIL[stored],  # type: ignore[arg-type]
                {
                    "hook": crypto.seal("https://hooks.slack.com/services/T0/B0/SECRET"),
                    "cut": crypto.seal(("x" * 991 + " bob@acme.com")[:PROBLEM_VALUE_CHARS]),
                    "bob": crypto.blind_index("email", "bob@acme.com"),
                    "error": crypto.seal("Ann Lee <ann@acme.com>"),
                    "ann": crypto.blind_index("email", "ann@acme.com"),
                    "phone": crypto.seal("+4915112345678"),
                    "phone_bidx": crypto.blind_index("phone", "+4915112345678"),
                    "details": Jsonb({"email": crypto.seal("ann@acme.com"), "status": "found"}),
                },
            )
        version = "SELECT max(version) FROM schema_migrations"
        _use_home(monkeypatch, second)
        with pytest.raises(ConfigurationError) as refused:
            prepare_database(url)
        assert str(refused.value).startswith(f"encryption key 'k1' of {second / 'encryption.keys'} is not the key")
        assert _raw(url, version) == [(81,)], "refused before any migration"
        if stored in ("lead-phone", "import-error"):  # the values stored with blind indexes (a cell's subjects)
            shutil.copy(first / "encryption.keys", second / "encryption.keys")
            crypto.forget_keyring()
            with pytest.raises(ConfigurationError) as refused:
                prepare_database(url)
            assert str(refused.value).startswith(f"the suppression key of {second / 'suppression.key'} is not")
        _use_home(monkeypatch, first)
        prepare_database(url)
        assert _raw(url, version) > [(81,)]
