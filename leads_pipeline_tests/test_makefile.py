"""The Makefile's targets do what they say without more than they need."""

from __future__ import annotations

import re
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


def test_make_help_lists_every_target_readme_mentions_one_line_each(tmp_path: Path) -> None:
    """There was no ``make help``, and a plain ``make`` only creates the virtualenv: the targets were found by
    reading README or the Makefile. Each listed target exists, and listing them installs nothing."""
    venv = tmp_path / "no-venv"
    listed = subprocess.run(
        ["make", "--silent", "help", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    targets = [line.split()[1] for line in listed]
    assert all(line.startswith("make ") and len(line.split()) > 3 for line in listed), listed
    assert not venv.exists()
    mentioned = set(re.findall(r"`make ([.\w][\w./-]*)", (REPO / "README.md").read_text(encoding="utf-8")))
    assert sorted(targets) == sorted(mentioned | {"help"})
    for target in targets:  # make exits 2 on a target it has no rule for
        subprocess.run(["make", "--dry-run", target], cwd=REPO, capture_output=True, check=True)


def test_readme_starts_with_the_two_commands_a_newcomer_runs() -> None:
    """README opens with exactly ``make demo`` and ``make test``; a third line (``make help``) had crept into that
    block, where a newcomer reads every line as a step to run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "demo"], ["make", "test"]]
