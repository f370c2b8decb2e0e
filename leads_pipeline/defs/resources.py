"""Resources: the project's PostgreSQL (and, as issues land, one resource per external provider)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg

from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.migrations import apply_migrations


class LeadsDatabase(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The leads database. Migrations are applied before a run uses it (idempotent, serialized by a lock)."""

    database_url: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        apply_migrations(self.database_url)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A connection in one transaction, committed at the end of the block."""
        with connect(self.database_url) as conn:
            yield conn


def default_resources() -> dict[str, Any]:
    """Resource bindings for the Definitions: secrets and endpoints come from the environment at run time."""
    return {"database": LeadsDatabase(database_url=dg.EnvVar("DATABASE_URL"))}
