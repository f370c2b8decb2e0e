"""Database roles for the row-level security tests: two users (connect as one with ``support.connect_as``)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

_names = itertools.count()


@pytest.fixture
def users(database_url: str) -> Iterator[tuple[str, str]]:
    """Two database users, (member, outsider), dropped afterwards; the test gives them their lists. Names are
    unique per process and call: roles are server-wide, shared by the parallel test workers."""
    n = f"{os.getpid()}_{next(_names)}"
    member, outsider = f"rls_member_{n}", f"rls_outsider_{n}"
    yield member, outsider
    with psycopg.connect(database_url, autocommit=True) as conn:
        for role in (member, outsider):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
