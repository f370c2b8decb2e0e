"""What every connector must do the same way over the wire: honour Retry-After on a 429, turn a refused token into
a configuration error naming the variable to fix (and leave the run recorded as failed), and say so when a record
deleted in the CRM is created again."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings
from leads_pipeline.sandbox.http.pipedrive import PRIMARY
from leads_pipeline.sandbox.http.tls import serve_tls
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.lib.crm.helpers import MAPPINGS, connection, engine, import_leads, lead_rows
from leads_pipeline_tests.support import set_clause

pytestmark = pytest.mark.integration
CRMS = ["hubspot", "salesforce", "pipedrive", "gohighlevel"]
LAST_NAME = {"hubspot": "lastname", "salesforce": "LastName", "pipedrive": "last_name", "gohighlevel": "lastName"}
TITLE = {"hubspot": "jobtitle", "salesforce": "Title", "pipedrive": "job_title", "gohighlevel": "Job Title"}
TOKEN_VARIABLE = {
    "hubspot": "HUBSPOT_ACCESS_TOKEN",
    "salesforce": "SALESFORCE_ACCESS_TOKEN",
    "pipedrive": "PIPEDRIVE_API_TOKEN",
    "gohighlevel": "GOHIGHLEVEL_TOKEN",
}


def crm_records(sandbox: Sandbox, crm: str, *, own_second: bool = False) -> Any:
    """The emulator's store of ``crm``'s records (Salesforce's Leads). ``own_second``: its clock moved on to the
    next whole second, so that the test's records are in a second of their own (Pipedrive's pull reads the
    cursor's second again), up to a second ahead of real time."""
    assert sandbox.http_app is not None
    emulator: Any = sandbox.http_app.emulator(crm)
    records = emulator.stores["Lead"] if crm == "salesforce" else emulator.store
    if own_second:
        with records.lock:
            records._last_ms = (records._last_ms // 1000 + 1) * 1000
    return records


@pytest.mark.parametrize("crm", CRMS)
def test_429_with_retry_after_is_waited_out_then_sent(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=130_000 + 10 * CRMS.index(crm)))
    assert sandbox.http_app is not None
    sandbox.http_app.inject(crm, "429")
    started = time.monotonic()
    report = engine(database_url, sandbox, connection(crm, f"{crm}-429"), **salesforce_env).run("push", list_id)
    assert (report.created + report.updated, report.failed) == (3, 0)
    assert time.monotonic() - started >= 1.0  # the emulator's Retry-After: 1, not the test's 10 ms backoff


@pytest.mark.parametrize("crm", CRMS)
def test_a_refused_token_names_the_variable_and_fails_the_run(
    crm: str, database_url: str, sandbox_world: World, tmp_path: Path
) -> None:
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=140_000))
    settings = EmulatorSettings(providers={crm: ProviderSettings(api_keys=frozenset({"the-valid-token"}))})
    with Sandbox.start(sandbox_world, http_settings=settings) as box:
        assert box.http_app is not None
        front = serve_tls(box.http_app, "salesforce", tmp_path / "tls")
        env = {"SALESFORCE_INSTANCE_URL": front.url, "SALESFORCE_ACCESS_TOKEN": "expired-token",
               "SALESFORCE_CA_BUNDLE": str(front.ca_file)}  # fmt: skip
        try:
            with pytest.raises(ConfigurationError, match=TOKEN_VARIABLE[crm]):
                engine(database_url, box, connection(crm, f"{crm}-auth"), **env).run("push", list_id)
        finally:
            front.stop()
    with connect(database_url) as db:
        assert store.list_runs(db, f"{crm}-auth")[0]["status"] == "failed"


@pytest.mark.parametrize("crm", CRMS)
def test_a_record_deleted_in_the_crm_is_created_again_once_its_lead_changes_and_the_run_says_so(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A salesperson deletes a record we created. Every connector's upsert (Pipedrive's update, on its 404) then
    creates it again with the lead's next change; that was reported as a plain 'created', the lead silently
    relinked to the new record."""
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=150_000 + 10 * CRMS.index(crm)))
    conn_ = connection(crm, f"{crm}-deleted")
    engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    with connect(database_url) as db:
        deleted, kept = store.links(db, conn_.name)
    records = crm_records(sandbox, crm)
    assert records.delete(deleted["remote_id"])
    unchanged = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (unchanged.created, unchanged.recreated) == (0, 0)  # nothing of the lead changed: nothing sent
    with transaction(database_url) as db:
        assignments, params = set_clause(title="Head of Sales")
        db.execute(f"UPDATE leads SET {assignments} WHERE id = %s", (*params, deleted["lead_id"]))
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (report.status, report.created, report.recreated, report.failed) == ("completed", 1, 1, 0)
    with connect(database_url) as db:
        (relinked,) = [link for link in store.links(db, conn_.name) if link["lead_id"] == deleted["lead_id"]]
        errors = store.run_errors(db, report.sync_id)
        run = store.get_run(db, report.sync_id)
    assert relinked["remote_id"] != deleted["remote_id"]
    assert [(e["lead_id"], e["action"], e["message"]) for e in errors] == [
        (
            deleted["lead_id"],
            "recreated",
            f"{crm} record {deleted['remote_id']} is gone (deleted there, or merged into another record, since the "
            f"last sync): created again as record {relinked['remote_id']}",
        )
    ]
    assert run["recreated"] == 1
    assert records.get(kept["remote_id"]) is not None
    # created again with every field, not only the one that changed
    assert records.get(relinked["remote_id"]).fields[LAST_NAME[crm]] == f"Lee{150_000 + 10 * CRMS.index(crm)}"


@pytest.mark.parametrize("crm", CRMS)
def test_a_push_keeps_a_salespersons_edit_of_a_field_the_lead_did_not_change(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A push sent every mapped field of a changed lead: a salesperson's edit of another field in the CRM was
    overwritten with the lead's old value, without a conflict, even under a crm_wins rule. An update now sends the
    fields changed since the last sync."""
    start = 160_000 + 10 * CRMS.index(crm)
    list_id = import_leads(database_url, tmp_path, lead_rows(1, start=start))
    rules = {LAST_NAME[crm]: "crm_wins"}
    conn_ = connection(crm, f"{crm}-edited", direction="push", conflict_fields=rules)
    engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    with connect(database_url) as db:
        (link,) = store.links(db, conn_.name)
    records = crm_records(sandbox, crm)
    records.touch(link["remote_id"], **{LAST_NAME[crm]: "Lee-Smith"})  # the salesperson's correction
    with transaction(database_url) as db:
        assignments, params = set_clause(title="Head of Sales")
        db.execute(f"UPDATE leads SET {assignments} WHERE id = %s", (*params, link["lead_id"]))
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (report.updated, report.failed) == (1, 0)
    assert records.get(link["remote_id"]).fields[LAST_NAME[crm]] == "Lee-Smith"
    with connect(database_url) as db:
        (after,) = store.links(db, conn_.name)
    assert after["last_values"][TITLE[crm]] == "Head of Sales"


RULES = ["crm_wins", "local_wins", "most_recent"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("crm", CRMS)
def test_a_salespersons_edit_made_before_a_push_is_taken_by_the_next_pull(
    crm: str, rule: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """Pull; a salesperson edits two records' last name in the CRM; the leads' titles change and are pushed (the
    last name left out, so the edits stay in the CRM). The push recorded the record's modification time after its
    own update, and the next pull skipped the records as the push's own (HubSpot, Pipedrive, GoHighLevel;
    Salesforce's push records no time): the leads never took the edits until the records changed again in the
    CRM. They take them now; a lead that changed its last name too since the push is a conflict its rule decides
    (most_recent: the lead's change, the later one). No lead is sent back for what it took."""
    start = 170_000 + 100 * CRMS.index(crm) + 10 * RULES.index(rule)
    name = f"Edited {crm} {rule}"
    list_id = import_leads(database_url, tmp_path, lead_rows(2, start=start), list_name=name)
    conn_ = connection(crm, f"{crm}-edit-{rule}", list=name, conflict_fields={LAST_NAME[crm]: rule})
    records = crm_records(sandbox, crm, own_second=True)
    first = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (first.created + first.updated, first.failed) == (2, 0)  # Salesforce: by lead id, an earlier test's too
    with transaction(database_url) as db:
        edited, conflicting = store.links(db, conn_.name)
        newest = max(records.get(link["remote_id"]).updated for link in (edited, conflicting))
        store.set_pull_cursor(db, conn_.name, newest)  # the pulls read only this test's records
    pulled = engine(database_url, sandbox, conn_, **salesforce_env).run("pull", list_id)
    assert (pulled.status, pulled.pulled) == ("completed", 0)
    for link in (edited, conflicting):
        records.touch(link["remote_id"], **{LAST_NAME[crm]: f"Lee-Smith {link['lead_id']}"})  # the salesperson
    both = [edited["lead_id"], conflicting["lead_id"]]
    with transaction(database_url) as db:
        assignments, params = set_clause(title="Head of Sales")
        db.execute(f"UPDATE leads SET {assignments}, updated_at = now() WHERE id = ANY(%s)", (*params, both))
    pushed = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (pushed.updated, pushed.failed) == (2, 0)
    assert records.get(edited["remote_id"]).fields[LAST_NAME[crm]] == f"Lee-Smith {edited['lead_id']}"
    # the records' clock is up to a second ahead (own_second): the lead's change below is after the salesperson's in
    # real time too, as most_recent compares them (it once was not)
    time.sleep(max(0.0, records._last_ms / 1000 - time.time()) + 0.01)
    with transaction(database_url) as db:  # the lead's own change of the field, after the push
        assignments, params = set_clause(last_name="Lee-Jones")
        db.execute(f"UPDATE leads SET {assignments}, updated_at = now() WHERE id = %s", (*params, both[1]))
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("pull", list_id)
    assert (report.status, report.pulled, report.conflicts) == ("completed", 2, 1)
    with connect(database_url) as db:
        rows = db.execute("SELECT id, last_name FROM leads WHERE id = ANY(%s)", (both,)).fetchall()
        conflicts = store.conflicts(db, report.sync_id)
    crm_won = rule == "crm_wins"
    assert {row["id"]: row["last_name"] for row in rows} == {
        both[0]: f"Lee-Smith {both[0]}",
        both[1]: f"Lee-Smith {both[1]}" if crm_won else "Lee-Jones",
    }
    assert [(c["lead_id"], c["winner"]) for c in conflicts] == [(both[1], "crm" if crm_won else "local")]
    again = engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id)
    # nothing left to pull; only a lead whose own value won is sent
    assert (again.pulled, again.updated, again.unchanged) == ((0, 0, 2) if crm_won else (0, 1, 1))


UPDATE_COST = {"hubspot": 2, "salesforce": 2, "pipedrive": 4, "gohighlevel": 7}
"""The requests of a push updating three linked records: a batch and a read of the merges for HubSpot and
Salesforce; the custom fields list, then a request per person for Pipedrive, two per contact for GoHighLevel."""
READS = {"hubspot": 0, "salesforce": 0, "pipedrive": 1, "gohighlevel": 3}
"""What reading those records' present values adds: nothing where the read of the merges reads them too (HubSpot's
batch read, Salesforce's queryAll), a persons list naming them; GoHighLevel reads a contact by id only."""


def title_in_crm(crm: str, record: Any) -> Any:
    """The title of an emulator's record (a custom field of GoHighLevel's, by its id)."""
    if crm == "gohighlevel":
        return (record.fields.get("customFields") or {}).get("cf_title")
    return record.fields[TITLE[crm]]


def retitle_in_crm(crm: str, records: Any, remote_id: str, title: str) -> None:
    """A salesperson's change of the title in the CRM."""
    if crm == "gohighlevel":
        custom = records.get(remote_id).fields.get("customFields") or {}
        records.touch(remote_id, customFields={**custom, "cf_title": title})
    else:
        records.touch(remote_id, **{TITLE[crm]: title})


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("crm", CRMS)
def test_a_push_of_a_field_the_crm_changed_since_the_last_pull_is_a_conflict_its_rule_decides(
    crm: str, rule: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A salesperson sets a title in the CRM after the last pull; the lead's title changes too, and a push sent it
    over the salesperson's, no conflict recorded, even under crm_wins: the next pull saw nothing to take. The push
    now reads the records it updates (a request per batch, GoHighLevel's per record, whatever the fields) and
    decides the field by its rule as a pull does: crm_wins (and most_recent, the salesperson's edit being the
    later) keeps the CRM's value and gives it to the lead, local_wins sends the lead's. A record whose title the
    CRM did not change gets the lead's, no conflict."""
    start = 180_000 + 100 * CRMS.index(crm) + 10 * RULES.index(rule)
    name = f"Overwritten {crm} {rule}"
    list_id = import_leads(database_url, tmp_path, lead_rows(3, start=start), list_name=name)
    conn_ = connection(crm, f"{crm}-overwrite-{rule}", list=name, conflict_fields={TITLE[crm]: rule})
    records = crm_records(sandbox, crm, own_second=True)
    first = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (first.created + first.updated, first.failed) == (3, 0)
    with transaction(database_url) as db:
        links = store.links(db, conn_.name)
        store.set_pull_cursor(db, conn_.name, max(records.get(link["remote_id"]).updated for link in links))
    leads = [link["lead_id"] for link in links]

    def retitle(**changes: str) -> None:
        with transaction(database_url) as db:
            assignments, params = set_clause(**changes)
            db.execute(f"UPDATE leads SET {assignments}, updated_at = now() WHERE id = ANY(%s)", (*params, leads))

    retitle(title="CTO")
    edited = links[0]
    time.sleep(1.01)  # the salesperson's edit is the later one, to the second (Pipedrive's update_time)
    retitle_in_crm(crm, records, edited["remote_id"], "VP Sales")
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (report.updated, report.failed, report.conflicts) == (3, 0, 1)
    crm_won = rule != "local_wins"
    kept = "VP Sales" if crm_won else "CTO"
    assert [title_in_crm(crm, records.get(link["remote_id"])) for link in links] == [kept, "CTO", "CTO"]
    with connect(database_url) as db:
        rows = db.execute("SELECT id, title FROM leads WHERE id = ANY(%s)", (leads,)).fetchall()
        conflicts = store.conflicts(db, report.sync_id)
        agreed = {link["lead_id"]: link["last_values"][TITLE[crm]] for link in store.links(db, conn_.name)}
    assert {row["id"]: row["title"] for row in rows} == {**dict.fromkeys(leads, "CTO"), edited["lead_id"]: kept}
    assert agreed == {**dict.fromkeys(leads, "CTO"), edited["lead_id"]: kept}
    assert [(c["lead_id"], c["winner"]) for c in conflicts] == [(edited["lead_id"], "crm" if crm_won else "local")]
    retitle(title="CEO")
    again = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (again.updated, again.conflicts) == (3, 0)  # the CRM changed nothing since: sent
    assert [title_in_crm(crm, records.get(link["remote_id"])) for link in links] == ["CEO"] * 3
    assert again.requests == UPDATE_COST[crm] + READS[crm]
    retitle(title="COO", last_name="Ng")
    two_fields = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (two_fields.updated, two_fields.requests) == (3, again.requests)  # the reads do not grow with the fields
    only = connection(crm, conn_.name, list=name, direction="push", conflict_fields={TITLE[crm]: rule})
    retitle(title="CFO")
    retitle_in_crm(crm, records, edited["remote_id"], "Head of Sales")
    pushed = engine(database_url, sandbox, only, **salesforce_env).run("push", list_id)
    # a push-only connection reads nothing and writes the lead's value, as before
    assert (pushed.updated, pushed.conflicts, pushed.requests) == (3, 0, UPDATE_COST[crm])
    assert title_in_crm(crm, records.get(edited["remote_id"])) == "CFO"
    final = engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id)
    assert (final.updated, final.conflicts) == (0, 0)  # Salesforce's push records no time: its pull reads them again


PHONE = {"hubspot": "phone", "salesforce": "Phone", "pipedrive": "phone", "gohighlevel": "phone"}
EMAIL = {"hubspot": "email", "salesforce": "Email", "pipedrive": "email", "gohighlevel": "email"}
CASES = ["phone", "email", "edited", "local", "national", "matched", "local-gb"]


def set_in_crm(crm: str, records: Any, remote_id: str, field: str, value: str) -> None:
    """A CRM user's (or the CRM's own) writing of the record's ``field`` ("phone" or "email"): Pipedrive keeps
    a person's numbers and addresses as lists, its primary address indexed."""
    if crm == "pipedrive":
        primary = {PRIMARY: value} if field == "email" else {}
        records.touch(remote_id, **{f"{field}s": [{"value": value, "primary": True, "label": "work"}]}, **primary)
    else:
        records.touch(remote_id, **{(PHONE if field == "phone" else EMAIL)[crm]: value})


def in_crm(crm: str, record: Any, field: str) -> Any:
    if crm == "pipedrive":
        return record.fields[f"{field}s"][0]["value"]
    return record.fields[(PHONE if field == "phone" else EMAIL)[crm]]


def phoned(
    crm: str,
    case: str,
    number: str,
    database_url: str,
    sandbox: Sandbox,
    env: dict[str, str],
    tmp_path: Path,
    country: str | None = None,
    **settings: Any,
) -> tuple[Any, Any, dict[str, Any], int]:
    """A lead with phone ``number`` (E.164), and ``country`` if given, pushed through a bidirectional connection
    that maps the phone (not the country), the pull cursor after it: the connection, the emulator's records, the
    lead's link and the list."""
    start = 200_000 + 100 * CRMS.index(crm) + 10 * CASES.index(case)
    name = f"Own form {crm} {case}"
    rows = [{**row, "Phone": number, **({"Country": country} if country else {})} for row in lead_rows(1, start=start)]
    list_id = import_leads(database_url, tmp_path, rows, list_name=name)
    mapping = {**MAPPINGS[crm], "phone": PHONE[crm]}
    conn_ = connection(crm, f"{crm}-own-form-{case}", list=name, mapping=mapping, **settings)
    records = crm_records(sandbox, crm, own_second=True)
    first = engine(database_url, sandbox, conn_, **env).run("push", list_id)
    assert (first.created + first.updated, first.failed) == (1, 0)
    with transaction(database_url) as db:
        (link,) = store.links(db, conn_.name)
        store.set_pull_cursor(db, conn_.name, records.get(link["remote_id"]).updated)  # only this test's record
    return conn_, records, link, list_id


def lead_now(database_url: str, lead_id: int) -> dict[str, Any]:
    with connect(database_url) as db:
        row = db.execute("SELECT * FROM leads WHERE id = %s", (lead_id,)).fetchone()
    assert row is not None
    return dict(row)


@pytest.mark.parametrize(("field", "theirs"), [("phone", "(415) 555-{n:04d}"), ("email", "Ann{start}@Example{m}.COM")])
@pytest.mark.parametrize("crm", CRMS)
def test_a_value_the_crm_writes_in_its_own_form_is_no_change_either_way(
    crm: str,
    field: str,
    theirs: str,
    database_url: str,
    sandbox: Sandbox,
    salesforce_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The CRM holds the lead's number as "(415) 555-0100" where the lead has +14155550100 (a salesperson typed
    it so, or the CRM formats numbers), or its address as "Ann@Example.COM": one value written another way. A
    sync took the difference for an edit: the pull recorded the record as updated and agreed on the CRM's form,
    so the push found the lead changed since and sent its own form back over the CRM's, on every sync the CRM
    wrote it its way again. Equal once normalized as an import normalizes, it is no change: nothing pulled as an
    update, no conflict, nothing sent, the CRM's form left as it is, and the next syncs change nothing."""
    n = 100 + 10 * CRMS.index(crm) + CASES.index(field)
    conn_, records, link, list_id = phoned(crm, field, f"+1415555{n:04d}", database_url, sandbox,
                                           salesforce_env, tmp_path)  # fmt: skip
    start = 200_000 + 100 * CRMS.index(crm) + 10 * CASES.index(field)
    written = theirs.format(n=n, start=start, m=start % 7)
    set_in_crm(crm, records, link["remote_id"], field, written)
    their_time = records.get(link["remote_id"]).updated_ms
    before = lead_now(database_url, link["lead_id"])
    reports = [engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id) for _ in range(3)]
    assert [(r.status, r.created, r.updated, r.failed, r.conflicts) for r in reports] == [
        ("completed", 0, 0, 0, 0)
    ] * 3, "nothing sent back, no conflict"
    assert (records.get(link["remote_id"]).updated_ms, in_crm(crm, records.get(link["remote_id"]), field)) == (
        their_time, written
    ), "the CRM's record not written"  # fmt: skip
    after = lead_now(database_url, link["lead_id"])
    assert (after[field], after["updated_at"]) == (before[field], before["updated_at"])
    with connect(database_url) as db:
        actions = db.execute(
            "SELECT action FROM crm_sync_log WHERE sync_id = ANY(%s)", ([r.sync_id for r in reports],)
        ).fetchall()
    # pulled once, as no change; Pipedrive's record written in its push's second is compared as the push's own, and
    # is no pull at all when nothing changed
    assert [a["action"] for a in actions] == ([] if crm == "pipedrive" and not actions else ["pulled_unchanged"])


@pytest.mark.parametrize("crm", CRMS)
def test_a_number_the_crm_changed_in_its_own_form_is_pulled_and_not_sent_back(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A salesperson gives the record another number, typed "(415) 555-0177": the lead takes it as an import
    stores it (+14155550177). The pull agreed on the CRM's writing, so the push sent the lead's form back over
    the salesperson's as a change of the lead's. Pulled, it is agreed as the lead now has it: nothing sent."""
    n = 150 + 10 * CRMS.index(crm)
    conn_, records, link, list_id = phoned(crm, "edited", f"+1415555{n:04d}", database_url, sandbox,
                                           salesforce_env, tmp_path)  # fmt: skip
    set_in_crm(crm, records, link["remote_id"], "phone", f"(415) 555-{n + 1:04d}")
    their_time = records.get(link["remote_id"]).updated_ms
    reports = [engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id) for _ in range(3)]
    assert [(r.status, r.updated, r.conflicts) for r in reports] == [("completed", 0, 0)] * 3, "nothing sent back"
    assert lead_now(database_url, link["lead_id"])["phone"] == f"+1415555{n + 1:04d}"
    assert records.get(link["remote_id"]).updated_ms == their_time
    with connect(database_url) as db:
        (agreed,) = store.links(db, conn_.name)
    assert agreed["last_values"][PHONE[crm]] == f"+1415555{n + 1:04d}"


@pytest.mark.parametrize(
    ("case", "country", "number", "theirs"),
    [("local", None, "+1415555{:04d}", "(415) 555-{:04d}"), ("local-gb", "GB", "+441632960{:03d}", "01632 960{:03d}")],
)
@pytest.mark.parametrize("crm", CRMS)
def test_a_lead_given_another_number_is_sent_over_the_crms_writing_of_the_old_one_without_a_conflict(
    crm: str,
    case: str,
    country: str | None,
    number: str,
    theirs: str,
    database_url: str,
    sandbox: Sandbox,
    salesforce_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The CRM wrote the lead's number its way ("(415) 555-0100") since the last sync, and the lead is given
    another number. The push read the CRM's writing as a salesperson's edit: a conflict, which crm_wins decided
    for the old number, written back to the lead over its new one. The CRM changed nothing: the new number is
    sent, no conflict. A UK lead's number written "01632 960180", the connection mapping no country, is read in
    the lead's country as a pull reads it: read as a US number, it was no number, and crm_wins cleared the lead's
    phone."""
    n = 180 + 10 * CRMS.index(crm)
    conn_, records, link, list_id = phoned(crm, case, number.format(n), database_url, sandbox, salesforce_env,
                                           tmp_path, country, conflict_fields={PHONE[crm]: "crm_wins"})  # fmt: skip
    set_in_crm(crm, records, link["remote_id"], "phone", theirs.format(n))
    with transaction(database_url) as db:
        assignments, params = set_clause(phone=number.format(n + 1))
        db.execute(f"UPDATE leads SET {assignments}, updated_at = now() WHERE id = %s", (*params, link["lead_id"]))
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    assert (report.status, report.updated, report.conflicts) == ("completed", 1, 0)
    assert in_crm(crm, records.get(link["remote_id"]), "phone") == number.format(n + 1)
    assert lead_now(database_url, link["lead_id"])["phone"] == number.format(n + 1)


@pytest.mark.parametrize("crm", CRMS)
def test_a_number_in_national_form_the_crm_holds_without_a_country_is_read_in_the_leads_country(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A UK lead (GB, +441632960000) whose record holds its number as "01632 960000", the connection mapping no
    country: the pull read the number in the default region (US), where it is no number, moved it to
    custom.phone and cleared the lead's phone (the next record change pushed that). Read in the lead's country
    (as ``leads bulk set`` reads a number), it is the lead's number written the CRM's way: no change either way.
    Another UK number typed so is pulled as that number."""
    n = 10 * CRMS.index(crm)
    number = f"+441632960{n:03d}"
    conn_, records, link, list_id = phoned(crm, "national", number, database_url, sandbox, salesforce_env,
                                           tmp_path, country="GB")  # fmt: skip
    written = f"01632 960{n:03d}"
    set_in_crm(crm, records, link["remote_id"], "phone", written)
    their_time = records.get(link["remote_id"]).updated_ms
    before = lead_now(database_url, link["lead_id"])
    assert (before["country"], before["phone"]) == ("GB", number)
    reports = [engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id) for _ in range(2)]
    assert [(r.status, r.created, r.updated, r.failed, r.conflicts) for r in reports] == [
        ("completed", 0, 0, 0, 0)
    ] * 2, "nothing sent back, no conflict"
    assert (records.get(link["remote_id"]).updated_ms, in_crm(crm, records.get(link["remote_id"]), "phone")) == (
        their_time, written
    ), "the CRM's record not written"  # fmt: skip
    after = lead_now(database_url, link["lead_id"])
    assert (after["phone"], after["custom"], after["updated_at"]) == (number, before["custom"], before["updated_at"])

    set_in_crm(crm, records, link["remote_id"], "phone", f"01632 960{n + 1:03d}")
    their_time = records.get(link["remote_id"]).updated_ms
    again = [engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id) for _ in range(2)]
    assert [(r.status, r.updated, r.failed, r.conflicts) for r in again] == [("completed", 0, 0, 0)] * 2
    taken = lead_now(database_url, link["lead_id"])
    assert (taken["phone"], taken["country"], taken["custom"]) == (f"+441632960{n + 1:03d}", "GB", before["custom"])
    assert records.get(link["remote_id"]).updated_ms == their_time
    with connect(database_url) as db:
        (agreed,) = store.links(db, conn_.name)
    assert agreed["last_values"][PHONE[crm]] == f"+441632960{n + 1:03d}"


COUNTRY = {"hubspot": "country", "salesforce": "Country"}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_record_matched_to_a_lead_reads_its_national_number_in_the_leads_country(
    crm: str, database_url: str, sandbox: Sandbox, salesforce_env: dict[str, str], tmp_path: Path
) -> None:
    """A record made in the CRM with a UK number as "01632 960050" and no country, matched by its key to a UK
    lead (GB, +441632960050): its number is the lead's, read in the lead's country, not a misfit that cleared
    the lead's phone. The lead's country, which the record lacks, is sent; its number is not."""
    n = 50 + 10 * CRMS.index(crm)
    number = f"+441632960{n:03d}"
    start = 200_000 + 100 * CRMS.index(crm) + 10 * CASES.index("matched")
    name = f"Matched national {crm}"
    (row,) = lead_rows(1, start=start)
    list_id = import_leads(database_url, tmp_path, [{**row, "Phone": number, "Country": "GB"}], list_name=name)
    with connect(database_url) as db:
        lead = db.execute("SELECT * FROM leads WHERE list_id = %s", (list_id,)).fetchone()
    assert lead is not None and (lead["country"], lead["phone"]) == ("GB", number)
    fields = MAPPINGS[crm]
    written = f"01632 960{n:03d}"
    records = crm_records(sandbox, crm, own_second=True)
    key = {"Leads_Id__c": str(lead["id"])} if crm == "salesforce" else {}  # Salesforce's match key: the lead's id
    record = records.create({fields["email"]: row["Email"], fields["first_name"]: row["First Name"],
                             fields["last_name"]: row["Last Name"], fields["company"]: row["Company"],
                             PHONE[crm]: written, **key})  # fmt: skip
    mapping = {**fields, "phone": PHONE[crm], "country": COUNTRY[crm]}
    conn_ = connection(crm, f"{crm}-matched-national", list=name, mapping=mapping)
    with transaction(database_url) as db:  # the pull reads only this test's record
        store.ensure_connection(db, conn_.name, conn_.crm)
        store.set_pull_cursor(db, conn_.name, record.updated - timedelta(milliseconds=1))
    pulled = engine(database_url, sandbox, conn_, **salesforce_env).run("pull", list_id)
    assert (pulled.status, pulled.pulled, pulled.conflicts) == ("completed", 1, 0)
    after = lead_now(database_url, lead["id"])
    assert (after["phone"], after["country"], after["custom"]) == (number, "GB", lead["custom"])
    pushed = engine(database_url, sandbox, conn_, **salesforce_env).run("bidirectional", list_id)
    assert (pushed.status, pushed.updated, pushed.failed, pushed.conflicts) == ("completed", 1, 0, 0)
    assert (records.get(record.id).fields[COUNTRY[crm]], records.get(record.id).fields[PHONE[crm]]) == ("GB", written)
    assert lead_now(database_url, lead["id"])["phone"] == number
