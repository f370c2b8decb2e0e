"""``leads dnc import`` and what the phone stage does with the list: dnc flags, snapshot date, freshness check."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from leads_pipeline.cli import app
from leads_pipeline.defs.contacts.assets import phone_contacts
from leads_pipeline.defs.contacts.checks import DNC_FRESH_CHECK, dnc_fresh_check
from leads_pipeline.lib.contacts.dnc import read_dnc_file
from leads_pipeline.lib.errors import InputFileError
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, sandbox_resources
from leads_pipeline_tests.support import sql_value


def test_ftc_and_plain_files(tmp_path: Path) -> None:
    ftc = tmp_path / "201.txt"
    ftc.write_text("201,5550123\n201,555-0124\nnot,a number\n\n")
    parsed = read_dnc_file(ftc, "ftc")
    assert parsed.numbers == {"+12015550123", "+12015550124"} and parsed.rejected == 1
    assert parsed.problems[0].startswith(f"{ftc}:3: expected 'area code,number'")
    plain = tmp_path / "plain.txt"
    plain.write_text("number\n(201) 555-0125\n+44 20 7946 0018\n")
    assert read_dnc_file(plain, "plain").numbers == {"+12015550125", "+442079460018"}
    with pytest.raises(InputFileError, match="no phone number found"):
        read_dnc_file(plain, "ftc")


def test_freshness_is_a_warning() -> None:
    today = date(2026, 11, 28)
    assert dnc_fresh_check((today - timedelta(days=3)).isoformat(), today).passed
    stale = dnc_fresh_check((today - timedelta(days=40)).isoformat(), today)
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert not dnc_fresh_check(None, today).passed


def test_phones_on_the_list_are_flagged_with_the_snapshot(
    runner: CliRunner,
    database_url: str,
    sandbox: Sandbox,
    world_batch: WorldBatch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with connect(database_url) as conn:
        numbers = [r["phone"] for r in conn.execute("SELECT phone FROM leads WHERE phone IS NOT NULL ORDER BY id")]
        numbers = [n for n in numbers if n.startswith("+1")][:3]  # sealed in the table: filtered once opened
    assert numbers
    listed = tmp_path / "dnc.txt"
    listed.write_text("".join(f"{n[2:5]},{n[5:]}\n" for n in numbers) + "garbage\n")
    snapshot = date.today().isoformat()
    # the registry is every list's: someone who does not own every list cannot replace or empty it
    monkeypatch.setenv("LEADS_USER", "bob")
    refused = runner.invoke(app, ["dnc", "import", str(listed), "--snapshot", snapshot, "--kind", "full"])
    assert refused.exit_code == 1 and "user 'bob' does not own every list" in refused.stderr
    assert "loading a Do-Not-Call list reaches every list" in refused.stderr
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM dnc_lists").fetchone() == {"n": 0}
    monkeypatch.setenv("LEADS_PRIVACY_OFFICERS", "bob")
    result = runner.invoke(app, ["dnc", "import", str(listed), "--snapshot", snapshot, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["numbers"] == len(numbers) and json.loads(result.stdout)["rejected"] == 1
    bad = runner.invoke(app, ["dnc", "import", str(listed), "--snapshot", "yesterday"])
    assert bad.exit_code == 1 and "expected a date" in bad.stderr
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    future = runner.invoke(app, ["dnc", "import", str(listed), "--snapshot", tomorrow])
    assert future.exit_code == 1 and f"--snapshot {tomorrow} is in the future" in future.stderr

    outcome = materialize([phone_contacts], world_batch.batch_id, sandbox_resources(sandbox, database_url))
    checks = {c.check_name: c for c in outcome.get_asset_check_evaluations()}
    assert checks[DNC_FRESH_CHECK].passed
    with connect(database_url) as conn:
        facts = list(conn.execute("SELECT value, details FROM lead_facts WHERE field = 'phone' AND value IS NOT NULL"))
    flagged = {f["value"] for f in facts if f["details"]["dnc"]}
    assert flagged == set(numbers)
    assert all(f["details"]["dnc_snapshot"] == snapshot for f in facts)


def test_a_file_that_is_no_dnc_list_is_not_shown_in_the_error(leads: Leads, tmp_path: Path) -> None:
    """`leads dnc import` of a symlink to the leads home's key file printed the key line in its error: a rejected
    line is named by its file and line number, and only a line of digits and separators is shown, cut short."""
    leads.ok("lists", "create", "fair")  # the leads home, its key file, made
    link = tmp_path / "dnc.txt"
    link.symlink_to(tmp_path / "home" / "encryption.keys")
    secret = (tmp_path / "home" / "encryption.keys").read_text().split()[-1].split(":")[1]
    line = leads.fails("dnc", "import", str(link), "--snapshot", date.today().isoformat())
    assert f"{link}:1: expected 'area code,number' like 201,5550123, found a line of " in line
    assert secret[:12] not in line
    numbers = tmp_path / "plain.txt"
    numbers.write_text("201 555 0123 4567 8910 1112\n")
    line = leads.fails("dnc", "import", str(numbers), "--snapshot", date.today().isoformat())
    assert f"{numbers}:1: expected 'area code,number' like 201,5550123, found '201 555 0123 4567 89'..." in line


def test_plain_numbers_are_read_in_the_configured_default_region(
    leads: Leads, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UK registry's national numbers were read as US ones unless `--default-region GB` was given:
    LEADS_DEFAULT_REGION reads them, and the option still wins (the same line, read in the US, is another number)."""
    leads.ok("lists", "create", "fair")
    numbers = tmp_path / "uk.txt"
    numbers.write_text("020 7946 0958\n")
    args = ("dnc", "import", str(numbers), "--format", "plain", "--snapshot", date.today().isoformat())
    monkeypatch.setenv("LEADS_DEFAULT_REGION", "GB")
    leads.ok(*args)
    assert sql_value(database_url, "SELECT count(*) FROM dnc_numbers") == 1
    leads.ok(*args, "--kind", "additions")
    assert sql_value(database_url, "SELECT count(*) FROM dnc_numbers") == 1, "read in GB again: the same number"
    leads.ok(*args, "--kind", "additions", "--default-region", "US")
    assert sql_value(database_url, "SELECT count(*) FROM dnc_numbers") == 2
