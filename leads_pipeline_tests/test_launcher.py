"""What the CLI's runs bind: an import or a scoring needs the database alone, and starting one must not wait on
the providers' client libraries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster_postgres.utils
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.launcher import resources_for
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import Leads, cli_environment, connect_as, sql_value

PROVIDER_LIBRARIES = ("google.genai", "apify_client", "hubspot", "simple_salesforce")


def test_imports_and_scores_bind_the_database_alone_and_provider_assets_get_every_resource() -> None:
    assert set(resources_for(batch_leads)) == {"database"}
    assert set(resources_for(lead_scores)) == {"database"}
    bound = resources_for(email_contacts)
    assert email_contacts.required_resource_keys - {"io_manager"} <= bound.keys()
    assert {"database", "apify", "gemini", "crm"} <= bound.keys()  # every resource, as in the Definitions


def test_an_import_run_starts_without_loading_a_provider_client_library() -> None:
    # In a fresh interpreter: this one imported every module of the project already.
    probe = f"""
import json, sys
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.launcher import resources_for
resources_for(batch_leads)
print(json.dumps([name for name in {PROVIDER_LIBRARIES!r} if name in sys.modules]))
"""
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout) == []


def test_a_scoring_run_without_the_fit_model_loads_neither_scikit_learn_nor_pandas() -> None:
    """`leads score` spent half of its 3.8 s of CPU loading scikit-learn and SciPy (the fit model's module), the
    importer's modules and pandas with pyarrow (the search filters' normalization), which scoring a list with the
    rules does not use."""
    probe = """
import json, sys
from leads_pipeline.commands.score import run_cli_score
from leads_pipeline.launcher import materialize_scores, resources_for
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.scoring.batch import score_leads
from leads_pipeline.lib.scoring.selection import create_selection
from leads_pipeline.lib.store.lists import get_list
from leads_pipeline.lib.store.migrations import prepare_database
resources_for(lead_scores)
unused = ("sklearn", "scipy", "catboost", "pandas", "pyarrow", "leads_pipeline.lib.importer")
print(json.dumps([name for name in unused if name in sys.modules]))
"""
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout) == []


@pytest.mark.parametrize("command", ["import", "dev"])
def test_dagster_storage_a_role_may_not_create_in_public_is_one_line_saying_what_to_grant(
    postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A role given CREATE on a database it does not own may make the leads schema but not Dagster's tables in
    ``public`` (PostgreSQL 15 and later): the first import was a 400-line SQLAlchemy traceback, and ``leads dev``
    started the webserver and the daemon, each printing its traceback (the line comes before either starts)."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    n = f"{os.getpid()}_{time.monotonic_ns()}"
    role, database = f"app_{n}", f"db_{n}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role))
        )
    try:
        url = connect_as(urlunsplit(urlsplit(postgres_server)._replace(path=f"/{database}")), role)
        cli_environment(monkeypatch, url, tmp_path / "home")
        leads = Leads(CliRunner())
        leads.ok("lists", "create", "fair")
        if command == "import":
            line = leads.fails("import", str(DEMO_FILE), "--list", "fair")
        else:
            with socket.socket() as probe:  # a port free now: the storage is refused before anything listens
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            line = leads.fails("dev", "--port", str(port))
        assert line == (
            f"error: Dagster's storage cannot create its tables in database {database!r} (permission denied for"
            f' schema public): have an administrator run GRANT CREATE ON SCHEMA public TO "{role}", or give Dagster'
            " a schema of its own (CREATE SCHEMA dagster) and add options=-csearch_path%3Ddagster to DATABASE_URL"
            " (the leads tables stay in schema leads)"
        )
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_database_down_mid_import_is_one_error_line_without_dagsters_retry_warnings(
    postgres_server: str,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database went down mid-import (here: it takes no connections and ends the ones it has, as a stopped
    server does): dagster-postgres retried each write to its storage six times, warning each time, and the
    command's error line came after 36 lines of them. Only the error line and Dagster's own one line saying it
    could not write its log remain; once the database is back, the same command imports the file."""
    from leads_pipeline.lib.store import imports as store

    name = urlsplit(database_url).path.lstrip("/")
    database = sql.Identifier(name)
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    leads = Leads(CliRunner())
    leads.ok("lists", "create", "fair")
    real_merge_chunk = store.merge_chunk

    def database_down(conn: psycopg.Connection[Any], **kwargs: Any) -> Any:
        with psycopg.connect(postgres_server, autocommit=True) as server:
            server.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
            server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        return real_merge_chunk(conn, **kwargs)

    monkeypatch.setattr(store, "merge_chunk", database_down)
    # its retries and their warnings all happen, without the 0.4 to 6.4 s between them (20 s of the test)
    monkeypatch.setattr(dagster_postgres.utils, "calculate_delay", lambda **_: 0.0)
    result = leads.run("import", str(DEMO_FILE), "--list", "fair")
    with psycopg.connect(postgres_server, autocommit=True) as server:
        server.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: the database went away during the command ("), lines
    assert all(
        line.startswith("error: ") or line.startswith("Exception while writing logger call to event log: ")
        for line in lines
    ), lines
    assert len(lines) <= 2, lines
    # a terminal shows them on stderr; under pytest the root logger's records come here
    assert not [record for record in caplog.records if "Retrying" in record.getMessage()]
    monkeypatch.setattr(store, "merge_chunk", real_merge_chunk)
    done = leads.json("import", str(DEMO_FILE), "--list", "fair", "--json")
    assert done["status"] == "completed"
    assert sql_value(database_url, "SELECT count(*) FROM leads") == done["results"]["imported"] > 0
