"""``leads privacy delete`` then ``leads privacy crm-erasures --process`` as a user runs them: the person synced to
HubSpot and Pipedrive is deleted in both emulators through the crm_erasures asset, audited, and the person's own
export lists the requests; the hourly schedule targets the same asset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from typer.testing import CliRunner

from leads_pipeline.defs.security.schedules import crm_erasures_schedule
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import email_of, import_leads, lead_rows
from leads_pipeline_tests.support import Leads, cli_environment

pytestmark = pytest.mark.integration
MAPPINGS = {
    "hubspot": {"email": "email", "first_name": "firstname", "last_name": "lastname"},
    "pipedrive": {"email": "email", "first_name": "first_name", "last_name": "last_name"},
}


@pytest.fixture
def leads(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Leads:
    extra = {**sandbox.env(), "LEADS_CRM_DIR": str(tmp_path / "crm")}
    cli_environment(monkeypatch, database_url, tmp_path / "home", extra=extra)
    (tmp_path / "crm").mkdir()
    for crm, mapping in MAPPINGS.items():
        settings = {"crm": crm, "mapping": mapping, "direction": "push", "list": "prospects"}
        settings["rate_limit"] = {"requests": 1000, "per_seconds": 1}
        (tmp_path / "crm" / f"{crm}-main.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return Leads(CliRunner())


def test_erasure_deletes_the_person_in_hubspot_and_pipedrive_through_dagster(
    leads: Leads, database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    import_leads(database_url, tmp_path, lead_rows(4, start=160_000))
    email, kept = email_of(160_000), email_of(160_001)
    for crm in MAPPINGS:
        assert leads.json("sync", "--crm", f"{crm}-main", "--json")["created"] == 4
    assert sandbox.http_app is not None
    hubspot: Any = sandbox.http_app.emulator("hubspot")
    pipedrive: Any = sandbox.http_app.emulator("pipedrive")
    assert hubspot.store.find("email", email) is not None and pipedrive.store.find("primary_email", email) is not None

    erased = leads.json("privacy", "delete", email, "--yes", "--json")
    assert erased["crmErasures"] == 2
    assert "2 CRM records queued for deletion" in leads.ok("privacy", "delete", kept, "--yes")
    queued = leads.json("privacy", "crm-erasures", "--status", "pending", "--json")["requests"]
    assert sorted(r["connection"] for r in queued) == [
        "hubspot-main",
        "hubspot-main",
        "pipedrive-main",
        "pipedrive-main",
    ]

    for stranger in (("privacy", "crm-erasures"), ("privacy", "crm-erasures", "--process")):
        refused = leads.fails(*stranger, user="mallory")  # a user of no list saw and sent the whole queue
        assert "LEADS_PRIVACY_OFFICERS" in refused and "160" not in refused

    done = leads.json("privacy", "crm-erasures", "--process", "--json")
    assert done["processed"] == {"deleted": 4, "absent": 0, "failed": 0, "retryLater": 0, "pending": 0, "blocked": {}}
    assert {r["outcome"] for r in done["requests"]} == {"deleted"}
    for address in (email, kept):
        assert hubspot.store.find("email", address) is None, "deleted in HubSpot"
        assert pipedrive.store.find("primary_email", address) is None, "deleted in Pipedrive"
    assert hubspot.store.find("email", email_of(160_002)) is not None, "nobody else"

    again = leads.json("privacy", "crm-erasures", "--process", "--json")["processed"]
    assert again["deleted"] == again["pending"] == 0
    audited = leads.json("audit", "--action", "privacy.crm-erasure", "--json")
    assert len(audited) == 4 and email not in json.dumps(audited)
    exported = json.loads(leads.ok("privacy", "export", email))
    assert {e["action"] for e in exported["data"]["audit_log"]} == {"privacy.delete", "privacy.crm-erasure"}
    assert len(exported["data"]["crm_erasures"]) == 2 and exported["suppressed"] is True
    with connect(database_url) as conn:
        runs = conn.execute("SELECT count(*) AS n FROM public.runs").fetchone()
    assert runs is not None and runs["n"] >= 2, "the processing ran through Dagster (runs in its storage)"


def test_the_hourly_schedule_runs_the_crm_erasures_asset() -> None:
    assert crm_erasures_schedule.job_name == "crm_erasures_job"
    assert crm_erasures_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    from leads_pipeline.definitions import defs

    job = defs.resolve_job_def("crm_erasures_job")
    assert [key.to_user_string() for key in job.asset_layer.executable_asset_keys] == ["crm_erasures"]
