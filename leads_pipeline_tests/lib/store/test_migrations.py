"""Migrating and using a database as a role that is not a superuser, as a team running its own server does."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.support import connect_as

_names = itertools.count()


@pytest.fixture
def app_database(postgres_server: str) -> Iterator[tuple[str, str]]:
    """(URL of the server's maintenance database as role ``app_*``, that role's name): a login with no attribute
    but LOGIN, and a new database ``db_*`` no one has migrated, owned by the superuser. Both dropped afterwards
    (roles are server-wide, shared by the parallel test workers)."""
    n = f"{os.getpid()}_{next(_names)}"
    role, database = f"app_{n}", f"db_{n}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = urlunsplit(urlsplit(postgres_server)._replace(path=f"/{database}"))
    try:
        yield url, role
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for login in (f"{role}_reader", role):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def test_a_role_that_may_not_create_the_schema_is_told_to_own_the_database(app_database: tuple[str, str]) -> None:
    url, role = app_database
    with pytest.raises(ConfigurationError) as refused:
        apply_migrations(connect_as(url, role))
    database = urlsplit(url).path.lstrip("/")
    assert f'ALTER DATABASE "{database}" OWNER TO "{role}"' in str(refused.value)
    assert "permission denied for database" in str(refused.value)


def test_a_role_granted_the_tables_of_another_roles_database_is_told_to_connect_as_their_owner(
    app_database: tuple[str, str],
) -> None:
    """The administrator migrated; the pipeline's role was granted every table. ``CREATE SCHEMA IF NOT EXISTS``
    refused it (no CREATE on the database) although the schema was there, and once past that, row-level security
    showed it no list at all, without an error; with BYPASSRLS its first import failed on the search partition an
    import adds (only the tables' owner may)."""
    url, role = app_database
    apply_migrations(url)
    with connect(url) as conn:
        owner = conn.execute("SELECT current_user AS name").fetchone()
        assert owner is not None
        app = sql.Identifier(role)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA leads TO {}").format(app))
        conn.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA leads TO {}").format(app))
    for attribute in ("NOBYPASSRLS", "BYPASSRLS"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL(f"ALTER ROLE {{}} {attribute}").format(app))  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError) as refused:
            apply_migrations(connect_as(url, role))
        assert str(refused.value).startswith(
            f"database role {role!r} does not own the leads tables (their owner is {owner['name']!r}, the role that"
        )
        assert str(refused.value).endswith(f"connect as {owner['name']!r}")


def test_sql_login_by_a_service_role_without_createrole_says_what_to_grant(
    app_database: tuple[str, str], template_database: str
) -> None:
    """The usual role of a team's own server owns its database and may not create roles: the migrations skip
    making the reader group (sql/007), and ``leads access sql-login`` came as psycopg's traceback. Once an
    administrator has granted what it says, the login reads its list, also when the reader group got no grants
    in this database (it did not exist when the migrations ran).

    The group is the server's, made by the migrations run with more rights (``template_database``, migrated as
    the superuser, here): without it on the server, as when this test ran first on a new test server, there is
    nothing to grant."""
    url, role = app_database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(urlsplit(url).path.lstrip("/")), sql.Identifier(role)
            )
        )
    service = connect_as(url, role)
    apply_migrations(service)
    reader = f"{role}_reader"
    with connect(service) as conn:
        fair = create_list(conn, "fair", owner="tester")
        access.grant(conn, fair.id, reader, "viewer", granted_by="tester")
        conn.execute(
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA leads FROM {}").format(sql.Identifier(access.READER_ROLE))
        )
    with pytest.raises(ConfigurationError) as refused, connect(service) as conn:
        access.grant_database_login(conn, reader, "pw")
    assert "permission denied to create role" in str(refused.value)
    assert f'ALTER ROLE "{role}" CREATEROLE; GRANT leads_reader TO "{role}" WITH ADMIN OPTION' in str(refused.value)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT leads_reader TO {} WITH ADMIN OPTION").format(sql.Identifier(role)))
    with connect(service) as conn:
        access.grant_database_login(conn, reader, "pw")
    with psycopg.connect(connect_as(url, reader)) as conn:
        assert conn.execute("SELECT name FROM leads.lists").fetchall() == [("fair",)]
        assert conn.execute("SELECT count(*) FROM leads.credit_ledger").fetchall() == [(0,)]
