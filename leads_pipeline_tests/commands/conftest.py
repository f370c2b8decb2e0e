"""The CLI pointed at the test database and the session's sandbox; the world batch of the contact tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leads_pipeline.lib.runtime import PROJECT_ROOT, dagster_postgres_url
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import world_batch  # noqa: F401 - shared fixture


@pytest.fixture
def runner(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    home = tmp_path / "home"
    for name, value in {
        "DATABASE_URL": database_url,
        "LEADS_HOME": str(home),
        "DAGSTER_HOME": str(PROJECT_ROOT),
        "DAGSTER_PG_URL": dagster_postgres_url(database_url),
        "LEADS_DAGSTER_STORAGE": str(home / "dagster"),
        **sandbox.env(),
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner()
