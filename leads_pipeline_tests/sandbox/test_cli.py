"""``leads sandbox``: its commands work, and the rest of the CLI does not pay for loading the emulators."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from leads_pipeline.cli import app


def test_world_generate_then_leads_writes_a_world_and_a_lead_file_drawn_from_it(tmp_path: Path) -> None:
    world, leads, truth = tmp_path / "world.json", tmp_path / "leads.csv", tmp_path / "truth.json"
    runner = CliRunner()
    generated = runner.invoke(app, ["sandbox", "world", "generate", str(world), "--companies", "3", "--people", "12"])
    assert generated.exit_code == 0, generated.output
    assert "3 companies, 12 people" in generated.stdout
    written = runner.invoke(
        app, ["sandbox", "world", "leads", str(world), "--out", str(leads), "--truth", str(truth), "--seed", "1"]
    )
    assert written.exit_code == 0, written.output
    with leads.open(newline="", encoding="utf-8") as rows:
        assert len(list(csv.DictReader(rows))) == 12
    assert len(json.loads(truth.read_text(encoding="utf-8"))["rows"]) == 12


def test_a_leads_command_starts_without_loading_the_emulators() -> None:
    # In a fresh interpreter: this one has imported the sandbox already.
    probe = """
import json, sys
import leads_pipeline.cli
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("leads_pipeline.sandbox.", "dns")))))
"""
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout) == ["leads_pipeline.sandbox.cli"]
