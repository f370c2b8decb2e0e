"""Row-level security by list membership, enforced by PostgreSQL for plain-SQL users; the service connection
(the pipeline's) is explicitly exempt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import shutil
from pathlib import Path

import psycopg
import pytest

from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.runtime import leads_home
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list, get_list
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import connect_as, import_file, service_bypasses_row_security

TABLES = ("leads", "lead_facts", "lead_tags", "lists", "list_members", "imports", "import_errors", "batch_leads")


@pytest.fixture
def fair(database_url: str, users: tuple[str, str]) -> int:
    member, outsider = users
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
    import_file(database_url, DEMO_FILE, "fair")
    with connect(database_url) as conn:
        lead_list = get_list(conn, "fair", None)
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence) SELECT id, 'title', 'CFO', 'test', 50"
            " FROM leads"
        )
        conn.execute("INSERT INTO lead_tags (lead_id, tag) SELECT id, 'vip' FROM leads")
        access.grant(conn, lead_list.id, member, "viewer", granted_by="tester")
        access.grant_database_login(conn, member)
        access.grant_database_login(conn, outsider)
        return lead_list.id


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        conn.execute("SET search_path = leads")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def test_a_user_outside_the_list_reads_none_of_its_rows(database_url: str, users: tuple[str, str], fair: int) -> None:
    member, outsider = users
    assert set(_counts(connect_as(database_url, outsider)).values()) == {0}
    seen = _counts(connect_as(database_url, member))
    assert seen["leads"] == 33 and seen["lead_facts"] == 33 and seen["lead_tags"] == 33
    assert seen["lists"] == 1 and seen["list_members"] == 2 and seen["imports"] == 1 and seen["import_errors"] > 0


def test_membership_changes_apply_at_once_and_writes_are_refused(
    database_url: str, users: tuple[str, str], fair: int
) -> None:
    member, outsider = users
    with connect(database_url) as conn:
        access.grant(conn, fair, outsider, "editor", granted_by="tester")
        assert access.revoke(conn, fair, f" {member} ")  # trimmed as grant stored it
    assert _counts(connect_as(database_url, member))["leads"] == 0
    assert _counts(connect_as(database_url, outsider))["leads"] == 33
    with (
        psycopg.connect(connect_as(database_url, outsider)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("UPDATE leads.leads SET title = 'x'")


def test_session_settings_cannot_impersonate_a_member(database_url: str, users: tuple[str, str], fair: int) -> None:
    _, outsider = users
    with psycopg.connect(connect_as(database_url, outsider)) as conn:
        conn.execute("SELECT set_config('leads.user', 'tester', false)")
        conn.execute("SET search_path = leads")
        assert conn.execute("SELECT count(*) FROM leads").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM audit_log")


def test_the_service_connection_is_the_explicit_exception(database_url: str, fair: int) -> None:
    with connect(database_url) as conn:
        assert service_bypasses_row_security(conn)
        assert conn.execute("SELECT count(*) AS n FROM leads").fetchone() == {"n": 33}
        assert conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'leads_reader'").fetchone() == {
            "rolbypassrls": False
        }


def test_leads_access_sql_login_creates_your_own_limited_login(
    database_url: str, users: tuple[str, str], fair: int, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from leads_pipeline.cli import app

    member, _ = users
    # The command's leads home holds the keys the fixture's leads were sealed under (another home's are refused).
    for key_file in (crypto.keyring_file(), leads_home() / "suppression.key"):
        shutil.copy(key_file, str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    monkeypatch.setenv("SQL_PASSWORD", "s3cret-pass")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{member}"')  # type: ignore[arg-type]
    result = CliRunner().invoke(
        app, ["access", "sql-login", "--password-env", "SQL_PASSWORD"], env={"LEADS_USER": member}
    )
    assert result.exit_code == 0, result.output
    assert _counts(connect_as(database_url, member))["leads"] == 33
    missing = CliRunner().invoke(app, ["access", "sql-login", "--password-env", "NOPE"], env={"LEADS_USER": member})
    assert missing.exit_code == 1 and "not set" in missing.stderr


def test_a_login_password_is_sent_hashed(
    database_url: str, users: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password went to the server in clear inside ``ALTER ROLE``, which the server logs when the statement
    fails (a service role that may not alter roles) or when DDL is logged; it is sent as a SCRAM verifier."""
    member, _ = users
    trace = tmp_path / "wire.trace"
    with connect(database_url) as conn, trace.open("w") as out:
        conn.pgconn.trace(out.fileno())
        access.grant_database_login(conn, member, "s3cret-pass")
        conn.pgconn.untrace()
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (member,)).fetchone()
    assert "ALTER ROLE" in trace.read_text() and "s3cret-pass" not in trace.read_text()
    assert stored is not None and stored["rolpassword"].startswith("SCRAM-SHA-256$")
    # the verifier is of this password (RFC 5802: StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key")))
    iterations, salt, stored_key = re.split(r"[$:]", stored["rolpassword"])[1:4]
    salted = hashlib.pbkdf2_hmac("sha256", b"s3cret-pass", base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def test_sql_login_never_takes_over_a_role_it_did_not_make(
    database_url: str, users: tuple[str, str], tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LEADS_USER`` is whoever says so: naming an existing database role (an analyst's, one with other rights)
    reset its password and put it in the reader group. Only a login it made itself is reset."""
    from typer.testing import CliRunner

    from leads_pipeline.cli import app

    member, outsider = users
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    monkeypatch.setenv("SQL_PASSWORD", "s3cret-pass")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{outsider}" LOGIN CREATEDB')  # type: ignore[arg-type]
    for user in (outsider, member):
        result = CliRunner().invoke(
            app, ["access", "sql-login", "--password-env", "SQL_PASSWORD"], env={"LEADS_USER": user}
        )
        if user == member:  # made here: reset again at will
            assert result.exit_code == 0, result.output
            again = CliRunner().invoke(
                app, ["access", "sql-login", "--password-env", "SQL_PASSWORD"], env={"LEADS_USER": user}
            )
            assert again.exit_code == 0, again.output
            with connect(database_url) as conn:
                conn.execute(f'ALTER ROLE "{member}" CREATEROLE')  # type: ignore[arg-type]
            result = CliRunner().invoke(
                app, ["access", "sql-login", "--password-env", "SQL_PASSWORD"], env={"LEADS_USER": user}
            )
        assert result.exit_code == 1 and f"database role {user!r} exists and is not a login made by" in result.stderr
    with connect(database_url) as conn:
        readers = conn.execute(
            "SELECT count(*) AS n FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
            (outsider,),
        ).fetchone()
    assert readers == {"n": 0}, "the refused role was not put in the reader group"
