"""The sync engine's safety rules against the sandbox emulators: a pull screens people as an import does, a
record linked to a lead of another list is never overwritten, a run never stays "running", and the field list a
sync starts with is retried like record calls."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

from leads_pipeline.lib import normalize
from leads_pipeline.lib.crm import sync as sync_module
from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
from leads_pipeline.lib.crm.sync import RetrySettings, SyncEngine, SyncReport, crm_fields, push_filters
from leads_pipeline.lib.errors import ConfigurationError, TransientError
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.ratelimit import SharedTokenBucket
from leads_pipeline.lib.store import bulk, merges, privacy
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.lib.store.lists import delete_list, ensure_list, get_list
from leads_pipeline.sandbox.http.crmstore import CrmRecord
from leads_pipeline.sandbox.http.gohighlevel import GoHighLevelEmulator
from leads_pipeline.sandbox.http.hubspot import HubSpotEmulator
from leads_pipeline.sandbox.http.pipedrive import PRIMARY
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import MAPPINGS, connection, engine, import_leads, lead_rows
from leads_pipeline_tests.support import await_lock_wait, bidx, set_clause, while_uncommitted

pytestmark = pytest.mark.integration
CRMS = ["hubspot", "salesforce", "pipedrive", "gohighlevel"]
FAST = RetrySettings(attempts=3, backoff_base_s=0.01, backoff_max_s=0.05)


def emulator(sandbox: Sandbox, crm: str) -> Any:
    assert sandbox.http_app is not None
    return sandbox.http_app.emulator(crm)


def person(first: str, email: str) -> dict[str, str]:
    return {"First Name": first, "Last Name": "Test", "Email": email, "Company": "OCo", "Title": "Engineer"}


def lead_of(database_url: str, list_id: int, email: str) -> dict[str, Any]:
    with connect(database_url) as db:
        row = db.execute(
            "SELECT * FROM leads WHERE list_id = %s AND email_bidx = %s", (list_id, bidx(email))
        ).fetchone()
    assert row is not None
    return row


def test_a_pulled_lead_of_an_opted_out_person_is_flagged_and_never_pushed(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    email = "olive.opt@example.net"
    import_leads(database_url, tmp_path, [person("Olive", email)], list_name="OO A")
    with transaction(database_url) as db:
        assert privacy.opt_out(db, email, "tester") == 1
        list_b = ensure_list(db, "OO B", owner="tester").id
    cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.create({"email": email, "firstname": "Olive"})
    pull = connection("hubspot", "hs-oo", direction="pull", mapping={"email": "email", "first_name": "firstname"})
    assert engine(database_url, sandbox, pull).run("pull", list_b).pulled >= 1
    pulled = lead_of(database_url, list_b, email)
    assert pulled["source"] == "crm:hs-oo" and pulled["opted_out_at"] is not None  # flagged as an import flags it
    push = connection("gohighlevel", "ghl-oo", direction="push", mapping={"email": "email", "first_name": "firstName"})
    report = engine(database_url, sandbox, push).run("push", list_b, push_filters(push, [f"email = {email}"]))
    assert (report.leads_to_sync, report.created) == (0, 0)
    assert cast(GoHighLevelEmulator, emulator(sandbox, "gohighlevel")).store.find("email", email) is None


def test_a_raw_address_kept_in_custom_is_screened_as_an_import_screens(database_url: str, sandbox: Sandbox) -> None:
    """An email that does not normalize (two addresses in the field, a note after it) was kept raw under
    custom.email with no blind index, so the screening never saw it: an erased person came back as a new lead
    and an opted-out one was not flagged (and so could be pushed to another CRM)."""
    erased, opted = "sam.erased@example.net", "olga.raw@example.net"
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Raw", owner="tester").id
        db.execute("INSERT INTO suppressions (hash, kind, reason, created_by) VALUES (%s, 'email', 't', 't')",
                   (bidx(erased),))  # fmt: skip
        db.execute("INSERT INTO opt_outs (hash, kind, created_by) VALUES (%s, 'email', 't')", (bidx(opted),))
    hubspot = cast(HubSpotEmulator, emulator(sandbox, "hubspot"))
    hubspot.store.create({"email": f"{erased}; sam@home.example", "firstname": "Samraw"})
    hubspot.store.create({"email": f"{opted} (old)", "firstname": "Olgaraw"})
    hubspot.store.create({"email": "kim.raw@example.net (work)", "firstname": "Kimraw"})
    pull = connection("hubspot", "hs-raw", direction="pull", mapping={"email": "email", "first_name": "firstname"})
    assert engine(database_url, sandbox, pull).run("pull", list_id).pulled >= 2  # the sandbox is shared
    with connect(database_url) as db:
        pulled = {
            r["first_name"]: r
            for r in db.execute("SELECT * FROM leads WHERE list_id = %s AND first_name LIKE '%%raw'", (list_id,))
        }
    assert set(pulled) == {"Olgaraw", "Kimraw"}, "the erased person is never a lead again"
    assert pulled["Olgaraw"]["custom"] == {"email": f"{opted} (old)"} and pulled["Olgaraw"]["email"] is None
    assert pulled["Olgaraw"]["opted_out_at"] is not None and pulled["Kimraw"]["opted_out_at"] is None


def test_a_pulled_lead_is_stored_as_an_import_stores_it(database_url: str, sandbox: Sandbox) -> None:
    """A pulled phone in the CRM's own format became a blind index no import or opt-out ever matched; the lead
    had no name key either, so duplicates by name and company missed it."""
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Pulled", owner="tester").id
    hubspot = cast(HubSpotEmulator, emulator(sandbox, "hubspot"))
    hubspot.store.create(
        {"email": "Pia@Example.NET", "firstname": "Pia", "lastname": "Núñez", "company": "Acme GmbH",
         "phone": "030 1234567 ext. 12", "country": "Germany"}
    )  # fmt: skip
    mapping = {"email": "email", "first_name": "firstname", "last_name": "lastname", "company": "company",
               "phone": "phone", "country": "country"}  # fmt: skip
    pull = connection("hubspot", "hs-norm", direction="pull", mapping=mapping)
    assert engine(database_url, sandbox, pull).run("pull", list_id).pulled >= 1  # the sandbox is shared
    lead = lead_of(database_url, list_id, "pia@example.net")
    assert (lead["phone"], lead["phone_ext"], lead["country"]) == ("+49301234567", "12", "DE")
    assert lead["phone_bidx"] == bidx("+49301234567", "phone")
    assert lead["name_key"] is not None and lead["company_key"] == "acme"


def test_a_lead_pulled_from_a_record_written_the_crms_way_is_not_sent_back(database_url: str, sandbox: Sandbox) -> None:
    """A record whose number and address the CRM writes its way ("(415) 555-0142", "Lia@Example.NET") became a
    lead holding them as an import stores them, but the link agreed on the CRM's writing: the next push sent the
    lead's forms over the CRM's as a change of the lead's. The link agrees on the lead's: nothing sent."""
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Pulled as written", owner="tester").id
    hubspot = cast(HubSpotEmulator, emulator(sandbox, "hubspot"))
    record = hubspot.store.create({"email": "Lia@Example.NET", "firstname": "Lia", "lastname": "Roe",
                                   "company": "Acme  Labs", "phone": "(415) 555-0142"})  # fmt: skip
    mapping = {**MAPPINGS["hubspot"], "phone": "phone"}
    conn_ = connection("hubspot", "hs-as-written", mapping=mapping)
    with transaction(database_url) as db:  # the pull reads only this test's record
        store.ensure_connection(db, conn_.name, conn_.crm)
        store.set_pull_cursor(db, conn_.name, record.updated - timedelta(milliseconds=1))
    pulled = engine(database_url, sandbox, conn_).run("pull", list_id)
    assert (pulled.status, pulled.pulled) == ("completed", 1)
    lead = lead_of(database_url, list_id, "lia@example.net")
    assert (lead["phone"], lead["company"]) == ("+14155550142", "Acme Labs")
    written = record.updated_ms
    again = [engine(database_url, sandbox, conn_).run("bidirectional", list_id) for _ in range(2)]
    assert [(r.status, r.created, r.updated, r.unchanged) for r in again] == [("completed", 0, 0, 1)] * 2
    assert hubspot.store.get(record.id) is not None and hubspot.store.get(record.id).updated_ms == written


def test_a_pull_derives_the_company_and_name_keys_of_a_chunk_at_once_as_each_alone(
    database_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull derived each lead's company and name keys on its own, one pyarrow pass a lead (most of a pull's time:
    3,000 new records took 26 s). The chunk's leads, created or given another name or company, are keyed at once,
    each key the one it had alone. A new lead is given the values the chunk normalized to screen them (they were
    normalized again, a pandas pass a value)."""
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Keyed at once", owner="tester").id
    hubspot = cast(HubSpotEmulator, emulator(sandbox, "hubspot"))
    companies = ["Müller GmbH", "The Acme Company, Inc.", "Ørsted A/S", "", "株式会社トヨタ", "Rasmussen Group"]
    records = [hubspot.store.create({"email": f"keyed{i}@example.org", "firstname": f"Kai{i}", "lastname": "Lund",
                                     "company": company}) for i, company in enumerate(companies)]  # fmt: skip
    pull = connection("hubspot", "hs-keyed", direction="pull")
    with transaction(database_url) as db:  # the pull reads only this test's records
        store.ensure_connection(db, pull.name, pull.crm)
        store.set_pull_cursor(db, pull.name, records[0].updated - timedelta(milliseconds=1))
    calls: list[int] = []
    company_key = normalize.company_key

    def counted(names: pd.Series) -> pd.Series:
        calls.append(len(names))
        return company_key(names)

    monkeypatch.setattr(normalize, "company_key", counted)
    normalized: list[dict[str, Any]] = []
    lead_values = sync_module.lead_values

    def once(records: list[dict[str, Any]], stored: list[str | None] | None = None) -> list[dict[str, Any]]:
        normalized.extend(records)
        return lead_values(records, stored)

    monkeypatch.setattr(sync_module, "lead_values", once)

    def keys() -> list[tuple[Any, Any, Any]]:
        with connect(database_url) as db:
            rows = db.execute("SELECT company, company_key, name_key FROM leads WHERE list_id = %s ORDER BY id",
                              (list_id,)).fetchall()  # fmt: skip
        return [(row["company"], row["company_key"], row["name_key"]) for row in rows]

    def alone(first: str, company: str) -> tuple[Any, Any, Any]:
        key = company_key(pd.Series([company or None], dtype=normalize.STRING))
        name = normalize.name_key(pd.Series([first], dtype=normalize.STRING),
                                  pd.Series(["Lund"], dtype=normalize.STRING), key)  # fmt: skip
        return (company or None, *[None if pd.isna(v.iloc[0]) else v.iloc[0] for v in (key, name)])

    assert engine(database_url, sandbox, pull).run("pull", list_id).pulled == len(companies)
    assert calls == [len(companies)]
    assert len(normalized) == len(companies)  # each record's values normalized once, not again for its new lead
    assert keys() == [alone(f"Kai{i}", company) for i, company in enumerate(companies)]
    assert keys()[0][1:] == ("mueller", "kai0 lund|mueller")
    calls.clear()
    hubspot.store.touch(records[1].id, company="Globex")
    hubspot.store.touch(records[3].id, company="Initech LLC")
    hubspot.store.touch(records[5].id, jobtitle="CTO")  # no key changes
    assert engine(database_url, sandbox, pull).run("pull", list_id).pulled == 3
    assert calls == [2]
    companies[1], companies[3] = "Globex", "Initech LLC"
    assert keys() == [alone(f"Kai{i}", company) for i, company in enumerate(companies)]


def test_a_person_imported_again_after_their_lead_was_deleted_takes_the_crm_record_over(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    email = "ron.again@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Ron", email)], list_name="Again")
    conn_ = connection("hubspot", "hs-again", mapping={"email": "email", "first_name": "firstname"})
    assert engine(database_url, sandbox, conn_).run("push", list_id).created == 1
    old = lead_of(database_url, list_id, email)["id"]
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (old,))
    import_leads(database_url, tmp_path, [person("Ronald", email)], list_name="Again")
    again = engine(database_url, sandbox, conn_).run("push", list_id)
    assert (again.status, again.created + again.updated, again.failed) == ("completed", 1, 0)
    with connect(database_url) as db:
        live = db.execute("SELECT id FROM leads WHERE list_id = %s AND deleted_at IS NULL", (list_id,)).fetchall()
        assert [link["lead_id"] for link in store.links(db, "hs-again")] == [r["id"] for r in live] != [old]
    record = cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.find("email", email)
    assert record is not None and record.fields["firstname"] == "Ronald"


def test_a_record_linked_to_a_lead_of_another_list_is_not_overwritten(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    email = "zed.alpha@example.net"
    list_a = import_leads(database_url, tmp_path, [person("Zed", email)], list_name="Dup A")
    list_b = import_leads(database_url, tmp_path, [person("Zedekiah", email)], list_name="Dup B")
    conn_ = connection("hubspot", "hs-dup", mapping={"email": "email", "first_name": "firstname"})
    first = engine(database_url, sandbox, conn_).run("push", list_a)
    assert (first.status, first.created) == ("completed", 1)
    second = engine(database_url, sandbox, conn_).run("push", list_b)
    assert (second.status, second.created, second.updated, second.failed) == ("partial", 0, 0, 1)
    record = cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.find("email", email)
    assert record is not None and record.fields["firstname"] == "Zed"  # list A's lead still owns it
    lead_a, lead_b = lead_of(database_url, list_a, email)["id"], lead_of(database_url, list_b, email)["id"]
    with connect(database_url) as db:
        errors = store.run_errors(db, second.sync_id)
        links = {link["lead_id"] for link in store.links(db, "hs-dup")}
    assert [(e["lead_id"], e["category"]) for e in errors] == [(lead_b, "duplicate")]
    assert f"lead {lead_b}" in errors[0]["message"] and f"lead {lead_a} (list 'Dup A')" in errors[0]["message"]
    assert lead_a in links and lead_b not in links
    third = engine(database_url, sandbox, conn_).run("push", list_b)  # held until the lead changes
    assert (third.status, third.leads_to_sync, third.failed) == ("completed", 0, 0)


def test_a_record_the_crm_answers_with_that_another_lead_is_linked_to_is_not_linked_twice(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    email = "yan.beta@example.net"
    list_a = import_leads(database_url, tmp_path, [person("Yan", email)], list_name="Twin A")
    list_b = import_leads(database_url, tmp_path, [person("Yannick", email)], list_name="Twin B")
    conn_ = connection("hubspot", "hs-twin", mapping={"email": "email", "first_name": "firstname"})
    engine(database_url, sandbox, conn_).run("push", list_a)
    with transaction(database_url) as db:  # list A's lead changed its email since: no clash is seen before sending
        assignments, params = set_clause(email="yan.new@example.net")
        db.execute(f"UPDATE leads SET {assignments} WHERE list_id = %s", (*params, list_a))
    report = engine(database_url, sandbox, conn_).run("push", list_b)  # HubSpot upserts onto list A's record
    assert (report.status, report.failed) == ("partial", 1)
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
    assert errors[0]["category"] == "duplicate" and "is linked to through hs-twin" in errors[0]["message"]


RACES = {"pipedrive": ("_find", PRIMARY, "first_name"), "hubspot": ("push", "email", "firstname")}
"""Per CRM: the connector call where concurrent pushes of one email meet, the record's email and first name."""


def meet(engines: list[SyncEngine], at: str, parties: int = 2) -> None:
    """Make ``parties`` calls ``at`` of the engines' connectors wait for each other (up to a second) after they
    returned: without a lock around a batch, every push of one email has searched Pipedrive, found nothing, and
    goes on to create, or has upserted into one HubSpot record and goes on to link it."""
    together = threading.Barrier(parties, timeout=1)
    for sync in engines:
        call = getattr(sync.connector, at)

        def met(*args: Any, call: Any = call) -> Any:
            answer = call(*args)
            with contextlib.suppress(threading.BrokenBarrierError):  # the others wait for this batch: go on alone
                together.wait()
            return answer

        setattr(sync.connector, at, met)


def people(sandbox: Sandbox, crm: str, email: str) -> list[CrmRecord]:
    records = emulator(sandbox, crm).store.records.values()
    return [r for r in records if not r.archived and str(r.fields.get(RACES[crm][1])).casefold() == email]


def in_threads(*runs: Any) -> list[SyncReport]:
    reports: list[SyncReport] = []
    threads = [threading.Thread(target=lambda run=run: reports.append(run())) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == len(runs)  # no run raised
    return reports


@pytest.mark.parametrize("crm", sorted(RACES))
def test_concurrent_pushes_of_two_lists_with_one_email_create_one_record(
    crm: str, database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two lists pushed at once through one connection, a person in each: both Pipedrive pushes searched, found
    nothing and created, so Pipedrive had the person twice; both HubSpot upserts landed on one record and the run
    linking it second failed. Now the second waits for the first and its lead is the duplicate a sequential push
    reports, the record left as the first wrote it."""
    email = f"wes.{crm}@example.net"
    list_a = import_leads(database_url, tmp_path, [person("Wes", email)], list_name="Race A")
    list_b = import_leads(database_url, tmp_path, [person("Wesley", email)], list_name="Race B")
    conn_ = connection(crm, f"{crm}-race", direction="push")
    engines = [engine(database_url, sandbox, conn_), engine(database_url, sandbox, conn_)]
    meet(engines, RACES[crm][0])
    reports = in_threads(lambda: engines[0].run("push", list_a), lambda: engines[1].run("push", list_b))
    [record] = people(sandbox, crm, email)
    assert sorted((r.status, r.created, r.updated, r.failed) for r in reports) == [
        ("completed", 1, 0, 0),
        ("partial", 0, 0, 1),
    ]
    winner, loser = sorted(reports, key=lambda r: r.failed)
    with connect(database_url) as db:
        won = store.get_run(db, winner.sync_id)["list_id"]
        links = store.links(db, conn_.name)
        errors = store.run_errors(db, loser.sync_id)
    assert [(k["lead_id"], k["remote_id"]) for k in links] == [(lead_of(database_url, won, email)["id"], record.id)]
    assert [e["category"] for e in errors] == ["duplicate"]
    assert record.fields[RACES[crm][2]] == ("Wes" if won == list_a else "Wesley")  # not overwritten


@pytest.mark.parametrize("batch_size", [1, 50], ids=["two-batches", "one-batch"])
def test_a_person_twice_in_one_list_pushed_at_once_creates_one_record(
    batch_size: int, database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """One list holding a person twice, pushed in two batches that run at once, or in one batch (whose records
    Pipedrive gets in parallel): each lead's push created the person. Now one lead is linked to the one record and
    the other is the duplicate a sequential push reports."""
    email = f"vic.{batch_size}@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Vic", email)], list_name="Race C")
    with transaction(database_url) as db:  # an import would merge them; a pull creates what it does not match
        store.create_lead(db, list_id, {"email": email.upper(), "first_name": "Victor", "last_name": "Test"})
    name = f"pd-race-{batch_size}"
    sync = engine(database_url, sandbox, connection("pipedrive", name, batch_size=batch_size))
    meet([sync], "_find")
    report = sync.run("push", list_id)
    assert len(people(sandbox, "pipedrive", email)) == 1
    assert (report.status, report.created, report.updated, report.failed) == ("partial", 1, 0, 1)
    with connect(database_url) as db:
        assert len(store.links(db, name)) == 1
        assert [e["category"] for e in store.run_errors(db, report.sync_id)] == ["duplicate"]


def test_one_list_pushed_by_two_runs_at_once_creates_the_person_once_despite_the_search_lag(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs pushing one list at once both read its lead as not yet in Pipedrive; the second waited for the
    first's claim on the email, then searched, and Pipedrive's search (whose index lags behind its creates) did
    not find the person the first had just made, so it created the person again. Now the link the first recorded
    is what the second goes by: it updates that person with the values the first did not send (the second run
    read the connection file after its mapping gained a field)."""
    email = "ula.lag@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Ula", email)], list_name="Lagging")
    monkeypatch.setattr(emulator(sandbox, "pipedrive"), "search_lag_s", 600.0)
    conn_ = connection("pipedrive", "pd-lag", direction="push")
    together = threading.Barrier(2, timeout=20)
    lock_match_keys = store.lock_match_keys

    def read_then_meet(*args: Any) -> Any:
        together.wait()  # both runs read the lead as unlinked before either claims its email
        return lock_match_keys(*args)

    monkeypatch.setattr(store, "lock_match_keys", read_then_meet)
    fewer = {name: field for name, field in MAPPINGS["pipedrive"].items() if name != "title"}
    engines = [engine(database_url, sandbox, connection("pipedrive", "pd-lag", direction="push", mapping=fewer)),
               engine(database_url, sandbox, conn_)]  # fmt: skip
    reports = in_threads(*[lambda sync=sync: sync.run("push", list_id) for sync in engines])
    assert len(people(sandbox, "pipedrive", email)) == 1
    assert sorted((r.status, r.created, r.updated) for r in reports) == [("completed", 0, 1), ("completed", 1, 0)]


def test_one_list_pushed_by_two_runs_at_once_sends_each_lead_once(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one connection pushing one list at once (two cron jobs of `leads sync --crm X --list Y`) both
    planned every lead before either sent a batch; the second waited for the first's claims, then sent each lead
    again to the record the first had just made: HubSpot received every lead twice. Now a batch that waited
    sends only the leads still due: those the other run sent with these values count as unchanged."""
    leads = 3
    list_id = import_leads(database_url, tmp_path, lead_rows(leads), list_name="Twice")
    conn_ = connection("hubspot", "hs-twice", direction="push", batch_size=1)
    together = threading.Barrier(2 * leads, timeout=20)  # each run's batches, one lead each
    lock_match_keys = store.lock_match_keys

    def read_then_meet(*args: Any) -> Any:
        together.wait()  # every batch of both runs read its lead before any claims it
        return lock_match_keys(*args)

    monkeypatch.setattr(store, "lock_match_keys", read_then_meet)
    assert sandbox.http_app is not None
    logged = len(sandbox.http_app.log.records())
    engines = [engine(database_url, sandbox, conn_), engine(database_url, sandbox, conn_)]
    reports = in_threads(*[lambda sync=sync: sync.run("push", list_id) for sync in engines])
    requests = sandbox.http_app.log.records()[logged:]
    sent = [r for r in requests if r.provider == "hubspot" and r.path.endswith("/batch/upsert")]
    assert len(sent) == leads  # one lead a request (batch_size 1): each lead once
    assert [r.status for r in reports] == ["completed", "completed"]
    # each lead created by the run whose batch claimed it first, left unchanged by the other
    counts = [sum(getattr(r, count) for r in reports) for count in ("created", "updated", "unchanged")]
    assert counts == [leads, 0, leads]
    assert all(r.leads_to_sync == r.created for r in reports)
    with connect(database_url) as db:
        assert len(store.links(db, conn_.name)) == leads


def hold_the_first_claim(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(held, go): the first push batch or pull chunk to claim its keys and records, planned and holding nothing
    yet, sets ``held`` and waits for ``go``; those after it claim theirs at once."""
    held, go = threading.Event(), threading.Event()
    lock_match_keys = store.lock_match_keys

    def held_once(*args: Any) -> Any:
        if not held.is_set():
            held.set()
            assert go.wait(60)
        return lock_match_keys(*args)

    monkeypatch.setattr(store, "lock_match_keys", held_once)
    return held, go


FIELDS = {"hubspot": ("firstname", "jobtitle", "company"), "salesforce": ("FirstName", "Title", "Company")}


@pytest.mark.parametrize(("crm", "other"), [("hubspot", "pull"), ("hubspot", "bidirectional"), ("salesforce", "pull")])
def test_a_push_that_waited_for_a_pull_of_its_record_sends_the_lead_as_the_pull_left_it(
    crm: str, other: str, database_url: str, sandbox: Sandbox, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A push batch planned a lead (its title and first name edited locally), then waited for a pull of its
    record, which took the salesperson's newer title (crm_wins) and company from the CRM. The batch then sent
    the values it had read when it planned: the CRM showed the local title the rule had just decided against
    (HubSpot; Salesforce's Bulk API job, which sends every field, the old company too) until the next sync. It
    now plans the lead again once it holds the record: the salesperson's values stay, and the local first name
    goes out (by this run, or by the other one's push)."""
    first, title, company = FIELDS[crm]
    env: dict[str, str] = request.getfixturevalue("salesforce_env") if crm == "salesforce" else {}
    email = f"cora.{crm}.{other}@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Cora", email)], list_name=f"Stale {crm} {other}")
    bulk = {"bulk_threshold": 1} if crm == "salesforce" else {}  # the Bulk API job
    conn_ = connection(crm, f"{crm}-stale-{other}", conflict_fields={title: "crm_wins"}, **bulk)
    engine(database_url, sandbox, conn_, **env).run("push", list_id)
    records = emulator(sandbox, crm).stores["Lead"] if crm == "salesforce" else emulator(sandbox, crm).store
    with transaction(database_url) as db:
        (link,) = store.links(db, conn_.name)
        pushed = records.get(link["remote_id"]).updated
        store.set_pull_cursor(db, conn_.name, pushed)  # the pull reads only this test's record
        assignments, params = set_clause(title="CTO", first_name="Corinne")
        db.execute(f"UPDATE leads SET {assignments} WHERE id = %s", (*params, link["lead_id"]))
    held, go = hold_the_first_claim(monkeypatch)  # the push's batch, planned, waits until the pull is done

    def pull_then_release() -> SyncReport:
        assert held.wait(60)
        records.touch(link["remote_id"], **{title: "VP Sales", company: "NewCo"})  # the salesperson's edits
        try:
            return engine(database_url, sandbox, conn_, **env).run(other, list_id)  # type: ignore[arg-type]
        finally:
            go.set()

    push = engine(database_url, sandbox, conn_, **env)
    reports = in_threads(lambda: push.run("push", list_id), pull_then_release)
    ran = {r.direction: (r.status, r.pulled, r.conflicts, r.updated, r.unchanged) for r in reports}
    sent_by = {"push": (1, 0), other: (0, 0)} if other == "pull" else {"push": (0, 1), other: (1, 0)}
    assert ran == {"push": ("completed", 0, 0, *sent_by["push"]), other: ("completed", 1, 1, *sent_by[other])}
    lead = lead_of(database_url, list_id, email)
    assert (lead["first_name"], lead["title"], lead["company"]) == ("Corinne", "VP Sales", "NewCo")
    fields = records.get(link["remote_id"]).fields
    assert (fields[first], fields[title], fields[company]) == ("Corinne", "VP Sales", "NewCo")
    with connect(database_url) as db:
        (after,) = store.links(db, conn_.name)
    assert (after["last_values"][first], after["last_values"][title]) == ("Corinne", "VP Sales")


def test_a_push_that_waited_leaves_out_a_lead_opted_out_or_given_another_email_meanwhile(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push batch planned two leads, then waited for its claims; meanwhile one person opted out and the other
    lead's email was corrected. The batch sent both as planned: the opted-out person went to HubSpot (never to be
    sent anywhere), and the other under the old address its claim was on. It now plans them again once it holds
    the claims: neither is sent, and the next sync sends the corrected lead with its new address."""
    opted, old, new = "otto.meanwhile@example.net", "edna.old@example.net", "edna.new@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Otto", opted), person("Edna", old)], list_name="Meanwhile")
    conn_ = connection("hubspot", "hs-meanwhile", direction="push")
    held, go = hold_the_first_claim(monkeypatch)

    def change_then_release() -> None:
        assert held.wait(60)
        with transaction(database_url) as db:
            assert privacy.opt_out(db, opted, "tester") == 1
            assignments, params = set_clause(email=new)
            edna = lead_of(database_url, list_id, old)["id"]
            db.execute(f"UPDATE leads SET {assignments} WHERE id = %s", (*params, edna))
        go.set()

    meanwhile = threading.Thread(target=change_then_release)
    meanwhile.start()
    report = engine(database_url, sandbox, conn_).run("push", list_id)
    meanwhile.join()
    records = cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store
    assert (report.status, report.created, records.find("email", opted), records.find("email", old)) == (
        "completed", 0, None, None
    )  # fmt: skip
    assert engine(database_url, sandbox, conn_).run("push", list_id).created == 1
    assert (records.find("email", opted), records.find("email", old)) == (None, None)
    assert records.find("email", new) is not None


def test_a_push_that_waited_records_a_lead_made_invalid_meanwhile_as_invalid(
    database_url: str, sandbox: Sandbox, tmp_path: Path, salesforce_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead's company was cleared while its planned push batch waited for its claims: the batch sent the company
    it had read, which the lead no longer has. Planned again, the lead fails Salesforce's required Company: it is
    not sent, and the run counts and logs it invalid as a lead invalid when planned."""
    email = "ivy.cleared@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Ivy", email)], list_name="Cleared")
    conn_ = connection("salesforce", "sf-cleared", direction="push")
    held, go = hold_the_first_claim(monkeypatch)

    def clear_then_release() -> None:
        assert held.wait(60)
        with transaction(database_url) as db:
            db.execute("UPDATE leads SET company = NULL WHERE id = %s", (lead_of(database_url, list_id, email)["id"],))
        go.set()

    meanwhile = threading.Thread(target=clear_then_release)
    meanwhile.start()
    report = engine(database_url, sandbox, conn_, **salesforce_env).run("push", list_id)
    meanwhile.join()
    assert (report.status, report.leads_to_sync, report.created, report.invalid) == ("completed", 0, 0, 1)
    assert emulator(sandbox, "salesforce").stores["Lead"].find("Email", email) is None
    with connect(database_url) as db:
        [logged] = store.run_errors(db, report.sync_id)
    assert (logged["action"], logged["message"]) == ("invalid", "Company is required by salesforce Lead")


@pytest.mark.parametrize(
    "stop",
    [RuntimeError("the connection to the database dropped"), KeyboardInterrupt("the run was interrupted")],
    ids=["crash", "interrupted"],
)
def test_a_run_that_crashes_or_is_interrupted_ends_failed_not_running(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException
) -> None:
    list_id = import_leads(database_url, tmp_path, [person("Xia", "xia.gamma@example.net")], list_name="Crash")
    sync = engine(database_url, sandbox, connection("hubspot", "hs-crash"))

    def broken(records: Any) -> Any:
        raise stop

    monkeypatch.setattr(sync.connector, "push", broken)
    with pytest.raises(type(stop)):
        sync.run("push", list_id)
    with connect(database_url) as db:
        run = store.list_runs(db, "hs-crash")[0]
    assert (run["status"], run["message"]) == ("failed", f"{type(stop).__name__}: {stop}")
    assert run["finished_at"] is not None


@pytest.mark.parametrize("crm", CRMS)
def test_the_field_list_is_retried_after_a_cut_body_or_a_500_then_fails_clearly(
    crm: str, sandbox: Sandbox, salesforce_env: dict[str, str]
) -> None:
    conn_ = connection(crm, f"{crm}-fields")
    limiter = limiter_for(conn_)
    connector = resource_from_env(conn_.crm, {**sandbox.env(), **salesforce_env}).connector(conn_, limiter)
    assert sandbox.http_app is not None
    sandbox.http_app.inject(crm, "malformed", "500")
    fields = crm_fields(conn_, connector, limiter, FAST)
    assert {m.remote for m in conn_.mapping} <= {f.name for f in fields} | {f.label for f in fields}
    sandbox.http_app.inject(crm, "500", "malformed", "503")
    with pytest.raises(TransientError, match=rf"^{crm}-fields: could not read the {crm} field list in 3 attempts"):
        crm_fields(conn_, connector, limiter, FAST)


def test_concurrent_pulls_of_one_record_create_one_lead(
    database_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pulls of one connection at once (a schedule and a manual run) both found no lead for a new CRM record
    and created one; the second could not link its lead to the record and its run failed. Now the second waits
    for the first's chunk and finds its lead. Both pulls have read the record from the CRM before either writes
    it (a barrier that fails the run if they do not meet there), so the runs overlap where it matters."""
    email = "una.zeta@example.net"
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Pulled twice", owner="tester").id
    cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.create({"email": email, "firstname": "Una"})
    mapping = {"email": "email", "first_name": "firstname"}
    pull = connection("hubspot", "hs-pull-race", direction="pull", mapping=mapping)
    together = threading.Barrier(2, timeout=20)
    engines = [engine(database_url, sandbox, pull), engine(database_url, sandbox, pull)]
    for sync in engines:
        read = sync.connector.pull

        def read_then_meet(*args: Any, read: Any = read) -> Any:
            records = list(read(*args))
            together.wait()  # a broken barrier raises: the run fails
            return iter(records)

        monkeypatch.setattr(sync.connector, "pull", read_then_meet)
    reports = in_threads(*[lambda sync=sync: sync.run("pull", list_id) for sync in engines])
    assert [r.status for r in reports] == ["completed", "completed"]
    assert min(r.pulled for r in reports) == 0  # the second found the first's leads, up to date
    with connect(database_url) as db:
        leads = db.execute("SELECT id FROM leads WHERE list_id = %s AND email_bidx = %s", (list_id, bidx(email)))
        assert len(leads.fetchall()) == 1


def test_a_pull_goes_on_while_a_push_of_the_connection_sends_other_people(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A pull's chunk locked the whole connection, so it waited for every push batch of the connection in
    flight (a Bulk API job: minutes), and every batch after it waited for the pull. Now a chunk claims only its
    records and their keys: the push here sends its batch only once the pull of another person has ended, and
    fails if the pull waited for it."""
    list_id = import_leads(database_url, tmp_path, [person("Pia", "pia.push@example.net")], list_name="Pushing")
    cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.create({"email": "pol.pull@example.net"})
    conn_ = connection("hubspot", "hs-side-by-side", mapping={"email": "email", "first_name": "firstname"})
    push, pull = engine(database_url, sandbox, conn_), engine(database_url, sandbox, conn_)
    sending, pulled = threading.Event(), threading.Event()
    send = push.connector.push

    def after_the_pull(records: Any) -> Any:
        sending.set()
        assert pulled.wait(60), "the pull waited for the push batch"  # a loaded machine: a pull takes seconds
        return send(records)

    push.connector.push = after_the_pull  # type: ignore[method-assign]

    def pull_while_sending() -> SyncReport:
        assert sending.wait(60)
        try:
            return pull.run("pull", list_id)
        finally:
            pulled.set()

    reports = in_threads(lambda: push.run("push", list_id), pull_while_sending)
    assert sorted((r.direction, r.status) for r in reports) == [("pull", "completed"), ("push", "completed")]
    assert lead_of(database_url, list_id, "pol.pull@example.net")["source"] == "crm:hs-side-by-side"


def test_a_killed_run_reads_as_interrupted_with_its_requests_counted(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync killed outright (SIGKILL, a power cut) never wrote its end: it stayed "running" in `leads sync
    history` for good, nothing told it from one still sending, and the requests it had sent were never added to
    the day's quota (only its end added them). A running sync now holds its run's advisory lock, which the server
    drops with the process's session; a run recorded as running without it reads as "interrupted". Each batch
    adds its requests to the quota and the run as it records its results."""
    people = [person("Yan", "yan.delta@example.net"), person("Zoe", "zoe.delta@example.net")]
    list_id = import_leads(database_url, tmp_path, people, list_name="Killed")
    sync = engine(database_url, sandbox, connection("hubspot", "hs-killed", batch_size=1))
    sync.concurrency = 1
    push = sync.connector.push
    seen: list[tuple[str, int, int]] = []

    def watched(records: Any) -> Any:
        with connect(database_url) as db:
            [run] = store.list_runs(db, "hs-killed")
            seen.append((run["status"], run["requests"], store.quota_used(db, "hs-killed", sync._today())))
        return push(records)

    monkeypatch.setattr(sync.connector, "push", watched)
    report = sync.run("push", list_id)
    assert report.status == "completed" and report.requests > 0
    assert [status for status, _, _ in seen] == ["running", "running"], "a run still sending reads as running"
    assert seen[1][1] == seen[1][2] > 0, "the first batch's requests are counted before the second is sent"
    with transaction(database_url) as db:  # what a killed sync leaves: its row, and no session holding its lock
        killed = store.start_run(db, "hs-killed", "push", list_id, "tester")
    with connect(database_url) as db:
        assert [r["status"] for r in store.list_runs(db, "hs-killed")] == ["interrupted", "completed"]
        assert store.get_run(db, killed)["status"] == "interrupted"
        assert store.quota_used(db, "hs-killed", sync._today()) == report.requests


def test_a_killed_run_stops_counting_as_running_beside_the_runs_after_it(database_url: str, tmp_path: Path) -> None:
    """A killed sync never writes finished_at, so every later run of the connection took it for one running beside
    it and kept its list in the "linked elsewhere" check for good. A run starting now finds it interrupted (its
    lock free) and neither it nor later runs count it; a run killed after another started still counts for that
    one, which cannot know what it linked in the meantime."""
    killed_list = import_leads(database_url, tmp_path, [person("Ada", "ada.gone@example.net")], list_name="Gone")
    other_list = import_leads(database_url, tmp_path, [person("Bea", "bea.next@example.net")], list_name="Next")
    with transaction(database_url) as db:  # what killed syncs leave: their rows, and no session holding a lock
        store.ensure_connection(db, "hs-gone", "hubspot")
        store.start_run(db, "hs-gone", "push", killed_list, "tester")
    with transaction(database_url) as db:
        first = store.start_run(db, "hs-gone", "push", other_list, "tester")
    with transaction(database_url) as db:
        store.start_run(db, "hs-gone", "push", killed_list, "tester")  # killed after the first started
    with transaction(database_url) as db:
        second = store.start_run(db, "hs-gone", "push", other_list, "tester")
    with connect(database_url) as db:
        assert store.pushing_lists(db, "hs-gone", second) == [], "all three were found interrupted as it started"
        assert sorted(store.pushing_lists(db, "hs-gone", first)) == [killed_list, other_list], "the runs after it"
        assert [r["status"] for r in store.list_runs(db, "hs-gone")] == ["interrupted"] * 4


def test_a_lead_deleted_after_a_push_read_it_is_not_sent_and_the_others_are(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads sync` while `leads imports undo` (or a purge) deleted one of the leads it had read: marking the
    batch's creates failed on the foreign key and the run failed, the other person never sent. The push now
    leaves a lead gone out (it is not sent: it was undone) and sends the rest."""
    gone, kept = "gus.gone@example.net", "kim.kept@example.net"
    list_id = import_leads(database_url, tmp_path, [person("Gus", gone), person("Kim", kept)], list_name="Undone")
    deleted = lead_of(database_url, list_id, gone)["id"]
    lock_match_keys = store.lock_match_keys

    def delete_then_claim(*args: Any) -> Any:
        with connect(database_url) as conn:  # the undo commits after the push read its leads
            conn.execute("DELETE FROM leads WHERE id = %s", (deleted,))
        return lock_match_keys(*args)

    monkeypatch.setattr(store, "lock_match_keys", delete_then_claim)
    report = engine(database_url, sandbox, connection("pipedrive", "pd-undone", direction="push")).run("push", list_id)

    assert (report.status, report.created) == ("completed", 1)
    assert people(sandbox, "pipedrive", gone) == [] and len(people(sandbox, "pipedrive", kept)) == 1


def test_a_push_batch_holds_its_leads_once(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push batch holds its leads (``existing_leads``) from before it sends until its results are recorded, and
    recording the results looked the same leads up again: a query per batch that could find nothing else. The
    batch's leads are looked up once; the results are recorded for them."""
    emails = ["una.once@example.net", "ivo.once@example.net"]
    list_id = import_leads(database_url, tmp_path, [person("Una", emails[0]), person("Ivo", emails[1])], "Once")
    ids = sorted(lead_of(database_url, list_id, email)["id"] for email in emails)
    looked_up: list[list[int]] = []
    existing_leads = sync_module.existing_leads

    def counted(conn: Any, lead_ids: Any, **kwargs: Any) -> set[int]:
        lead_ids = list(lead_ids)
        looked_up.append(sorted(lead_ids))
        return existing_leads(conn, lead_ids, **kwargs)

    monkeypatch.setattr(sync_module, "existing_leads", counted)
    monkeypatch.setattr(store, "existing_leads", counted)
    report = engine(database_url, sandbox, connection("hubspot", "hs-once", direction="push")).run("push", list_id)

    assert (report.status, report.created) == ("completed", 2)
    assert [lead_ids for lead_ids in looked_up if lead_ids] == [ids]
    with connect(database_url) as db:
        assert sorted(link["lead_id"] for link in store.links(db, "hs-once")) == ids


def merged_pair(
    database_url: str,
    sandbox: Sandbox,
    tmp_path: Path,
    name: str,
    kept: dict[str, str],
    gone: dict[str, str],
    *,
    push_kept: bool = True,
) -> tuple[int, int, int]:
    """``kept`` imported into list '<name> One', ``gone`` into '<name> Two', pushed through connection ``name``
    (``kept`` only with ``push_kept``), then merged into ``kept``; returns the two leads and the merge."""
    one = import_leads(database_url, tmp_path, [kept], list_name=f"{name} One")
    two = import_leads(database_url, tmp_path, [gone], list_name=f"{name} Two")
    for list_id in [one, two] if push_kept else [two]:
        assert engine(database_url, sandbox, connection("hubspot", name)).run("push", list_id).created == 1
    survivor, merged_away = lead_of(database_url, one, kept["Email"])["id"], lead_of(database_url, two, gone["Email"])
    with transaction(database_url) as db:
        merge = merges.merge_cluster(db, [survivor, merged_away["id"]], "tester", reasons=["linkedin"], score=1.0)
    assert (merge.survivor_id, merge.merged_ids) == (survivor, [merged_away["id"]])
    return survivor, merged_away["id"], merge.merge_id


def changed_in_crm(sandbox: Sandbox, email: str, **fields: str) -> str:
    """The HubSpot contact of ``email`` changed as a CRM user changes it; returns its id."""
    contacts = cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store
    contact = contacts.find("email", email)
    assert contact is not None
    return contacts.touch(contact.id, **fields).id


def list_named(database_url: str, name: str) -> int:
    with connect(database_url) as db:
        row = db.execute("SELECT id FROM lists WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return int(row["id"])


def test_a_pulled_record_of_a_lead_merged_away_changes_the_survivor_instead_of_creating_a_lead(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Zed in list One and list Two (two addresses, one LinkedIn URL), both pushed (two contacts), merged into
    list One's lead; the CRM changes the job title of list Two's contact: a pull with list Two found no live lead
    linked to that contact nor with its address, and created Zed again (a third lead, linked to the contact). The
    change now goes into the survivor as a pull applies it to a linked lead (the link stays the merged-away
    lead's, brought up to date), the run counts it, and the merge is no longer undone over it."""
    url = "https://www.linkedin.com/in/zedmerged"
    kept = {**person("Zed", "zed.merged@example.net"), "LinkedIn URL": url}
    gone = {**person("Zed", "zed.other@example.net"), "LinkedIn URL": url}
    survivor, merged_away, merge_id = merged_pair(database_url, sandbox, tmp_path, "hs-merged", kept, gone)
    contact = changed_in_crm(sandbox, gone["Email"], jobtitle="CTO")
    pull = engine(database_url, sandbox, connection("hubspot", "hs-merged"))
    report = pull.run("pull", list_named(database_url, "hs-merged Two"))

    assert (report.status, report.pulled_to_survivors, report.pull_skipped) == ("completed", 1, 0)
    with connect(database_url) as db:
        zeds = db.execute("SELECT * FROM leads WHERE first_name = 'Zed' AND company = 'OCo' ORDER BY id").fetchall()
        links = {link["lead_id"]: link for link in store.links(db, "hs-merged")}
        log = db.execute(
            "SELECT lead_id, action FROM crm_sync_log WHERE sync_id = %s AND remote_id = %s",
            (report.sync_id, contact),
        ).fetchall()
        with pytest.raises(ConfigurationError, match="changed after merge"):
            merges.undo_merge(db, merge_id, "tester")
    assert [(z["id"], z["deleted_at"] is None, z["merged_into"]) for z in zeds] == [
        (survivor, True, None), (merged_away, False, survivor)
    ], "no lead created again"  # fmt: skip
    assert (zeds[0]["title"], zeds[1]["title"]) == ("CTO", "Engineer")
    assert links[merged_away]["remote_id"] == contact and links[merged_away]["last_values"]["jobtitle"] == "CTO"
    assert links[survivor]["remote_id"] != contact
    assert log == [{"lead_id": survivor, "action": "pulled_updated"}]
    again = pull.run("pull", list_named(database_url, "hs-merged Two"))  # recorded on the link: applied once
    assert (again.pulled_to_survivors, again.pull_skipped) == (0, 0)


def test_a_pulled_record_of_a_lead_merged_into_a_list_the_pull_does_not_cover_is_skipped(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The survivor is in a list never synced (no lead of it linked to the connection): a pull with the merged-away
    lead's list does not write to it (the run's role was not checked there), so the record is skipped, counted,
    and its reason is in `leads sync errors`; no lead is created again."""
    kept = {**person("Xia", "xia.kept@example.net"), "Phone": "+1 212 555 0100"}  # more complete: the survivor
    gone = {"First Name": "Xia", "Last Name": "Test", "Email": "xia.gone@example.net"}
    survivor, merged_away, _ = merged_pair(database_url, sandbox, tmp_path, "hs-far", kept, gone, push_kept=False)
    changed_in_crm(sandbox, gone["Email"], jobtitle="CFO")
    report = engine(database_url, sandbox, connection("hubspot", "hs-far")).run(
        "pull", list_named(database_url, "hs-far Two")
    )

    assert (report.status, report.pulled_to_survivors, report.pull_skipped) == ("completed", 0, 1)
    with connect(database_url) as db:
        xias = db.execute("SELECT id, title FROM leads WHERE first_name = 'Xia' ORDER BY id").fetchall()
        errors = store.run_errors(db, report.sync_id)
        run = store.get_run(db, report.sync_id)
    assert xias == [{"id": survivor, "title": "Engineer"}, {"id": merged_away, "title": None}]
    assert [(e["lead_id"], e["action"]) for e in errors] == [(merged_away, "pull_skipped")]
    assert f"merged into lead {survivor}, in a list this pull does not write to" in errors[0]["message"]
    assert (run["pulled_to_survivors"], run["pull_skipped"]) == (0, 1)


def test_a_pull_that_read_a_lead_as_it_was_merged_away_writes_into_the_survivor(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """`leads sync` pulled while `leads dedupe --merge` merged the lead linked to a changed record: the pull read
    the lead before the merge committed, waited for the merge only to write, and then wrote the new values into
    the lead merged away; the survivor never got them. The pull now holds the lead it reads, waits for a merge in
    flight, and follows it to the survivor."""
    kept, gone = person("Wu", "wu.kept@example.net"), person("Wu", "wu.gone@example.net")
    one = import_leads(database_url, tmp_path, [kept], list_name="hs-race One")
    two = import_leads(database_url, tmp_path, [gone], list_name="hs-race Two")
    for list_id in (one, two):
        assert engine(database_url, sandbox, connection("hubspot", "hs-race")).run("push", list_id).created == 1
    survivor, merged_away = (
        lead_of(database_url, one, kept["Email"])["id"],
        lead_of(database_url, two, gone["Email"])["id"],
    )
    changed_in_crm(sandbox, gone["Email"], jobtitle="COO")
    pull = engine(database_url, sandbox, connection("hubspot", "hs-race"))
    report = while_uncommitted(
        database_url,
        lambda merging: merges.merge_cluster(merging, [survivor, merged_away], "tester", reasons=["name"], score=1.0),
        lambda: pull.run("pull", None),
    )

    assert (report.status, report.pulled_to_survivors) == ("completed", 1)
    with connect(database_url) as db:
        rows = db.execute("SELECT id, title FROM leads WHERE id = ANY(%s)", ([survivor, merged_away],)).fetchall()
    assert {r["id"]: r["title"] for r in rows} == {survivor: "COO", merged_away: "Engineer"}


def while_deleting(
    database_url: str, delete: str, lead_id: int, list_name: str, run: Callable[[], SyncReport]
) -> list[SyncReport]:
    """``run`` (a push or pull) while `leads bulk delete` of the lead (``delete`` "bulk") or `leads lists delete`
    of its list is in flight (``while_uncommitted``); returns its report."""

    def deleting(conn: Any) -> None:
        if delete == "bulk":
            bulk.delete(conn, Selection.build(ids=[lead_id]), "tester")
        else:
            delete_list(conn, get_list(conn, list_name, "tester"))

    return [while_uncommitted(database_url, deleting, run)]


@pytest.mark.parametrize("delete", ["bulk", "list"])
def test_a_push_batch_waits_for_a_delete_in_flight_and_leaves_its_leads_out(
    database_url: str, sandbox: Sandbox, tmp_path: Path, delete: str
) -> None:
    """`leads bulk delete` (or `leads lists delete`) while `leads sync` pushed the same leads: the batch held its
    leads (key share) while the delete's update was not committed yet, which that lock does not wait for, so it
    sent and linked leads whose deletion had begun before; a merge, which holds its leads for update first, was
    waited for. A delete now holds its leads so too: the batch waits for it and leaves the deleted leads out."""
    emails = [f"gus.{delete}@example.net", f"kim.{delete}@example.net"]
    list_id = import_leads(database_url, tmp_path, [person("Gus", emails[0]), person("Kim", emails[1])],
                           list_name=f"Deleting {delete}")  # fmt: skip
    gus = lead_of(database_url, list_id, emails[0])["id"]
    push = engine(database_url, sandbox, connection("hubspot", f"hs-deleting-{delete}", direction="push"))
    reports = while_deleting(database_url, delete, gus, f"Deleting {delete}", lambda: push.run("push", list_id))

    sent = [email for email in emails if cast(HubSpotEmulator, emulator(sandbox, "hubspot")).store.find("email", email)]
    assert sent == ([emails[1]] if delete == "bulk" else [])
    assert [(r.status, r.leads_to_sync, r.created) for r in reports] == [("completed", 2, len(sent))]


@pytest.mark.parametrize("delete", ["bulk", "list"])
def test_a_pull_waits_for_a_delete_in_flight_and_leaves_the_deleted_lead_alone(
    database_url: str, sandbox: Sandbox, tmp_path: Path, delete: str
) -> None:
    """`leads sync` pulled a changed record while `leads bulk delete` (or `leads lists delete`) deleted the lead
    linked to it: a pull that found the lead live, then wrote it by id, would write the CRM's values into a lead
    whose delete committed in between. The pull reads the lead held (``hold_lead``), which waits for the delete
    (it holds its leads for update first), then finds it deleted: nothing is written into it."""
    email, name = f"ria.{delete}@example.net", f"Pull deleting {delete}"
    list_id = import_leads(database_url, tmp_path, [person("Ria", email)], list_name=name)
    crm = connection("hubspot", f"hs-pull-deleting-{delete}")
    assert engine(database_url, sandbox, crm).run("push", list_id).created == 1
    ria = lead_of(database_url, list_id, email)["id"]
    changed_in_crm(sandbox, email, jobtitle="COO")
    pull = engine(database_url, sandbox, crm)
    reports = while_deleting(database_url, delete, ria, name, lambda: pull.run("pull", None))

    assert [(r.status, r.pulled) for r in reports] == [("completed", 0)]
    with connect(database_url) as db:
        row = db.execute("SELECT title, deleted_at FROM leads WHERE id = %s", (ria,)).fetchone()
    assert row is not None and row["deleted_at"] is not None
    assert row["title"] == "Engineer", "the CRM's value was written into the deleted lead"


def test_a_pull_and_a_merge_of_the_same_leads_wait_for_each_other_instead_of_deadlocking(
    database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads sync` pulled two changed records while `leads dedupe --merge` merged their two leads: the pull held
    its leads in the CRM's order (the later id first here), the merge in id order, each then waited for the other's
    and PostgreSQL aborted one of them with a deadlock error. The pull now holds its leads' lists first, in id
    order, as the merge does: the merge waits for the pull's chunk, then merges."""
    first, later = person("Vic", "vic.first@example.net"), person("Vic", "vic.later@example.net")
    list_id = import_leads(database_url, tmp_path, [first, later], list_name="hs-deadlock")
    crm = connection("hubspot", "hs-deadlock")
    assert engine(database_url, sandbox, crm).run("push", list_id).created == 2
    low, high = (
        lead_of(database_url, list_id, first["Email"])["id"],
        lead_of(database_url, list_id, later["Email"])["id"],
    )
    assert low < high
    changed_in_crm(sandbox, later["Email"], jobtitle="CEO")  # pulled first: its lead, the later id, held first
    changed_in_crm(sandbox, first["Email"], jobtitle="CFO")
    monkeypatch.setattr(sync_module, "PULL_CHUNK", 100_000)  # both records in one chunk, whatever the sandbox holds
    held, go = threading.Event(), threading.Event()
    hold_lead = store.hold_lead

    def pausing(conn: Any, lead_id: int) -> dict[str, Any] | None:
        lead = hold_lead(conn, lead_id)
        if not held.is_set():
            held.set()
            go.wait(20)
        return lead

    monkeypatch.setattr(store, "hold_lead", pausing)
    failed: list[BaseException] = []
    reports: list[SyncReport] = []

    def catching(action: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                action()
            except BaseException as exc:
                failed.append(exc)

        return threading.Thread(target=run)

    def merge() -> None:
        with transaction(database_url) as db:
            merges.merge_cluster(db, [low, high], "tester", reasons=["name"], score=1.0)

    pulling = catching(lambda: reports.append(engine(database_url, sandbox, crm).run("pull", None)))
    merging = catching(merge)
    pulling.start()
    try:
        assert held.wait(20), "the pull held no lead"
        merging.start()
        await_lock_wait(database_url)
    finally:
        go.set()
        pulling.join()
        if merging.ident is not None:
            merging.join()

    assert failed == [] and [(r.status, r.pulled) for r in reports] == [("completed", 2)]
    with connect(database_url) as db:
        rows = db.execute("SELECT id, title, deleted_at IS NULL AS live FROM leads WHERE id = ANY(%s) ORDER BY id",
                          ([low, high],)).fetchall()  # fmt: skip
    assert sorted(r["title"] for r in rows) == ["CEO", "CFO"] and sum(r["live"] for r in rows) == 1


def test_the_connections_and_runs_of_one_crm_account_pace_together(database_url: str) -> None:
    """The CRM counts an account's requests, whichever connection (contacts, companies) or run sends them: two
    syncs at once each sent the connection's whole limit."""
    account = resource_from_env("hubspot", {"HUBSPOT_ACCESS_TOKEN": "portal-a-token"})
    other = resource_from_env("hubspot", {"HUBSPOT_ACCESS_TOKEN": "portal-b-token"})
    ten_a_second = {"requests": 12, "per_seconds": 1}  # less one request and one of burst: 10/s
    contacts = connection("hubspot", "hubspot-contacts", rate_limit=ten_a_second)
    companies = connection("hubspot", "hubspot-companies", rate_limit=ten_a_second)
    first, second = limiter_for(contacts, (database_url, account)), limiter_for(companies, (database_url, account))
    elsewhere = limiter_for(contacts, (database_url, other))
    assert isinstance(first, SharedTokenBucket) and isinstance(second, SharedTokenBucket)
    assert isinstance(elsewhere, SharedTokenBucket)
    assert first.key == second.key != elsewhere.key and "portal-a-token" not in first.key
    started = time.monotonic()
    for bucket in [first, second] * 5 + [first]:
        bucket.acquire()
    assert time.monotonic() - started >= 0.99  # 11 calls at 10/s, from two buckets: one schedule
    for bucket in (first, second, elsewhere):
        bucket.close()
