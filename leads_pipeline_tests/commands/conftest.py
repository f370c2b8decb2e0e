"""The ``leads`` command against the test database, as one user or another (``LEADS_USER``), and with the
session's sandbox; the world batch of the contact tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.defs.contacts.conftest import world_batch  # noqa: F401 - shared fixture
from leads_pipeline_tests.support import Leads, cli_environment


@pytest.fixture
def leads(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Leads:
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    return Leads(CliRunner())


@pytest.fixture
def runner(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cli_environment(monkeypatch, database_url, tmp_path / "home", user=None, extra=sandbox.env())
    return CliRunner()
