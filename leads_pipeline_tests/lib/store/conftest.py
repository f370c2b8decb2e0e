"""Database roles for the row-level security tests: two users, and the URL to connect as one of them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

_names = itertools.count()


def connect_as(database_url: str, user: str) -> str:
    """``database_url`` with ``user`` as its login (the embedded server trusts local connections)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))


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
