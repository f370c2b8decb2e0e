"""``leads demo`` as a newcomer runs it: every stage of the pipeline does its work on the shipped sample, against
the sandbox it starts itself; the numbers are read back from the database, not only from what was printed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from leads_pipeline.defs.enrichment import assets as enrichment_assets
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.runtime import leads_home
from leads_pipeline.sandbox.demo_world import DEMO_LEADS
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.support import sql_rows, sql_value

pytestmark = pytest.mark.integration


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone 13:45 ahead of UTC (restored after)."""
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_demo_runs_every_stage_and_says_what_it_did(leads: Leads, database_url: str, far_from_utc: None) -> None:
    output = leads.ok("demo")

    [lead_list] = sql_value(database_url, "SELECT array_agg(name) FROM lists")
    # named in UTC, as the job ids are (it was local time: demo-20261130-181911 for a job 20261130T043411...)
    named = datetime.strptime(lead_list, "demo-%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    created = sql_value(database_url, "SELECT created_at FROM lists")
    assert abs((created - named).total_seconds()) < 60
    [imported] = sql_rows(database_url, "SELECT * FROM imports")
    # the sample's people, plus the duplicate without an email; the same-email copy skipped, the bad row rejected
    assert (imported["imported"], imported["skipped"], imported["errors"]) == (DEMO_LEADS + 1, 1, 1)
    [rejected] = sql_rows(database_url, "SELECT * FROM import_errors WHERE severity = 'error'")
    assert rejected["row_number"] == DEMO_LEADS + 4 and "a way to reach or identify the lead" in rejected["reason"]
    assert f"rejected row {rejected['row_number']}" in output

    [job] = sql_rows(database_url, "SELECT * FROM enrichment_jobs")
    assert (job["status"], sorted(job["sources"])) == ("completed", ["company", "email", "linkedin", "phone"])
    [filled] = sql_rows(
        database_url,
        "SELECT count(*) AS leads, count(email) AS email, count(phone) AS phone, count(linkedin_url) AS linkedin,"
        " count(industry) AS industry FROM leads WHERE deleted_at IS NULL",
    )
    # the sample blanks these fields in part; enrichment finds them again from the sandbox's providers
    assert filled["leads"] == DEMO_LEADS + 1
    assert filled["email"] > 24 and filled["phone"] > 20 and filled["linkedin"] > 18
    assert filled["industry"] == filled["leads"]
    sources = sql_value(database_url, "SELECT array_agg(DISTINCT field) FROM lead_facts WHERE batch_id = %s", job["id"])
    assert {"email", "phone", "linkedin_url", "industry"} <= set(sources)
    assert f"leads with: email 24 -> {filled['email']}" in output

    # the duplicate (same first name and company, a typo in the last name, no key) is reported, through Dagster,
    # and not merged
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey("duplicate_clusters"))
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.partition == imported["batch_id"]
    assert event.asset_materialization.metadata["clusters"].value == 1
    assert "1 cluster of duplicates among the imported leads" in output  # not "1 cluster(s)"
    assert sql_value(database_url, "SELECT count(*) FROM merges") == 0
    twins = sql_value(
        database_url,
        "SELECT count(*) FROM leads WHERE first_name = 'Harry' AND last_name IN ('Turner', 'Turnerr')"
        " AND deleted_at IS NULL",
    )
    assert twins == 2

    [scores] = sql_rows(
        database_url,
        "SELECT count(*) AS scored, count(*) FILTER (WHERE band = 'warm') AS warm FROM lead_scores",
    )
    assert scores["scored"] == DEMO_LEADS + 1 and scores["warm"] > 0
    mql = sql_value(database_url, "SELECT count(*) FROM leads WHERE stage = 'mql'")
    assert mql > 0 and f"{mql} MQL" in output

    [run] = sql_rows(database_url, "SELECT * FROM crm_sync_runs")
    with_email = filled["email"]
    assert (run["status"], run["created"], run["invalid"]) == ("completed", with_email, filled["leads"] - with_email)
    links = sql_value(database_url, "SELECT count(*) FROM crm_links WHERE connection = %s", run["connection"])
    assert links == with_email
    assert (leads_home() / "crm" / f"{run['connection']}.yaml").is_file()
    assert run["connection"] == f"{lead_list}-hubspot"

    # the sandbox's endpoints and tokens do not outlive the demo
    assert "HUBSPOT_BASE_URL" not in os.environ and "LEADS_SANDBOX_HTTP" not in os.environ
    # `make dev` alone was named, which only a checkout has: an install from a wheel has `leads dev`
    for hint in ("leads dev  # the Dagster UI", f"leads search --list {lead_list}", f"leads jobs show {job['id']}"):
        assert hint in output


def test_demo_says_why_a_source_of_its_enrichment_failed(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failed stage's reason was only in Dagster's log of it, a stack trace on the demo's output; the demo's own
    lines said "job ... partial" and went on. It says which source failed and why, in a line, and goes on."""

    def deleted(name: str) -> None:
        raise ConfigurationError(f"template {name!r}: no such file")

    monkeypatch.setattr(enrichment_assets, "load_template", deleted)
    result = leads.run("demo")
    assert result.exit_code == 0, result.output
    assert "   company failed: template 'standard': no such file\n" in result.stdout
    assert "Stack Trace" not in result.stderr and "STEP_FAILURE" not in result.stderr
    assert "6. push to the sandbox's HubSpot" in result.stdout


def test_demo_names_the_sample_data_it_lacks_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed from a wheel (no shared/data beside it), `leads demo` started the embedded PostgreSQL, then failed
    saying "pass --data-dir", an option it did not have."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEADS_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    missing = tmp_path / "data"
    line = Leads(CliRunner()).fails("demo", "--data-dir", str(missing))
    file = missing / "datablist" / "organizations-10000.csv.gz"
    assert line == f"error: sample data file {file} not found: pass --data-dir DIR naming a copy of shared/data"
    assert not home.exists()
