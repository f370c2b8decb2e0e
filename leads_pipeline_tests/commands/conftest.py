"""The ``leads`` command against the test database, as one user or another (``LEADS_USER``), and with the
session's sandbox; the world batch of the contact tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from leads_pipeline.cli import app
from leads_pipeline.lib.runtime import PROJECT_ROOT, dagster_postgres_url
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import world_batch  # noqa: F401 - shared fixture


@dataclass
class Leads:
    """Runs ``leads ...`` as ``user`` (default "tester", the owner of what the tests create)."""

    runner: CliRunner

    def run(self, *args: str, user: str = "tester", stdin: str | None = None) -> Result:
        return self.runner.invoke(app, list(args), env={"LEADS_USER": user}, input=stdin)

    def ok(self, *args: str, user: str = "tester", stdin: str | None = None) -> str:
        result = self.run(*args, user=user, stdin=stdin)
        assert result.exit_code == 0, f"leads {' '.join(args)}: {result.stderr or result.output}"
        return result.stdout

    def json(self, *args: str, user: str = "tester") -> Any:
        return json.loads(self.ok(*args, user=user))

    def fails(self, *args: str, user: str = "tester", stdin: str | None = None) -> str:
        """Run a command that must fail with one ``error:`` line and no traceback; return that line."""
        result = self.run(*args, user=user, stdin=stdin)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


@pytest.fixture
def leads(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Leads:
    home = tmp_path / "home"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEADS_HOME", str(home))
    monkeypatch.setenv("LEADS_INBOX", str(home / "inbox"))
    monkeypatch.setenv("LEADS_USER", "tester")
    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_postgres_url(database_url))
    monkeypatch.setenv("LEADS_DAGSTER_STORAGE", str(home / "dagster"))
    return Leads(CliRunner())


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
