"""Pipedrive and GoHighLevel over the wire (requests against the sandbox emulators), with the real store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from leads_pipeline.lib.crm.pipedrive import PipedriveConnector
from leads_pipeline.lib.crm.rest import Answer
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.contacts import update_lead_columns
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.sandbox.http.gohighlevel import DAILY_LIMIT, GoHighLevelEmulator
from leads_pipeline.sandbox.http.pipedrive import PipedriveEmulator, field_key
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import (
    connection,
    email_of,
    engine,
    import_leads,
    lead_rows,
    push_killed_after_sending,
    pushed,
    pushed_again,
)
from leads_pipeline_tests.support import bidx

pytestmark = pytest.mark.integration


def pipedrive(sandbox: Sandbox) -> PipedriveEmulator:
    assert sandbox.http_app is not None
    return cast(PipedriveEmulator, sandbox.http_app.emulator("pipedrive"))


def gohighlevel(sandbox: Sandbox) -> GoHighLevelEmulator:
    assert sandbox.http_app is not None
    return cast(GoHighLevelEmulator, sandbox.http_app.emulator("gohighlevel"))


def test_pipedrive_looks_up_before_create_and_resolves_custom_field_keys(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(12, start=90_000))
    emulator = pipedrive(sandbox)
    existing = emulator.add_person("Already There", email_of(90_000))
    conn_ = connection("pipedrive", "pd-push")
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (report.created, report.updated, report.failed) == (11, 1, 0)
    assert emulator.store.get(existing.id) is not None
    assert emulator.store.get(existing.id).fields["custom_fields"][field_key("Company")] == "Acme 9"  # type: ignore[union-attr]
    with transaction(database_url) as db:  # a crash after sending: links lost, the resend must not duplicate
        db.execute("DELETE FROM crm_links WHERE connection = 'pd-push'")
    before = emulator.store.count()
    assert sandbox.http_app is not None
    sandbox.http_app.inject("pipedrive", "503", "malformed", "429")
    again = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (again.created, again.updated, again.failed) == (0, 12, 0)
    assert emulator.store.count() == before


def test_pipedrive_a_create_whose_answer_is_cut_is_found_despite_the_search_lag(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create whose answer was cut landed, but the search after the settle time did not find the person yet
    (Pipedrive's search index lags behind its writes), so the retry created them again. Now the lost create is
    looked for in the persons list, which has the person at once: it is linked, created once."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=92_000))
    emulator = pipedrive(sandbox)
    monkeypatch.setattr(emulator, "search_lag_s", 600.0)
    sync = engine(database_url, sandbox, connection("pipedrive", "pd-cut-create", direction="push"))
    connector = cast(PipedriveConnector, sync.connector)
    monkeypatch.setattr(connector, "_settle_s", 0.0)
    api = connector._api
    call = api.call

    def cut_the_create(method: str, path: str, **kwargs: Any) -> Answer:
        if (method, path) == ("POST", "/api/v2/persons"):
            assert sandbox.http_app is not None
            sandbox.http_app.inject("pipedrive", "malformed")  # the person is created, its answer cut
        return call(method, path, **kwargs)

    monkeypatch.setattr(api, "call", cut_the_create)
    report = sync.run("push", list_id)
    created = [r for r in emulator.store.records.values() if r.fields.get("primary_email") == email_of(92_000)]
    assert len(created) == 1
    assert (report.created, report.updated, report.failed) == (1, 0, 0)
    with connect(database_url) as db:
        assert [link["remote_id"] for link in store.links(db, "pd-cut-create")] == [created[0].id]


def test_pipedrive_a_push_killed_after_its_create_is_resent_without_creating_the_person_twice(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push that created a person and died before it recorded the link (its transaction rolled back), resent
    while Pipedrive's search did not find the person yet (its index lags behind creates), searched, found nothing
    and created the person again. The create was marked, committed, before it was sent: the resend looks for the
    person in the persons list, finds them, and updates them; the mark goes with the link."""
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=94_000))
    emulator = pipedrive(sandbox)
    monkeypatch.setattr(emulator, "search_lag_s", 600.0)
    conn_ = connection("pipedrive", "pd-killed-create", direction="push")
    push_killed_after_sending(database_url, sandbox, conn_, list_id, monkeypatch)  # the people are created
    with connect(database_url) as db:
        assert store.links(db, "pd-killed-create") == []

    again = engine(database_url, sandbox, conn_).run("push", list_id)

    emails = {email_of(94_000), email_of(94_001)}
    people = [r for r in emulator.store.records.values() if r.fields.get("primary_email") in emails]
    assert len(people) == 2, "each person once"
    assert (again.status, again.created, again.updated, again.failed) == ("completed", 0, 2, 0)
    with connect(database_url) as db:
        assert sorted(link["remote_id"] for link in store.links(db, "pd-killed-create")) == sorted(p.id for p in people)
        marks = db.execute("SELECT count(*) AS n FROM crm_creates_sent WHERE connection = 'pd-killed-create'")
        assert marks.fetchone() == {"n": 0}


def test_pipedrive_a_push_killed_after_recreating_a_deleted_person_is_resent_without_creating_them_twice(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A linked lead whose person was deleted in Pipedrive is created again (the update's 404, a search that finds
    nothing); that create went unmarked, so a push killed after it and resent while the search did not find the
    new person yet created them twice. It is marked as an unlinked lead's create is: the resend finds the new
    person in the persons list, updates them and links the lead to them."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=95_000))
    emulator = pipedrive(sandbox)
    conn_ = connection("pipedrive", "pd-killed-recreate", direction="push")
    assert engine(database_url, sandbox, conn_).run("push", list_id).created == 1
    with connect(database_url) as db:
        (first,) = [link["remote_id"] for link in store.links(db, "pd-killed-recreate")]
    assert emulator.store.delete(first)
    with transaction(database_url) as db:  # a change to send: the update finds the person gone
        db.execute("UPDATE leads SET title = 'Head of Ops' WHERE email_bidx = %s", (bidx(email_of(95_000)),))
    monkeypatch.setattr(emulator, "search_lag_s", 600.0)
    push_killed_after_sending(database_url, sandbox, conn_, list_id, monkeypatch)  # the person is created again

    again = engine(database_url, sandbox, conn_).run("push", list_id)

    people = [r for r in emulator.store.records.values() if r.fields.get("primary_email") == email_of(95_000)]
    assert len(people) == 1, "created again once"
    assert people[0].id != first and people[0].fields["job_title"] == "Head of Ops"
    assert (again.status, again.created, again.updated, again.failed) == ("completed", 0, 1, 0)
    with connect(database_url) as db:
        assert [link["remote_id"] for link in store.links(db, "pd-killed-recreate")] == [people[0].id]
        marks = db.execute("SELECT count(*) AS n FROM crm_creates_sent WHERE connection = 'pd-killed-recreate'")
        assert marks.fetchone() == {"n": 0}


def test_pipedrive_a_later_push_clears_the_marks_of_keys_the_lead_no_longer_has(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push killed after its creates leaves a mark of each match key, and the resend clears the marks of the keys
    it sends; a lead whose email changed in between was resent under its new key, and its old keys' marks (hashes
    of addresses it no longer has) stayed until the lead was deleted. Recording the lead's outcome now clears the
    marks made for it, and only those: a lead of another list marked one of those keys since (the same address),
    and that mark stays for its own resend."""
    prospects = import_leads(database_url, tmp_path, lead_rows(1, start=97_000))
    others = import_leads(database_url, tmp_path, lead_rows(1, start=97_000), list_name="others")
    conn_ = connection("pipedrive", "pd-stale-mark", direction="push")

    def killed_push(list_id: int) -> None:
        push_killed_after_sending(database_url, sandbox, conn_, list_id, monkeypatch)  # the marks stay

    def change_email(lead_id: int, email: str) -> None:
        with transaction(database_url) as db:
            assert update_lead_columns(db, "email", {lead_id: email}, overwrite=True) == {lead_id}

    def marks() -> list[int]:
        with connect(database_url) as db:
            rows = db.execute("SELECT lead_id FROM crm_creates_sent WHERE connection = 'pd-stale-mark' ORDER BY 1")
            return [r["lead_id"] for r in rows]

    with connect(database_url) as db:
        ids = {r["list_id"]: r["id"] for r in db.execute("SELECT id, list_id FROM leads")}
    changed, other = ids[prospects], ids[others]
    killed_push(prospects)
    killed_push(others)  # the same address: the key's mark is the other lead's now
    change_email(changed, email_of(97_001))
    killed_push(prospects)
    assert marks() == sorted([changed, other])
    change_email(changed, email_of(97_002))

    again = engine(database_url, sandbox, conn_).run("push", prospects)

    assert (again.status, again.failed) == ("completed", 0)
    with connect(database_url) as db:
        assert [link["lead_id"] for link in store.links(db, "pd-stale-mark")] == [changed]
    assert marks() == [other]


def test_pipedrive_a_push_killed_after_its_create_then_an_email_change_updates_the_person_it_created(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push killed after it created a person (the link not recorded), then the lead's email changed: the resend
    searched for the new address, found nobody and created a second person, and the one created under the old
    address stayed in Pipedrive, linked to no lead. The mark of that create names the lead and its key then
    (hashed): the resend looks among the persons changed since for one with the lead's current or marked key,
    finds the one it created and updates it to the new address."""
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=98_000))
    emulator = pipedrive(sandbox)
    monkeypatch.setattr(emulator, "search_lag_s", 600.0)
    conn_ = connection("pipedrive", "pd-killed-moved", direction="push")
    push_killed_after_sending(database_url, sandbox, conn_, list_id, monkeypatch)  # created under the old address
    moved = "moved.98000@example.net"
    with transaction(database_url) as db:
        (lead_id,) = [r["id"] for r in db.execute("SELECT id FROM leads WHERE list_id = %s", (list_id,))]
        assert update_lead_columns(db, "email", {lead_id: moved}, overwrite=True) == {lead_id}

    again = engine(database_url, sandbox, conn_).run("push", list_id)

    emails = {email_of(98_000), moved}
    people = [r for r in emulator.store.records.values() if r.fields.get("primary_email") in emails]
    assert [p.fields["primary_email"] for p in people] == [moved], "the person created once, under the new address"
    assert (again.status, again.created, again.updated, again.failed) == ("completed", 0, 1, 0)
    with connect(database_url) as db:
        assert [link["remote_id"] for link in store.links(db, "pd-killed-moved")] == [people[0].id]
        marks = db.execute("SELECT count(*) AS n FROM crm_creates_sent WHERE connection = 'pd-killed-moved'")
        assert marks.fetchone() == {"n": 0}


def test_pipedrive_unknown_custom_field_is_a_configuration_error(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=91_000))
    conn_ = connection("pipedrive", "pd-bad", mapping={"email": "email", "title": "Seniority Level"})
    with pytest.raises(ConfigurationError, match="no person field named Seniority Level"):
        engine(database_url, sandbox, conn_).run("push", list_id)


def test_pipedrive_pull_pages(database_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=92_000))
    emulator = pipedrive(sandbox)
    for i in range(520):  # more than one page of 500
        emulator.add_person(f"P {i}", f"p{i}@pd.example", first_name="P", last_name=f"N{i}")
    report = engine(database_url, sandbox, connection("pipedrive", "pd-pull")).run("pull", list_id)
    assert report.pulled >= 520
    with connect(database_url) as db:
        row = db.execute("SELECT count(*) AS n FROM leads WHERE email_domain = 'pd.example'").fetchone()
    assert row is not None and row["n"] == 520


def test_gohighlevel_upsert_errors_version_header_and_pull(database_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(120, start=93_000))
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Ops' WHERE email_bidx = %s", (bidx(email_of(93_001)),))
    conn_ = connection("gohighlevel", "ghl-push", pull_fields={"Lifecycle Stage": "lifecycle_stage"})
    assert sandbox.http_app is not None
    sandbox.http_app.inject("gohighlevel", "429", "500")
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (report.created + report.updated, report.failed) == (120, 0)
    emulator = gohighlevel(sandbox)
    contact = emulator.store.find("email", email_of(93_001))
    assert contact is not None and contact.fields["customFields"]["cf_title"] == "Head of Ops"
    emulator.store.touch(contact.id, customFields={"cf_stage": "customer", "cf_title": "COO"})
    for i in range(130):
        emulator.store.create({"email": f"g{i}@ghl.example", "firstName": "G", "lastName": f"{i}"})
    pulled = engine(database_url, sandbox, conn_).run("pull", list_id)
    assert pulled.pulled >= 131
    with connect(database_url) as db:
        lead = db.execute("SELECT * FROM leads WHERE email_bidx = %s", (bidx(email_of(93_001)),)).fetchone()
        facts = db.execute("SELECT value FROM lead_facts WHERE source = 'crm:ghl-push'").fetchall()
        count = db.execute("SELECT count(*) AS n FROM leads WHERE email_domain = 'ghl.example'").fetchone()
    assert lead is not None and lead["title"] == "COO"
    assert {"value": "customer"} in facts
    assert count is not None and count["n"] == 130
    with connect(database_url) as db:
        assert store.list_runs(db, "ghl-push")[0]["pulled"] == pulled.pulled


def test_the_locations_spent_daily_limit_stops_the_push_and_the_next_sync_sends_the_rest(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """GoHighLevel answers 429 with X-RateLimit-Daily-Remaining: 0 once the location's daily limit is spent. Each
    record (one request each) was retried six times as a burst 429, batch after batch, then kept as transient."""
    list_id = import_leads(database_url, tmp_path, lead_rows(6, start=66_000))
    emulator = gohighlevel(sandbox)
    conn_ = connection("gohighlevel", "ghl-daily", batch_size=2)
    sync = engine(database_url, sandbox, conn_)
    sync.connector.describe_fields()  # the custom fields a push resolves first, read before the limit is lowered
    sync.concurrency = 1  # one batch after the other: the first lands, the second is refused
    emulator.usage.limit = emulator.usage.used + 4  # two requests a record: the duplicate search, the upsert
    try:
        report = sync.run("push", list_id)
    finally:
        emulator.usage.limit = DAILY_LIMIT
    assert (report.status, report.created + report.updated, report.failed) == ("stopped", 2, 2)
    assert report.message is not None and "GoHighLevel's daily request limit is reached" in report.message
    assert 5 <= report.requests <= 6  # the second batch: its two records' first requests at most; no third batch
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
    assert [e["category"] for e in errors] == ["transient", "transient"]
    again = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (again.status, again.created + again.updated, again.failed) == ("completed", 4, 0)


def test_a_person_merged_in_pipedrive_into_another_leads_person_keeps_that_leads_values(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two people merged in Pipedrive: the person of lead A is gone, the survivor (lead B's) holds A's address. A's
    next push found the survivor by that address and wrote A's changed title onto B's person before calling it a
    duplicate. Now the person found is seen to be B's before anything is written: A is a 'merged' failure naming
    lead B, B's person keeps B's values, and A stays linked to its own (gone) person."""
    conn_ = connection("pipedrive", "pd-merged")
    list_id, (merged_away, survivor) = pushed(database_url, sandbox, tmp_path, conn_, 2, 67_000)
    people = pipedrive(sandbox).store
    assert people.delete(merged_away["remote_id"])
    emails = [{"value": email_of(67_000), "primary": True, "label": "work"},
              {"value": email_of(67_001), "primary": False, "label": "work"}]  # fmt: skip
    people.touch(survivor["remote_id"], emails=emails, primary_email=email_of(67_000))
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (merged_away["lead_id"],))
    report, errors, links = pushed_again(database_url, sandbox, conn_, list_id)
    assert [(e["lead_id"], e["category"]) for e in errors] == [(merged_away["lead_id"], "merged")]
    assert f"into record {survivor['remote_id']}, which lead {survivor['lead_id']} is linked to" in errors[0]["message"]
    assert (report.created, report.updated, report.failed) == (0, 0, 1)
    kept = people.get(survivor["remote_id"]).fields
    assert (kept["last_name"], kept["job_title"]) == ("Lee67001", "Engineer")
    assert links[merged_away["lead_id"]] == merged_away["remote_id"]


def test_a_new_lead_whose_address_another_leads_person_has_is_not_written_onto_that_person(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Lead B's person took lead C's address in Pipedrive (a merge, a salesperson's edit) while lead B kept its own.
    C, never pushed, was looked up by that address and every one of its fields written over B's person before the
    answer was seen to be B's record. Now the person found is checked first: C is a duplicate, B's person is
    untouched."""
    conn_ = connection("pipedrive", "pd-taken")
    list_id, (holder,) = pushed(database_url, sandbox, tmp_path, conn_, 1, 68_000)
    people = pipedrive(sandbox).store
    email = [{"value": email_of(68_001), "primary": True, "label": "work"}]
    people.touch(holder["remote_id"], emails=email, primary_email=email_of(68_001))
    import_leads(database_url, tmp_path, lead_rows(1, start=68_001))
    _, errors, _ = pushed_again(database_url, sandbox, conn_, list_id)
    kept = people.get(holder["remote_id"]).fields
    assert (kept["first_name"], kept["last_name"]) == ("Ann68000", "Lee68000")
    assert [e["category"] for e in errors] == ["duplicate"]
    assert f"is linked to lead {holder['lead_id']}: not written" in errors[0]["message"]


def test_gohighlevel_a_new_lead_whose_address_another_leads_contact_has_is_not_written_onto_that_contact(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Lead B's GoHighLevel contact took lead C's address there (a merge, a salesperson's edit) while lead B kept its
    own. C's upsert, matched by GoHighLevel's duplicate rule, wrote C's fields over B's contact before the answer was
    seen to be B's record. Now the contact GoHighLevel would match is asked for first: C is a duplicate, B's contact
    is untouched."""
    conn_ = connection("gohighlevel", "ghl-taken")
    list_id, (holder,) = pushed(database_url, sandbox, tmp_path, conn_, 1, 69_000)
    contacts = gohighlevel(sandbox).store
    contacts.touch(holder["remote_id"], email=email_of(69_001))
    import_leads(database_url, tmp_path, lead_rows(1, start=69_001))
    report, errors, _ = pushed_again(database_url, sandbox, conn_, list_id)
    kept = contacts.get(holder["remote_id"]).fields  # type: ignore[union-attr]
    assert (kept["firstName"], kept["lastName"]) == ("Ann69000", "Lee69000")
    assert [e["category"] for e in errors] == ["duplicate"]
    assert f"is linked to lead {holder['lead_id']}: not written" in errors[0]["message"]
    assert (report.created, report.updated, report.failed) == (0, 0, 1)


def test_gohighlevel_a_contact_merged_into_another_leads_contact_keeps_that_leads_values(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two contacts merged in GoHighLevel: lead A's is gone, the survivor (lead B's) holds A's address. A's next
    upsert matched the survivor and wrote A's changed title onto B's contact. Now A is a 'merged' failure naming
    lead B, and B's contact keeps B's values."""
    conn_ = connection("gohighlevel", "ghl-merged")
    list_id, (merged_away, survivor) = pushed(database_url, sandbox, tmp_path, conn_, 2, 69_100)
    contacts = gohighlevel(sandbox).store
    assert contacts.delete(merged_away["remote_id"])
    contacts.touch(survivor["remote_id"], email=email_of(69_100))
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'Head of Sales' WHERE id = %s", (merged_away["lead_id"],))
    _, errors, links = pushed_again(database_url, sandbox, conn_, list_id)
    assert [(e["lead_id"], e["category"]) for e in errors] == [(merged_away["lead_id"], "merged")]
    assert f"into record {survivor['remote_id']}, which lead {survivor['lead_id']} is linked to" in errors[0]["message"]
    kept = contacts.get(survivor["remote_id"]).fields  # type: ignore[union-attr]
    assert (kept["lastName"], kept["customFields"]["cf_title"]) == ("Lee69101", "Engineer")
    assert links[merged_away["lead_id"]] == merged_away["remote_id"]


def test_pipedrive_an_edit_in_the_second_of_a_push_is_taken_by_the_next_pull(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Pipedrive dates a change to the second (update_time). A salesperson's edit made in the second of the lead's
    push, of a field the push sent, read as the push's own: the next pull skipped the record, the lead kept its
    title and the CRM the salesperson's until the person changed again. A record of the push's second is compared
    field by field with the values the push sent."""
    conn_ = connection("pipedrive", "pd-second")
    records = pipedrive(sandbox).store
    with records.lock:  # this test's person in a second of its own: the pull reads the cursor's second again
        records._last_ms = (records._last_ms // 1000 + 1) * 1000
    list_id, (link,) = pushed(database_url, sandbox, tmp_path, conn_, 1, 119_000)
    with transaction(database_url) as db:
        store.set_pull_cursor(db, conn_.name, records.get(link["remote_id"]).updated)  # only this test's person
        db.execute("UPDATE leads SET title = 'CTO', updated_at = now() WHERE id = %s", (link["lead_id"],))
    with records.lock:  # the push and the edit in one second of the emulator's clock, seconds ahead of the wall's
        records._last_ms = max(records._last_ms, (int(time.time()) + 5) * 1000)
    assert engine(database_url, sandbox, conn_).run("push", list_id).updated == 1
    sent = records.get(link["remote_id"]).updated_ms
    records.touch(link["remote_id"], job_title="VP Sales")  # the salesperson, in the same second
    assert records.get(link["remote_id"]).updated_ms // 1000 == sent // 1000
    report = engine(database_url, sandbox, conn_).run("pull", list_id)
    with connect(database_url) as db:
        lead = db.execute("SELECT title FROM leads WHERE id = %s", (link["lead_id"],)).fetchone()
    assert (report.pulled, report.conflicts, lead["title"]) == (1, 0, "VP Sales")
    assert engine(database_url, sandbox, conn_).run("bidirectional", list_id).updated == 0  # nothing sent back


def test_gohighlevel_the_quota_check_counts_a_read_of_each_contact_a_push_updates(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A push of a connection that pulls reads each contact it updates first (GoHighLevel reads a contact by id
    only): counted as one read per batch, a batch the day's quota could not afford was sent, and the day's use went
    past ``daily_quota``. Three updates cost two requests each and a read each: nine, more than the eight left."""
    conn_ = connection("gohighlevel", "ghl-read-quota")
    list_id, links = pushed(database_url, sandbox, tmp_path, conn_, 3, start=190_000)
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET title = 'CTO', updated_at = now() WHERE id = ANY(%s)",
                   ([link["lead_id"] for link in links],))  # fmt: skip
        used = store.quota_used(db, conn_.name, datetime.now(UTC).date())
    limited = connection("gohighlevel", conn_.name, daily_quota=used + 8)
    report = engine(database_url, sandbox, limited).run("push", list_id)
    assert (report.status, report.updated) == ("stopped", 0)
    contacts = gohighlevel(sandbox).store
    assert [(contacts.get(link["remote_id"]).fields.get("customFields") or {}).get("cf_title")
            for link in links] == ["Engineer"] * 3  # fmt: skip
