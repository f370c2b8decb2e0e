"""HubSpot over the wire: hubspot-api-client against the sandbox emulator, with the real store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import PublicMergeInput

from leads_pipeline.lib.crm.hubspot import HubSpotResource
from leads_pipeline.lib.crm.registry import resource_from_env
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.sandbox.http.hubspot import DAILY_LIMIT, HubSpotEmulator
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


def hubspot(sandbox: Sandbox) -> HubSpotEmulator:
    assert sandbox.http_app is not None
    return cast(HubSpotEmulator, sandbox.http_app.emulator("hubspot"))


def remote_by_email(sandbox: Sandbox, email: str) -> Any:
    record = hubspot(sandbox).store.find("email", email)
    assert record is not None
    return record


def test_push_creates_links_then_sends_only_changes(database_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(230, start=10_000))
    conn_ = connection("hubspot", "hs-push")
    first = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (first.status, first.created, first.updated, first.failed) == ("completed", 230, 0, 0)
    assert first.requests == 3  # batches of 100
    assert remote_by_email(sandbox, email_of(10005)).fields["firstname"] == "Ann10005"
    with connect(database_url) as db:
        assert len(store.links(db, "hs-push")) == 230
    again = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (again.leads_to_sync, again.unchanged, again.requests) == (0, 230, 0)
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'CTO' WHERE email_bidx = %s", (bidx(email_of(10007)),))
    third = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (third.leads_to_sync, third.updated, third.created) == (1, 1, 0)
    assert remote_by_email(sandbox, email_of(10007)).fields["jobtitle"] == "CTO"


def test_invalid_leads_are_not_sent_and_crm_refusals_are_recorded(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=20_000))
    hubspot(sandbox).store.create({"email": "someone.else@example.com", "leads_id": "other"})
    with transaction(database_url) as db:
        for i, (email, crm_id) in enumerate([("not-an-email", "a"), (None, "b"), ("someone.else@example.com", "c")]):
            assignments, params = set_clause(email=email) if email else ("title = title", [])
            db.execute(
                f"UPDATE leads SET {assignments}, custom = jsonb_build_object('crm id', %s::text)"
                " WHERE email_bidx = %s",
                (*params, crm_id, bidx(email_of(20_000 + i))),
            )
    mapping = {"email": "email", "last_name": "lastname", "custom.crm id": "leads_id"}
    conn_ = connection("hubspot", "hs-errors", mapping=mapping, match_key="custom.crm id")
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    assert report.invalid == 1  # not-an-email never left
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
    categories = {e["email"]: (e["action"], e["category"]) for e in errors}
    assert categories == {
        "not-an-email": ("invalid", "validation"),
        "someone.else@example.com": ("failed", "duplicate"),  # HubSpot: that email belongs to another contact
    }
    assert (report.created, report.status) == (1, "partial")
    assert hubspot(sandbox).store.find("leads_id", "b") is not None


def test_transient_faults_are_retried_and_429_retry_after_honoured(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(150, start=30_000))
    assert sandbox.http_app is not None
    before = hubspot(sandbox).store.count()
    sandbox.http_app.inject("hubspot", "429", "500", "503", "malformed")
    report = engine(database_url, sandbox, connection("hubspot", "hs-faults")).run("push", list_id)
    # the cut answer arrived after HubSpot wrote the batch: the resend updates those contacts, no duplicates
    assert (report.created + report.updated, report.failed, report.status) == (150, 0, "completed")
    assert hubspot(sandbox).store.count() - before == 150
    statuses = [r.status for r in sandbox.http_app.log.records("hubspot") if r.path.endswith("batch/upsert")]
    assert 429 in statuses and 503 in statuses


def test_persistent_failure_is_kept_and_sent_by_the_next_sync(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(5, start=40_000))
    assert sandbox.http_app is not None
    sandbox.http_app.inject("hubspot", *(["503"] * 6))
    conn_ = connection("hubspot", "hs-later")
    failed = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (failed.failed, failed.status) == (5, "partial")
    with connect(database_url) as db:
        assert {e["category"] for e in store.run_errors(db, failed.sync_id)} == {"transient"}
    later = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (later.leads_to_sync, later.created, later.failed) == (5, 5, 0)
    with connect(database_url) as db:
        open_rejects = db.execute("SELECT count(*) AS n FROM crm_rejects WHERE resolved_at IS NULL").fetchone()
    assert open_rejects is not None and open_rejects["n"] == 0


def test_expired_token_fails_the_run_with_the_variable_to_fix(
    database_url: str, tmp_path: Path, sandbox_world: Any
) -> None:
    from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings

    settings = EmulatorSettings(providers={"hubspot": ProviderSettings(api_keys=frozenset({"good-token"}))})
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=50_000))
    with (
        Sandbox.start(sandbox_world, http_settings=settings) as box,
        pytest.raises(ConfigurationError, match="HUBSPOT_ACCESS_TOKEN"),
    ):
        engine(database_url, box, connection("hubspot", "hs-auth")).run("push", list_id)
    with connect(database_url) as db:
        runs = store.list_runs(db, "hs-auth")
    assert runs[0]["status"] == "failed"


def test_pull_pages_updates_leads_records_facts_and_resolves_conflicts(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=60_000))
    conn_ = connection(
        "hubspot", "hs-pull", pull_fields={"lifecyclestage": "lifecycle_stage"}, conflict="crm_wins",
        conflict_fields={"company": "local_wins"},
    )  # fmt: skip
    engine(database_url, sandbox, conn_).run("push", list_id)
    emulator = hubspot(sandbox)
    ann = remote_by_email(sandbox, email_of(60000))
    emulator.store.touch(ann.id, jobtitle="VP Sales", lifecyclestage="opportunity")
    bob = remote_by_email(sandbox, email_of(60001))
    emulator.store.touch(bob.id, jobtitle="Remote title", company="Remote Co")
    for i in range(250):  # new contacts in the CRM: more than one search page
        emulator.store.create({"email": f"crm{i}@example.org", "firstname": f"C{i}", "lastname": "New"})
    with transaction(database_url) as db:  # the pipeline changed the same fields of bob
        db.execute(
            "UPDATE leads SET title = 'Local title', company = 'Local Co' WHERE email_bidx = %s",
            (bidx(bob.fields["email"]),),
        )
    report = engine(database_url, sandbox, conn_).run("pull", list_id)
    assert report.pulled >= 252
    with connect(database_url) as db:
        leads = {r["email"]: r for r in db.execute("SELECT * FROM leads WHERE list_id = %s", (list_id,))}
        decided = {
            c["field"]: (c["winner"], c["local_value"], c["remote_value"]) for c in store.conflicts(db, report.sync_id)
        }
        facts = db.execute("SELECT field, value FROM lead_facts WHERE source = 'crm:hs-pull'").fetchall()
    assert leads[email_of(60000)]["title"] == "VP Sales"
    assert leads["crm249@example.org"]["first_name"] == "C249"
    assert decided["jobtitle"] == ("crm", "Local title", "Remote title")
    assert decided["company"] == ("local", "Local Co", "Remote Co")
    assert leads[bob.fields["email"]]["title"] == "Remote title"
    assert leads[bob.fields["email"]]["company"] == "Local Co"
    assert {"field": "lifecycle_stage", "value": "opportunity"} in facts
    push = engine(database_url, sandbox, conn_).run("push", list_id)  # local_wins goes back to the CRM
    assert remote_by_email(sandbox, bob.fields["email"]).fields["company"] == "Local Co"
    assert push.failed == 0


def test_a_sync_that_would_exceed_the_daily_quota_stops_early_and_says_so(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(250, start=100_000))
    conn_ = connection("hubspot", "hs-quota", daily_quota=2)
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (report.status, report.created + report.updated, report.requests) == ("stopped", 200, 2)
    assert report.message is not None and "daily quota of 2 requests" in report.message
    later = engine(database_url, sandbox, conn_).run("push", list_id)  # same day: nothing more goes
    assert (later.status, later.leads_to_sync, later.requests) == ("stopped", 50, 0)


def test_the_accounts_spent_daily_limit_stops_the_push_and_the_next_sync_sends_the_rest(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """HubSpot answers every call 429 with policyName DAILY once the account's daily limit is spent, until midnight
    in its time zone. Each batch was retried six times as a ten-second 429 then kept as transient, the run asking
    again batch after batch (HubSpot wants error answers under 5% of an app's requests)."""
    list_id = import_leads(database_url, tmp_path, lead_rows(6, start=105_000))
    emulator = hubspot(sandbox)
    conn_ = connection("hubspot", "hs-daily", batch_size=2)
    sync = engine(database_url, sandbox, conn_)
    sync.concurrency = 1  # one batch after the other: the first lands, the second is refused
    emulator.usage.limit = emulator.usage.used + 1
    try:
        report = sync.run("push", list_id)
    finally:
        emulator.usage.limit = DAILY_LIMIT
    assert (report.status, report.created + report.updated, report.failed) == ("stopped", 2, 2)
    assert report.message is not None and "You have reached your daily limit" in report.message
    assert report.requests == 2  # neither retried nor the third batch asked
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
    assert [e["category"] for e in errors] == ["transient", "transient"]
    again = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (again.status, again.created + again.updated, again.failed) == ("completed", 4, 0)


def merge_over_the_wire(sandbox: Sandbox, primary: str, merged_away: str) -> None:
    """A salesperson's merge of two contacts, as hubspot-api-client sends it (POST /crm/v3/objects/contacts/merge)."""
    resource = cast(HubSpotResource, resource_from_env("hubspot", sandbox.env()))
    client = HubSpot(access_token=resource.access_token, host=resource.base_url.rstrip("/"))
    client.crm.contacts.basic_api.merge(PublicMergeInput(object_id_to_merge=merged_away, primary_object_id=primary))


def test_a_contact_merged_into_another_leads_contact_is_neither_created_again_nor_overwritten(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A salesperson merged lead A's contact into lead B's. A's next push upserted by A's email, which no contact
    has as its primary one any more: a second contact for the person just merged, counted as recreated. Now the
    merge is read (the merged-away id reads as B's contact): A is a 'merged' failure, nothing is created, and B's
    contact keeps B's values."""
    conn_ = connection("hubspot", "hs-merged")
    list_id, (merged_away, survivor) = pushed(database_url, sandbox, tmp_path, conn_, 2, 116_000)
    merge_over_the_wire(sandbox, survivor["remote_id"], merged_away["remote_id"])
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (merged_away["lead_id"],))
    contacts = hubspot(sandbox).store
    before = contacts.count()
    report, errors, links = pushed_again(database_url, sandbox, conn_, list_id)
    assert (report.created, report.recreated, report.failed, contacts.count()) == (0, 0, 1, before)
    assert [(e["lead_id"], e["category"]) for e in errors] == [(merged_away["lead_id"], "merged")]
    assert f"lead {survivor['lead_id']} is linked to" in errors[0]["message"]
    assert contacts.get(survivor["remote_id"]).fields["jobtitle"] == "Engineer"
    assert links[merged_away["lead_id"]] == merged_away["remote_id"]


def test_a_contact_merged_into_a_contact_no_lead_holds_is_followed(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Lead A's contact merged into a contact entered in HubSpot by hand: A's next push created A's contact again
    beside the survivor. Now it updates the survivor, by id, with A's change and its email, and links A to it
    (relinked); the survivor's other values stay."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=117_000))
    conn_ = connection("hubspot", "hs-followed")
    engine(database_url, sandbox, conn_).run("push", list_id)
    contacts = hubspot(sandbox).store
    kept = contacts.create({"email": "ann.lee@example.org", "firstname": "Ann", "lastname": "Lee"})
    with connect(database_url) as db:
        (link,) = store.links(db, conn_.name)
    merge_over_the_wire(sandbox, kept.id, link["remote_id"])
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (link["lead_id"],))
    before = contacts.count()
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    with connect(database_url) as db:
        (relinked,) = store.links(db, conn_.name)
        errors = store.run_errors(db, report.sync_id)
    assert (report.created, report.updated, report.recreated, contacts.count()) == (0, 1, 1, before)
    assert relinked["remote_id"] == kept.id
    assert [e["action"] for e in errors] == ["relinked"]
    # the match key goes with the update (as with every update): the lead's later upserts by email find it
    assert (contacts.get(kept.id).fields["jobtitle"], contacts.get(kept.id).fields["email"]) == (
        "Head of Sales", email_of(117_000))  # fmt: skip


def test_a_value_with_emoji_is_truncated_to_the_length_hubspot_takes(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """``truncate:65536`` cut at 65,536 code points: a title of 40,000 emoji (80,000 UTF-16 code units) went whole
    and were refused, longer than the 65,536 characters a HubSpot value holds. They are cut at 65,536 units."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=231_000))
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = %s WHERE list_id = %s", ("\U0001f4c8" * 40_000, list_id))
    mapping = {**MAPPINGS["hubspot"], "title": {"crm_field": "jobtitle", "transforms": ["truncate:65536"]}}
    report = engine(database_url, sandbox, connection("hubspot", "hs-emoji", mapping=mapping)).run("push", list_id)
    assert (report.created, report.failed) == (1, 0)
    assert remote_by_email(sandbox, email_of(231_000)).fields["jobtitle"] == "\U0001f4c8" * 32_768


def test_an_engagement_field_changed_before_a_push_is_recorded_by_the_next_pull(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A salesperson moved a contact's lifecycle stage (a pull_fields field, never pushed) after a pull and before
    the lead's next push: the next pull skipped the record as the push's own (no field the push left out had
    changed), so the stage reached the lead's facts only with the record's next change in HubSpot. It is
    recorded now, and a record whose stage did not change records no fact again."""
    stage = {"lifecyclestage": "lifecycle_stage"}
    list_id, (moved, kept) = pushed(database_url, sandbox, tmp_path, connection("hubspot", "hs-stage"), 2, 118_000)
    conn_ = connection("hubspot", "hs-stage", pull_fields=stage)
    records = hubspot(sandbox).store
    for link in (moved, kept):
        records.touch(link["remote_id"], lifecyclestage="lead")
    with transaction(database_url) as db:  # the pull reads only this test's records
        store.set_pull_cursor(db, conn_.name, records.get(moved["remote_id"]).updated - timedelta(milliseconds=1))
    assert engine(database_url, sandbox, conn_).run("pull", list_id).pulled == 2
    records.touch(moved["remote_id"], lifecyclestage="opportunity")  # the salesperson
    with transaction(database_url) as db:
        assignments, params = set_clause(title="Head of Sales")
        db.execute(f"UPDATE leads SET {assignments}, updated_at = now() WHERE list_id = %s", (*params, list_id))
    assert engine(database_url, sandbox, conn_).run("push", list_id).updated == 2
    report = engine(database_url, sandbox, conn_).run("pull", list_id)
    with connect(database_url) as db:
        facts = db.execute("SELECT lead_id, value FROM lead_facts WHERE source = 'crm:hs-stage' ORDER BY id").fetchall()
    assert report.pulled == 1
    assert [(f["lead_id"], f["value"]) for f in facts] == [
        (moved["lead_id"], "lead"), (kept["lead_id"], "lead"), (moved["lead_id"], "opportunity")
    ]  # fmt: skip
