"""Erasure requests reach the CRMs: each CRM's record of an erased person is deleted through its real client
library against the sandbox emulator, a record already gone counts as done, transient failures are retried, and
a pull never brings the erased person back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from leads_pipeline.lib.crm.erasure import process_queue
from leads_pipeline.lib.crm.registry import resource_from_env
from leads_pipeline.lib.crm.resource import CrmResource
from leads_pipeline.lib.crm.sync import RetrySettings
from leads_pipeline.lib.store import crm_erasures, privacy
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.sandbox.http.crmstore import CrmStore
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import (
    MAPPINGS,
    connection,
    email_of,
    engine,
    import_leads,
    lead_rows,
    push_killed_after_sending,
)

pytestmark = pytest.mark.integration
CRMS = ["hubspot", "salesforce", "pipedrive", "gohighlevel"]
FAST = RetrySettings(attempts=4, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEADS_SUPPRESSION_KEY", "test-suppression-key-0123456789")
    monkeypatch.setenv("LEADS_CRM_DIR", str(tmp_path / "crm"))


def _store(sandbox: Sandbox, crm: str) -> CrmStore:
    assert sandbox.http_app is not None
    emulator: Any = sandbox.http_app.emulator(crm)
    return emulator.stores["Lead"] if crm == "salesforce" else emulator.store


def _connection_file(tmp_path: Path, crm: str, name: str) -> None:
    """The connection file ``process_queue`` loads by name (the same settings as ``helpers.connection``)."""
    data: dict[str, Any] = {"crm": crm, "mapping": MAPPINGS[crm], "direction": "bidirectional", "list": "prospects"}
    data["rate_limit"] = {"requests": 1000, "per_seconds": 1}
    if crm == "salesforce":
        data["match_key"] = "id"
    folder = tmp_path / "crm"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def _pushed(database_url: str, sandbox: Sandbox, env: dict[str, str], tmp_path: Path, crm: str, start: int) -> str:
    """Three leads pushed to the CRM; returns the connection name."""
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=start))
    name = f"{crm}-erase"
    _connection_file(tmp_path, crm, name)
    report = engine(database_url, sandbox, connection(crm, name), **env).run("push", list_id)
    assert report.created + report.updated == 3  # Salesforce matches by lead id: other tests may own the ids
    return name


def _resources(sandbox: Sandbox, env: dict[str, str]) -> Any:
    def resource_for(conn: Any) -> CrmResource:
        return resource_from_env(conn.crm, {**sandbox.env(), **env})

    return resource_for


@pytest.mark.parametrize("crm", CRMS)
def test_erasure_deletes_the_person_in_the_crm_and_only_them(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    start = 150_000 + 10 * CRMS.index(crm)
    name = _pushed(database_url, sandbox, salesforce_env, tmp_path, crm, start)
    store = _store(sandbox, crm)
    email, kept = email_of(start), email_of(start + 1)
    key = "Email" if crm == "salesforce" else "primary_email" if crm == "pipedrive" else "email"
    remote = store.find(key, email)
    assert remote is not None and store.find(key, kept) is not None
    with connect(database_url) as conn:
        result = privacy.erase_person(conn, email, "tester")
        queued = conn.execute("SELECT * FROM crm_erasures").fetchall()
    assert result["crmErasures"] == 1
    assert [(r["connection"], r["crm"], r["remote_id"], r["status"]) for r in queued] == [
        (name, crm, remote.id, "pending")
    ]
    assert email not in str(queued), "the queue keeps the remote id, never the address"

    report = process_queue(database_url, _resources(sandbox, salesforce_env), actor="tester", retry=FAST)
    assert (report.deleted, report.absent, report.failed, report.pending) == (1, 0, 0, 0)
    assert store.find(key, email) is None and store.get(remote.id) is None, "gone from the CRM"
    assert store.find(key, kept) is not None, "nobody else is touched"
    with connect(database_url) as conn:
        row = conn.execute("SELECT status, outcome, attempts FROM crm_erasures").fetchone()
        audited = conn.execute("SELECT actor, object, details FROM audit_log WHERE action = %s", (crm_erasures.ACTION,))
        entries = audited.fetchall()
    assert row == {"status": "done", "outcome": "deleted", "attempts": 1}
    assert [(e["object"], e["details"]["outcome"], e["details"]["subject"]) for e in entries] == [
        (f"crm:{name}:{remote.id}", "deleted", queued[0]["subject"])
    ]
    again = process_queue(database_url, _resources(sandbox, salesforce_env), actor="tester", retry=FAST)
    assert (again.deleted, again.absent, again.pending) == (0, 0, 0), "nothing is sent twice"


def test_a_record_already_gone_counts_as_done_and_transient_failures_are_retried(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    name = _pushed(database_url, sandbox, {}, tmp_path, "pipedrive", 150_100)
    store = _store(sandbox, "pipedrive")
    gone, flaky = (store.find("primary_email", email_of(i)) for i in (150_100, 150_101))
    assert gone is not None and flaky is not None
    with connect(database_url) as conn:
        for i in (150_100, 150_101):
            privacy.erase_person(conn, email_of(i), "tester")
    store.delete(gone.id)  # someone deleted it in Pipedrive already: its 404 is success
    assert sandbox.http_app is not None
    sandbox.http_app.inject("pipedrive", "503", "429")  # the first request fails twice, then goes through
    report = process_queue(database_url, _resources(sandbox, {}), actor="tester", retry=FAST)
    assert (report.deleted, report.absent, report.failed, report.pending) == (1, 1, 0, 0)
    assert store.get(flaky.id) is None
    with connect(database_url) as conn:
        rows = conn.execute("SELECT remote_id, outcome, attempts FROM crm_erasures ORDER BY id").fetchall()
    assert sorted((r["outcome"], r["attempts"]) for r in rows) == [("absent", 3), ("deleted", 1)]
    assert name == "pipedrive-erase"


def test_erasure_removes_the_marks_a_killed_push_left_of_the_person(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Pipedrive push killed before it recorded its links leaves a mark (a hash of the match key) of each create
    it sent; an erasure left the person's, which stayed for good (an erased person's key is never pushed again).
    Each mark names its lead now, and the erasure deletes the person's marks with their leads, no one else's."""
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=96_000))
    pushed = connection("pipedrive", "pd-erase-marks", direction="push")
    push_killed_after_sending(database_url, sandbox, pushed, list_id, monkeypatch)  # the marks stay
    count = "SELECT count(*) AS n FROM crm_creates_sent WHERE connection = 'pd-erase-marks'"
    with connect(database_url) as conn:
        assert conn.execute(count).fetchone() == {"n": 2}
        result = privacy.erase_person(conn, email_of(96_000), "tester")
        assert conn.execute(count).fetchone() == {"n": 1}
        kept = conn.execute("SELECT l.email FROM crm_creates_sent m JOIN leads l ON l.id = m.lead_id").fetchall()
    assert [r["email"] for r in kept] == [email_of(96_001)]
    assert result["removed"]["crm_creates_sent"] == 1


def test_still_failing_or_unreachable_requests_stay_pending_with_the_reason(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    _pushed(database_url, sandbox, {}, tmp_path, "hubspot", 150_200)
    with connect(database_url) as conn:
        privacy.erase_person(conn, email_of(150_200), "tester")
    assert sandbox.http_app is not None
    sandbox.http_app.inject("hubspot", *["503"] * FAST.attempts)
    report = process_queue(database_url, _resources(sandbox, {}), actor="tester", retry=FAST)
    assert (report.deleted, report.retry, report.pending) == (0, 1, 1)
    (tmp_path / "crm" / "hubspot-erase.yaml").unlink()
    blocked = process_queue(database_url, _resources(sandbox, {}), actor="tester", retry=FAST)
    assert blocked.pending == 1 and "hubspot-erase" in blocked.blocked["hubspot-erase"]
    with connect(database_url) as conn:
        row = conn.execute("SELECT status, attempts, last_error FROM crm_erasures").fetchone()
    assert row is not None and (row["status"], row["attempts"]) == ("pending", FAST.attempts)
    assert "hubspot-erase" in row["last_error"]


def test_a_pull_does_not_bring_an_erased_person_back(database_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    name = _pushed(database_url, sandbox, {}, tmp_path, "hubspot", 150_300)
    store = _store(sandbox, "hubspot")
    with connect(database_url) as conn:
        privacy.erase_person(conn, email_of(150_300), "tester")
    erased = store.find("email", email_of(150_300))
    assert erased is not None
    store.touch(erased.id, jobtitle="CEO")  # edited in HubSpot before the deletion went out
    with transaction(database_url) as conn:
        list_id = conn.execute("SELECT id FROM lists WHERE name = 'prospects'").fetchone()["id"]  # type: ignore[index]
    report = engine(database_url, sandbox, connection("hubspot", name)).run("pull", list_id)
    assert report.status == "completed"
    with connect(database_url) as conn:
        found = conn.execute("SELECT count(*) AS n FROM leads WHERE email = %s", (email_of(150_300),)).fetchone()
    assert found == {"n": 0}
