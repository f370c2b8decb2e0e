"""The Makefile's targets do what they say without more than they need."""

from __future__ import annotations

import subprocess
from pathlib import Path

from leads_pipeline_tests.paths import REPO


def test_make_stop_and_clean_install_nothing_where_no_virtualenv_was_made(tmp_path: Path) -> None:
    """``make stop`` (and ``make clean``, which runs it) in a fresh clone, or after removing .venv, first created
    the virtualenv and installed every dependency (minutes) to stop a server nothing had started."""
    venv = tmp_path / "no-venv"
    dry_run = subprocess.run(
        ["make", "--dry-run", "--always-make", "stop", "clean", f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pip" not in dry_run and "leads db stop" in dry_run, dry_run  # skipped without a .venv, not installed for
    subprocess.run(["make", "stop", f"VENV={venv}"], cwd=REPO, capture_output=True, check=True)
    assert not venv.exists()
