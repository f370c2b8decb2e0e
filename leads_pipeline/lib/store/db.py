"""Connections to the project's PostgreSQL: psycopg 3, schema ``leads`` first on the search path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from leads_pipeline.lib.runtime import plain_postgres_url

SCHEMA = "leads"


def connect(database_url: str, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
    """Open a connection whose rows are dicts and whose search path starts with the leads schema."""
    return psycopg.connect(
        plain_postgres_url(database_url),
        autocommit=autocommit,
        row_factory=dict_row,
        options=f"-c search_path={SCHEMA},public",
    )


@contextmanager
def transaction(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection inside one transaction: committed when the block ends, rolled back on any error."""
    with connect(database_url) as conn:
        yield conn
