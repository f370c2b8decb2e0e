"""The project's connections: the leads schema first on the search path, and the settings DATABASE_URL gives."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from leads_pipeline.lib.store.db import connect


def test_the_options_of_database_url_are_kept_and_the_leads_schema_still_comes_first(database_url: str) -> None:
    """``options`` in DATABASE_URL (a statement timeout; Dagster's schema as its search path) were dropped: the
    connection's own options replaced them."""
    parts = urlsplit(database_url)
    query = "options=-c%20statement_timeout%3D4321%20-c%20search_path%3Ddagster"
    url = urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))
    with connect(url) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == {"statement_timeout": "4321ms"}
        assert conn.execute("SHOW search_path").fetchone() == {"search_path": "leads,public"}
