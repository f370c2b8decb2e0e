"""Key rotation: every sealed value ends under the new key, an interrupted rotation resumes and finishes, audited;
values written in clear before sql/010 are sealed and indexed by it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.store import enrichment
from leads_pipeline.lib.store.audit import entries
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.keys import key_usage, require_database_keys, rotate
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations, prepare_database
from leads_pipeline.lib.store.search import search
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
    import psycopg

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
    """A webhook URL holds its token: sealed when stored, re-sealed under the new key like personal data, and one
    stored in clear before (as every one was) sealed."""
    hook = "https://hooks.slack.com/services/T0/B0/SECRET"
    with connect(database_url) as conn:
        list_id = create_list(conn, "prospects", owner="tester").id
        enrich_after_import(conn, list_id, notify_url=hook)
    import_text(database_url, key_home / "one.csv", "Email\nann@example.com\n", batch_id="job-1")  # a job's batch
    with connect(database_url) as conn:
        job = company_job(conn, "job-1", notify_url=hook)
        conn.execute("UPDATE enrichment_jobs SET notify_url = %s WHERE id = %s", (hook, job.id))  # as stored before
    query = "SELECT notify_url FROM list_enrichment_settings UNION ALL SELECT notify_url FROM enrichment_jobs"
    assert [str(v).split(":")[0] for (v,) in _raw(database_url, query)] == ["enc", "https"]
    crypto.add_file_key(key_home / crypto.KEY_FILE, "k2")
    with connect(database_url, autocommit=True) as conn:
        rotate(conn, "admin")
    assert [str(v).split(":")[:2] for (v,) in _raw(database_url, query)] == [["enc", "k2"]] * 2
    with connect(database_url) as conn:
        settings = enrichment.list_settings(conn, list_id)
        assert enrichment.get_job(conn, job.id).notify_url == hook
    assert settings is not None and settings["notify_url"] == hook


def test_rotation_seals_and_indexes_values_stored_in_clear_before_encryption(database_url: str, key_home: Path) -> None:
    with connect(database_url) as conn:
        list_id = create_list(conn, "prospects", owner="tester").id
        # as a database migrated from before sql/010 holds them (its checks are NOT VALID for old rows)
        conn.execute("ALTER TABLE leads DROP CONSTRAINT leads_email_sealed, DROP CONSTRAINT leads_phone_sealed")
        conn.execute(
            "INSERT INTO leads (list_id, first_name, email, phone)"
            " VALUES (%s, 'Old', 'old@legacy.example', '+14155550100')",
            (list_id,),
        )
        conn.execute(
            "INSERT INTO email_verifications (email_bidx, method, status, confidence)"
            " VALUES ('old@legacy.example', 'smtp', 'valid', 90)"
        )
        conn.execute(
            "INSERT INTO email_pattern_evidence (domain, address_bidx, pattern, source)"
            " VALUES ('legacy.example', 'old', 'first', 'test')"
        )
        dnc = conn.execute(
            "INSERT INTO dnc_lists (kind, format, snapshot_date, file_path, file_sha256, numbers, rejected, loaded_by)"
            " VALUES ('full', 'plain', current_date, 'x', 'x', 1, 0, 't') RETURNING id"
        ).fetchone()
        assert dnc is not None
        conn.execute(
            "INSERT INTO dnc_numbers (number_bidx, list_id, snapshot_date) VALUES ('+14155550100', %s, current_date)",
            (dnc["id"],),
        )
        conn.commit()
    with connect(database_url, autocommit=True) as conn:
        rotate(conn, "admin")
    email_key, phone_key = (
        crypto.blind_index("email", "old@legacy.example"),
        crypto.blind_index("phone", "+14155550100"),
    )
    assert _raw(database_url, "SELECT email_bidx FROM email_verifications") == [(email_key,)]
    assert _raw(database_url, "SELECT address_bidx FROM email_pattern_evidence") == [(email_key,)]
    assert _raw(database_url, "SELECT number_bidx FROM dnc_numbers") == [(phone_key,)]
    [(email, bidx, domain, phone_bidx)] = _raw(
        database_url, "SELECT email, email_bidx, email_domain, phone_bidx FROM leads"
    )
    assert str(email).startswith("enc:k1:") and domain == "legacy.example"
    assert bidx == crypto.blind_index("email", "old@legacy.example")
    assert phone_bidx == crypto.blind_index("phone", "+14155550100")
    with connect(database_url) as conn:
        page = search(conn, Selection.build(query="old@legacy.example"), "tester")
        assert [lead["email"] for lead in page.leads] == ["old@legacy.example"]


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
            conn.execute(
                "INSERT INTO imports (batch_id, list_id, file_path, file_sha256, file_size, chunk_rows, created_by)"
                " SELECT 'import-1', id, 'fair.csv', 'x', 1, 1, 'tester' FROM lists"
            )
            conn.execute(
                "INSERT INTO import_errors (import_id, chunk, row_number, value, reason)"
                " SELECT id, 0, 3, 'Ann Lee <ann@acme.com>', 'no name' FROM imports"
            )
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


def test_an_upgrade_seals_the_values_other_tables_kept_in_clear(
    postgres_server: str, tmp_path: Path, key_home: Path
) -> None:
    """sql/086 sealed the leads stored in clear before sql/010, but their lead facts, rejected cells and the
    snapshots an import kept of them stayed in clear: `leads keys rotate` re-seals sealed values only, so they
    stayed so for good (readable in any dump), and the privacy registry found the rejected cells by their text."""
    facts = "SELECT field, value, details FROM lead_facts ORDER BY field"
    with database_before(postgres_server, 10, tmp_path) as url:
        with connect(url) as conn:
            create_list(conn, "fair", owner="tester")
            conn.execute("INSERT INTO leads (list_id, first_name, email) SELECT id, 'Ann', 'ann@acme.com' FROM lists")
            conn.execute(
                "INSERT INTO imports (batch_id, list_id, file_path, file_sha256, file_size, chunk_rows, created_by)"
                " SELECT 'import-1', id, 'fair.csv', 'x', 1, 1, 'tester' FROM lists"
            )
            conn.execute(
                "INSERT INTO import_errors (import_id, chunk, row_number, value, reason)"
                " SELECT id, 0, 3, 'Ann Lee <ann@acme.com>', 'no name' FROM imports"
            )
            conn.execute(
                "INSERT INTO import_updates (import_id, lead_id, previous) SELECT i.id, l.id, to_jsonb(l)"
                " FROM imports i, leads l"
            )
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
