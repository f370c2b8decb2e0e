"""Salesforce over the wire: simple-salesforce over TLS against the sandbox emulator, with the real store."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.lib.store.lists import ensure_list
from leads_pipeline.sandbox.http.salesforce import DAILY_API_LIMIT, SalesforceEmulator
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import (
    MAPPINGS,
    connection,
    email_of,
    engine,
    import_leads,
    lead_rows,
    pushed,
    pushed_again,
)
from leads_pipeline_tests.support import bidx, set_clause

pytestmark = pytest.mark.integration


def salesforce(sandbox: Sandbox) -> SalesforceEmulator:
    assert sandbox.http_app is not None
    return cast(SalesforceEmulator, sandbox.http_app.emulator("salesforce"))


def test_composite_upsert_per_record_errors_and_idempotent_resend(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(205, start=70_000))
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET company = NULL WHERE email_bidx = %s", (bidx(email_of(70_001)),))
    leads = salesforce(sandbox).stores["Lead"]
    leads.create({"Email": email_of(70_002), "LastName": "Twin", "Company": "Other", "Leads_Id__c": "x-1"})
    conn_ = connection("salesforce", "sf-composite", batch_size=200)
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    # lead ids (the external id) restart in every test database while the emulator lives for the session
    assert (report.invalid, report.created + report.updated, report.failed, report.requests) == (1, 203, 1, 2)
    with connect(database_url) as db:
        errors = {e["email"]: e["category"] for e in store.run_errors(db, report.sync_id)}
    assert errors == {email_of(70_001): "validation", email_of(70_002): "duplicate"}
    with transaction(database_url) as db:  # a crash after sending, before recording: the links are lost
        db.execute("DELETE FROM crm_links WHERE connection = 'sf-composite'")
    before = leads.count()
    again = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (again.created, again.updated) == (0, 203)
    assert leads.count() == before


def test_bulk_api_above_threshold_and_pull_pages(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(300, start=80_000))
    with transaction(database_url) as db:
        assignments, params = set_clause(email="broken@")
        db.execute(f"UPDATE leads SET {assignments} WHERE email_bidx = %s", (*params, bidx(email_of(80_003))))
        db.execute(
            "UPDATE leads SET last_name = NULL, full_name = NULL WHERE email_bidx = %s", (bidx(email_of(80_004)),)
        )
    conn_ = connection("salesforce", "sf-bulk", bulk_threshold=100, pull_fields={"Status": "lead_status"})
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (report.created + report.updated, report.invalid, report.failed) == (298, 2, 0)
    assert sandbox.http_app is not None
    paths = [r.path for r in sandbox.http_app.log.records("salesforce")]
    assert any(p.endswith("/jobs/ingest") for p in paths)
    leads = salesforce(sandbox).stores["Lead"]
    for i in range(2100):  # more than one SOQL page (2,000)
        leads.create({"LastName": f"Crm{i}", "Company": "Made In CRM", "Email": f"crm{i}@sf.example", "Status": "Open"})
    pulled = engine(database_url, sandbox, conn_, **salesforce_env).run("pull", list_id)
    assert pulled.pulled >= 2100
    with connect(database_url) as db:
        made = db.execute(
            "SELECT count(*) AS n FROM leads WHERE list_id = %s AND company = 'Made In CRM'", (list_id,)
        ).fetchone()
    assert made is not None and made["n"] == 2100


def test_a_runs_bulk_api_jobs_run_side_by_side(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """The match-key claims that keep concurrent pushes from creating a person twice must not queue a run's Bulk
    API jobs one behind the other: each job waits until all three are in flight, which they never are if one
    waits for another (the barrier breaks after its timeout and the run fails)."""
    list_id = import_leads(database_url, tmp_path, lead_rows(6, start=85_000))
    sync = engine(database_url, sandbox, connection("salesforce", "sf-bulk-jobs", bulk_threshold=2), **salesforce_env)
    sync.connector.bulk_batch = 2  # type: ignore[attr-defined]
    push_bulk = sync.connector.push_bulk  # type: ignore[attr-defined]
    together = threading.Barrier(3, timeout=20)

    def met(records: Any) -> Any:
        together.wait()  # all three jobs hold their claims here at once
        return push_bulk(records)

    sync.connector.push_bulk = met  # type: ignore[attr-defined]
    report = sync.run("push", list_id)
    assert (report.status, report.created + report.updated) == ("completed", 6)  # ids restart per database
    assert not together.broken


def test_the_orgs_used_up_daily_api_allocation_stops_the_push_and_the_next_sync_sends_the_rest(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """Salesforce answers every call 403 REQUEST_LIMIT_EXCEEDED ('TotalRequests Limit exceeded.') once the org's
    rolling 24-hour API allocation is used up. That is no refusal of the records: they were kept as permanent
    failures, never sent again until each lead changed, and every batch of the run kept asking."""
    list_id = import_leads(database_url, tmp_path, lead_rows(6, start=86_000))
    emulator = salesforce(sandbox)
    conn_ = connection("salesforce", "sf-allocation", batch_size=2)
    sync = engine(database_url, sandbox, conn_, **salesforce_env)
    sync.concurrency = 1  # one batch after the other: the first lands, the second is refused
    emulator.usage.limit = emulator.usage.used + 1
    try:
        report = sync.run("push", list_id)
    finally:
        emulator.usage.limit = DAILY_API_LIMIT
    assert (report.status, report.created + report.updated, report.failed) == ("stopped", 2, 2)
    assert report.message is not None and "TotalRequests Limit exceeded" in report.message
    assert report.requests == 2  # the third batch never asked
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
    assert {e["category"] for e in errors} == {"transient"}
    assert all("TotalRequests Limit exceeded" in e["message"] for e in errors)
    again = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (again.status, again.created + again.updated, again.failed) == ("completed", 4, 0)


def test_a_lead_merged_into_another_leads_record_is_neither_created_again_nor_overwritten(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A salesperson merged lead A's Salesforce Lead into lead B's: the merge deleted A's record. A's next push
    upserted by A's external id and created the record again, a duplicate of the person just merged (counted as
    recreated). Now queryAll shows the record deleted by a merge into B's (MasterRecordId): A is a 'merged' failure,
    nothing is created, and B's record keeps B's values."""
    conn_ = connection("salesforce", "sf-merged")
    list_id, (merged_away, survivor) = pushed(database_url, sandbox, tmp_path, conn_, 2, 118_000, **salesforce_env)
    emulator = salesforce(sandbox)
    emulator.merge("Lead", survivor["remote_id"], merged_away["remote_id"])
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (merged_away["lead_id"],))
    records = emulator.stores["Lead"]
    before = records.count()
    report, errors, links = pushed_again(database_url, sandbox, conn_, list_id, **salesforce_env)
    assert (report.created, report.recreated, report.failed, records.count()) == (0, 0, 1, before)
    assert [(e["lead_id"], e["category"]) for e in errors] == [(merged_away["lead_id"], "merged")]
    assert f"lead {survivor['lead_id']} is linked to" in errors[0]["message"]
    assert records.get(survivor["remote_id"]).fields["Title"] == "Engineer"
    assert links[merged_away["lead_id"]] == merged_away["remote_id"]


def test_a_lead_merged_into_a_record_no_lead_holds_is_followed(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """Lead A's record merged into a Lead entered in Salesforce by hand: A's next push created A's record again
    beside the master. Now it updates the master by id with A's change and external id, and links A to it
    (relinked); the master's other values stay."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=119_000))
    conn_ = connection("salesforce", "sf-followed")
    engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    emulator = salesforce(sandbox)
    records = emulator.stores["Lead"]
    kept = records.create({"Email": "ann.lee@example.org", "LastName": "Lee", "Company": "Acme Holdings"})
    with connect(database_url) as db:
        (link,) = store.links(db, conn_.name)
    emulator.merge("Lead", kept.id, link["remote_id"])
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (link["lead_id"],))
    before = records.count()
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    with connect(database_url) as db:
        (relinked,) = store.links(db, conn_.name)
        errors = store.run_errors(db, report.sync_id)
    assert (report.created, report.updated, report.recreated, records.count()) == (0, 1, 1, before)
    assert relinked["remote_id"] == kept.id
    assert [e["action"] for e in errors] == ["relinked"]
    fields = records.get(kept.id).fields
    assert (fields["Title"], fields["Company"], str(fields["Leads_Id__c"])) == (
        "Head of Sales", "Acme Holdings", str(link["lead_id"]))  # fmt: skip


def test_a_lead_follows_a_chain_of_merges_to_its_last_survivor(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """Lead A's record merged into X, X later merged into Y (both entered by hand): only the first merge was read,
    so A's update went by id to X, deleted (ENTITY_IS_DELETED), and A failed as not_found at every push. Now the
    chain is followed to Y, which is updated with A's change and to which A is linked (relinked)."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=119_500))
    conn_ = connection("salesforce", "sf-chain")
    engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    emulator = salesforce(sandbox)
    records = emulator.stores["Lead"]
    middle = records.create({"Email": "cy.lee@example.org", "LastName": "Lee", "Company": "Acme Group"})
    last = records.create({"Email": "cy.lee@example.net", "LastName": "Lee", "Company": "Acme Holdings"})
    with connect(database_url) as db:
        (link,) = store.links(db, conn_.name)
    emulator.merge("Lead", middle.id, link["remote_id"])
    emulator.merge("Lead", last.id, middle.id)
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (link["lead_id"],))
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    with connect(database_url) as db:
        (relinked,) = store.links(db, conn_.name)
        errors = store.run_errors(db, report.sync_id)
    assert [(e["action"], e["category"]) for e in errors] == [("relinked", None)]
    assert (report.created, report.updated, report.failed, report.recreated) == (0, 1, 0, 1)
    assert relinked["remote_id"] == last.id
    fields = records.get(last.id).fields  # type: ignore[union-attr]
    assert (fields["Title"], fields["Company"]) == ("Head of Sales", "Acme Holdings")


def test_a_bulk_push_follows_a_merge_too_reading_the_merges_in_parts(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A push above the Bulk API threshold sends the leads following a merge by id, not in the upsert job that would
    create their merged-away records again; the merges are read ``survivors_max`` ids a queryAll (its SOQL goes in
    the URL, which with the headers Salesforce takes up to 16,384 bytes: a 10,000-record job's ids do not fit one)."""
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=120_000))
    conn_ = connection("salesforce", "sf-bulk-merged", bulk_threshold=1)
    engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    emulator = salesforce(sandbox)
    records = emulator.stores["Lead"]
    kept = records.create({"Email": "bo.lee@example.org", "LastName": "Lee", "Company": "Acme Holdings"})
    with connect(database_url) as db:
        merged_away, *others = store.links(db, conn_.name)
    emulator.merge("Lead", kept.id, merged_away["remote_id"])
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales'")
    before = records.count()
    sync = engine(database_url, sandbox, conn_, **salesforce_env)
    sync.connector.survivors_max = 2  # type: ignore[attr-defined]
    asked: list[int] = []
    read = sync.connector.merges_and_current  # type: ignore[attr-defined]
    sync.connector.merges_and_current = lambda ids, fields: asked.append(len(ids)) or read(ids, fields)  # type: ignore[attr-defined]
    report = sync.run("push", list_id)
    with connect(database_url) as db:
        links = {link["lead_id"]: link["remote_id"] for link in store.links(db, conn_.name)}
    assert (report.created, report.updated, report.recreated, records.count()) == (0, 3, 1, before)
    assert sorted(asked) == [1, 2]
    assert links[merged_away["lead_id"]] == kept.id
    assert [records.get(links[o["lead_id"]]).fields["Title"] for o in others] == ["Head of Sales"] * 2
    assert records.get(kept.id).fields["Title"] == "Head of Sales"


def test_a_bulk_push_sends_what_the_leads_changed_keeping_a_salespersons_edit_of_the_rest(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """Above the Bulk API threshold a push sent every field of every record: a title a salesperson had set on a
    record whose lead changed only its company was overwritten with the lead's old title (the composite push leaves
    such fields out), and a title the lead no longer had was sent empty, which Bulk API 2.0 ignores on update. The
    job's CSV now has the changed fields, the others empty (left as they are), and #N/A for a cleared one."""
    conn_ = connection("salesforce", "sf-bulk-changed", bulk_threshold=1)
    list_id, links = pushed(database_url, sandbox, tmp_path, conn_, 3, 232_000, **salesforce_env)
    records = salesforce(sandbox).stores["Lead"]
    moved, cleared, untouched = links
    records.touch(moved["remote_id"], Title="VP Sales")  # the salesperson's edit
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET company = 'Moved Co', updated_at = now() WHERE id = %s", (moved["lead_id"],))
        db.execute("UPDATE leads SET title = NULL, updated_at = now() WHERE id = %s", (cleared["lead_id"],))
    assert sandbox.http_app is not None
    jobs_before = sum(p.endswith("/jobs/ingest") for p in (r.path for r in sandbox.http_app.log.records("salesforce")))
    report, errors, _ = pushed_again(database_url, sandbox, conn_, list_id, **salesforce_env)
    jobs = sum(p.endswith("/jobs/ingest") for p in (r.path for r in sandbox.http_app.log.records("salesforce")))
    assert (report.updated, report.failed, errors, jobs - jobs_before) == (2, 0, [], 1)
    fields = {link["lead_id"]: records.get(link["remote_id"]).fields for link in links}
    assert (fields[moved["lead_id"]]["Title"], fields[moved["lead_id"]]["Company"]) == ("VP Sales", "Moved Co")
    assert fields[cleared["lead_id"]].get("Title") is None
    assert fields[untouched["lead_id"]]["Title"] == "Engineer"


def test_a_title_with_emoji_is_truncated_to_the_length_salesforce_counts(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """``truncate:128`` cut at 128 code points, and Salesforce counts UTF-16 code units (an emoji is two): a title
    with emoji stayed longer than Title's 128 and the record was refused, STRING_TOO_LONG. It is cut at 128 units,
    an emoji never in two, and the record is created; a value that long untruncated is still refused."""
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=230_000))
    title = "Head of Growth " + "\U0001f680" * 120  # 135 code points, 255 UTF-16 code units
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = %s WHERE list_id = %s", (title, list_id))
    mapping = {**MAPPINGS["salesforce"], "title": {"crm_field": "Title", "transforms": ["truncate:128"]}}
    report = engine(database_url, sandbox, connection("salesforce", "sf-emoji", mapping=mapping), **salesforce_env)
    assert report.run("push", list_id).failed == 0
    stored = salesforce(sandbox).stores["Lead"].find("Email", email_of(230_000))
    assert stored is not None
    assert stored.fields["Title"] == "Head of Growth " + "\U0001f680" * 56  # 127 units: a 57th would be 129

    untruncated = engine(database_url, sandbox, connection("salesforce", "sf-emoji-whole"), **salesforce_env)
    failed = untruncated.run("push", list_id)
    with connect(database_url) as db:
        errors = store.run_errors(db, failed.sync_id)
    assert failed.failed == 2 and all("Title: data value too large" in e["message"] for e in errors), errors


def test_a_pulled_description_keeps_its_lines_and_a_pulled_name_is_one_line(
    database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str]
) -> None:
    """A pull stored a CRM's values as they came: a name or a company with a line break (typed in a text area,
    pasted from an email signature) kept it, and a Description pulled into a custom field kept its CRLF and stray
    spaces. A pulled value is stored as an import stores it: the Description, into notes or into a custom field,
    keeps its lines (as LF, spaces collapsed within each), a name and a company are one line."""
    record = salesforce(sandbox).stores["Lead"].create(
        {"FirstName": "Ann\nMarie", "LastName": "Lines", "Company": "Acme\r\nIberia", "Email": "ann.lines@sf.example",
         "Description": "Met at the fair \r\n- wants a demo\r\n\r\n-  20 seats\r\n"}
    )  # fmt: skip
    mapping = {"id": "Leads_Id__c", "email": "Email", "first_name": "FirstName", "last_name": "LastName",
               "company": "Company"}  # fmt: skip
    stored: dict[str, dict[str, Any]] = {}
    for n, into in enumerate(("notes", "custom.Description")):
        pull = connection("salesforce", f"sf-lines-{n}", direction="pull", mapping={**mapping, into: "Description"})
        with transaction(database_url) as db:  # the pull reads only this test's record
            list_id = ensure_list(db, f"Lines {into}", owner="tester").id
            store.ensure_connection(db, pull.name, pull.crm)
            store.set_pull_cursor(db, pull.name, record.updated - timedelta(milliseconds=1))
        assert engine(database_url, sandbox, pull, **salesforce_env).run("pull", list_id).pulled >= 1
        with connect(database_url) as db:
            stored[into] = db.execute(
                "SELECT * FROM leads WHERE list_id = %s AND email_bidx = %s", (list_id, bidx("ann.lines@sf.example"))
            ).fetchone()
    description = "Met at the fair\n- wants a demo\n\n- 20 seats"
    assert stored["notes"]["notes"] == description
    assert stored["custom.Description"]["custom"] == {"Description": description}
    for lead in stored.values():
        assert (lead["first_name"], lead["company"], lead["company_key"]) == ("Ann Marie", "Acme Iberia", "acme iberia")
