"""The project's connections: the leads schema first on the search path, and the settings DATABASE_URL gives."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pytest

from leads_pipeline.lib.store import db
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


def _own_name(url: str) -> str:
    """What pg_stat_activity shows for a session ``connect`` opens on ``url``."""
    with connect(url) as conn:
        row = conn.execute("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None
    return str(row["application_name"])


def test_a_session_is_named_after_the_process_unless_database_url_names_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions had no application_name: pg_stat_activity could not tell which command or run held a connection
    or a lock. The URL's own name (and PGAPPNAME) still wins."""
    monkeypatch.setattr(db, "_process_name", None)
    monkeypatch.delenv("PGAPPNAME", raising=False)
    db.name_sessions("leads jobs show")
    assert _own_name(database_url) == "leads jobs show"
    parts = urlsplit(database_url)
    query = "application_name=mine"
    assert _own_name(urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))) == "mine"
    monkeypatch.setenv("PGAPPNAME", "theirs")
    assert _own_name(database_url) == "theirs"


def test_a_session_opened_in_a_dagster_step_names_the_run_and_the_step(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_process_name", "leads enrich")
    monkeypatch.delenv("PGAPPNAME", raising=False)
    seen: list[str] = []

    @dg.asset
    def named() -> None:
        seen.append(_own_name(database_url))

    result = dg.materialize([named])
    assert seen == [f"dagster run {result.run_id} named"]
    assert _own_name(database_url) == "leads enrich"  # outside the step, the process's name again
