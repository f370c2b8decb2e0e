"""phone_contacts on a batch from the sandbox world: typing, Twilio for ambiguous numbers, direct dials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from leads_pipeline.defs.contacts.assets import email_contacts, phone_contacts
from leads_pipeline.defs.contacts.checks import DNC_FRESH_CHECK, PHONE_E164_CHECK
from leads_pipeline.lib.contacts.phone_batch import PhoneOptions, PhoneStage
from leads_pipeline.lib.credits import PRICES
from leads_pipeline.lib.store.contacts import update_lead_columns
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources
from leads_pipeline_tests.support import import_file, import_text


def _leads(database_url: str) -> dict[int, dict[str, Any]]:
    with connect(database_url) as conn:
        return {r["id"]: r for r in conn.execute("SELECT id, phone, mobile_phone FROM leads")}


def _facts(database_url: str, field: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM lead_facts WHERE field = %s ORDER BY id", (field,)))


def test_types_numbers_and_finds_direct_dials(
    database_url: str, sandbox: Sandbox, sandbox_world: World, world_batch: WorldBatch
) -> None:
    resources = sandbox_resources(sandbox, database_url)
    before = _leads(database_url)
    result = materialize([phone_contacts], world_batch.batch_id, resources)
    meta = metadata(result, "phone_contacts")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[PHONE_E164_CHECK].passed
    assert not checks[DNC_FRESH_CHECK].passed  # no DNC list loaded: a warning, the run still succeeds
    leads = _leads(database_url)
    blanked = [i for i, row in world_batch.truth.items() if "phone" in row["blanked"]]
    found = [i for i in blanked if leads[i]["phone"]]
    assert len(found) >= 0.6 * len(blanked), meta
    people = {p.id: p for p in sandbox_world.people}
    for i in found:
        person = people[world_batch.truth[i]["person_id"]]
        assert leads[i]["phone"] in {p.number for p in person.phones}
    # every mobile the lead ended with is a mobile in the world
    for i, lead in leads.items():
        if lead["mobile_phone"]:
            person = people[world_batch.truth[i]["person_id"]]
            assert {p.number: p.line_type for p in person.phones}[lead["mobile_phone"]] == "mobile"
    assert meta["mobile"] > 0 and meta["found"] == len(found)
    # a lead given a number and a mobile is one lead updated (the UI showed 53 leads updated of a batch of 40)
    given_both = [i for i in found if leads[i]["mobile_phone"] and not before[i]["mobile_phone"]]
    assert given_both and meta["leads_updated"] == sum(leads[i] != before[i] for i in leads) <= len(leads)
    twilio = _facts(database_url, "phone_line_type")
    assert twilio and all(f["source"] == "twilio" for f in twilio)
    for f in twilio:  # credits per line type found; Twilio's own price in USD kept for finance
        found = f["details"]["valid"] and f["details"]["type"]
        assert float(f["cost"]) == (PRICES["twilio_lookup"] if found else 0.0)
        assert f["details"]["provider_cost"] > 0 and f["details"]["provider_cost_unit"] == "usd"
    assert meta["twilio_lookups"] == len([f for f in twilio if not f["details"].get("reused")])
    searches = _facts(database_url, "person_match")
    assert searches and all(f["details"]["stage"] == "phone" for f in searches)
    for f in searches:  # no match, no charge, though the actor run was paid
        assert float(f["cost"]) == (PRICES["apify_people_search"] if f["details"]["match"] else 0.0)
        assert f["details"]["provider_cost_unit"] == "usd" and "cost_unit" not in f["details"]
    assert any(f["details"]["match"] for f in searches)
    spent = sum(float(f["cost"]) for f in twilio + searches)
    assert meta["credits_this_source"] == meta["credits_source_total"] == round(spent, 4) and spent > 0


def test_phone_stage_reuses_the_people_search_the_email_stage_bought(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    resources = sandbox_resources(sandbox, database_url)
    materialize([email_contacts], world_batch.batch_id, resources, {"email_contacts": {"max_candidates": 1}})
    bought = len(_facts(database_url, "person_match"))
    assert bought > 0
    materialize([phone_contacts], world_batch.batch_id, resources, {"phone_contacts": {"twilio": "never"}})
    searched_by_phone = len(_facts(database_url, "person_match")) - bought
    leads_without_phone_searched = sum(1 for f in _facts(database_url, "phone") if f["source"].startswith("apify:"))
    assert searched_by_phone < leads_without_phone_searched
    # re-running pays nothing more
    first = metadata(materialize([phone_contacts], world_batch.batch_id, resources), "phone_contacts")
    paid = len(_facts(database_url, "person_match")) + len(_facts(database_url, "phone_line_type"))
    again = metadata(materialize([phone_contacts], world_batch.batch_id, resources), "phone_contacts")
    assert again["already_done"] >= first["found"] and again["leads_updated"] == 0
    assert len(_facts(database_url, "person_match")) + len(_facts(database_url, "phone_line_type")) == paid
    # a run that bought nothing says so: summing the asset's materializations counts each credit once
    assert again["credits_this_source"] == 0.0 and again["credits_source_total"] == first["credits_source_total"]


def test_twilio_is_paid_once_per_number_in_a_job_and_never_again(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """A lead with the same number in phone and mobile_phone, or two leads sharing a number, cost one lookup;
    a rerun (overwrite: the numbers are typed again) finds every answer stored, for both of a lead's numbers."""
    leads = {i: lead for i, lead in _leads(database_url).items() if lead["phone"]}
    ids = sorted(leads)
    same = {i: leads[i]["phone"] for i in ids[:10]}  # mobile_phone = phone
    shared = {i: leads[ids[10]]["phone"] for i in ids[11:14]}  # another lead's number as a second number
    with connect(database_url) as conn:
        update_lead_columns(conn, "mobile_phone", {**same, **shared}, overwrite=True)
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "overwrite": True}}
    first = metadata(materialize([phone_contacts], world_batch.batch_id, resources, config), "phone_contacts")
    paid = [f for f in _facts(database_url, "phone_line_type") if not f["details"].get("reused")]
    numbers = [f["details"]["number"] for f in paid]
    assert len(numbers) == len(set(numbers)) == first["twilio_lookups"] > 0
    answered = {(f["lead_id"], f["details"]["number"]) for f in _facts(database_url, "phone_line_type")}
    assert {(i, leads[ids[10]]["phone"]) for i in shared} <= answered
    again = metadata(materialize([phone_contacts], world_batch.batch_id, resources, config), "phone_contacts")
    assert again["twilio_lookups"] == 0 and again["credits_this_source"] == 0.0 < first["credits_this_source"]


def test_a_fresh_twilio_answer_is_reused_for_another_lead_with_the_number_in_a_later_job(
    database_url: str, sandbox: Sandbox, sandbox_world: World, tmp_path: Path
) -> None:
    """Lead A of one list is looked up in one job; lead B of another list, with the same number, is enriched in a
    later job without A: B paid again although A's answer was fresh. Now the answer is reused (it describes the
    number B has, nothing of A), keeping the time it was bought."""
    assert sandbox.http_app is not None
    number = next(p.number for person in sandbox_world.people for p in person.phones if p.number.startswith("+1"))
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
        create_list(conn, "fair", owner="tester")
    for name, (batch, row) in {
        "prospects": ("job-a", f"Ada,One,ada@one.example,{number},US"),
        "fair": ("job-b", f"Bob,Two,bob@two.example,{number},US"),
    }.items():
        import_text(
            database_url,
            tmp_path / f"{batch}.csv",
            f"first_name,last_name,email,phone,country\n{row}\n",
            name,
            batch_id=batch,
        )
    with connect(database_url) as conn:
        a, b = (r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id"))
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "direct_dials": False}}
    log = sandbox.http_app.log
    before = len(log.records("twilio"))

    materialize([phone_contacts], "job-a", resources, config)
    with connect(database_url) as conn:
        conn.execute("UPDATE lead_facts SET observed_at = observed_at - interval '5 days'")
    meta = metadata(materialize([phone_contacts], "job-b", resources, config), "phone_contacts")

    assert len(log.records("twilio")) - before == 1, "one paid Twilio request for both jobs"
    assert meta["twilio_lookups"] == 0
    facts = {f["lead_id"]: f for f in _facts(database_url, "phone_line_type")}
    assert set(facts) == {a, b}
    assert facts[b]["details"]["reused"] and float(facts[b]["cost"]) == 0
    assert facts[b]["observed_at"] == facts[a]["observed_at"]
    assert facts[b]["value"] == facts[a]["value"]


def test_a_reused_twilio_answer_expires_with_the_lookup_that_bought_it(
    database_url: str, sandbox: Sandbox, sandbox_world: World, tmp_path: Path
) -> None:
    """Lead B takes over lead A's stored answer for their shared number 25 days after A's lookup; 10 days later
    (35 > cache_days 30 after the lookup) both are looked up again, with one paid call. Had B's copy been
    observed when it was reused, it would have looked fresh and been passed back to A: never asked again."""
    assert sandbox.http_app is not None
    number = next(p.number for person in sandbox_world.people for p in person.phones if p.number.startswith("+1"))
    csv_path = tmp_path / "two.csv"
    csv_path.write_text(
        f"first_name,last_name,email,phone,country\nAda,One,ada@one.example,{number},US\nBob,Two,bob@two.example,,US\n"
    )
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_file(database_url, csv_path, batch_id="shared-number")
    with connect(database_url) as conn:
        a, b = (r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id"))
    resources = sandbox_resources(sandbox, database_url)
    config = {"phone_contacts": {"twilio": "always", "overwrite": True, "direct_dials": False, "cache_days": 30}}

    requests = sandbox.http_app.log

    def job() -> tuple[int, int]:
        """Twilio lookups the stage reports, and requests the Twilio emulator answered."""
        asked = len(requests.records("twilio"))
        meta = metadata(materialize([phone_contacts], "shared-number", resources, config), "phone_contacts")
        return meta["twilio_lookups"], len(requests.records("twilio")) - asked

    def age(days: int) -> None:
        with connect(database_url) as conn:
            conn.execute("UPDATE lead_facts SET observed_at = observed_at - make_interval(days => %s)", (days,))

    def answers() -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {a: [], b: []}
        for f in _facts(database_url, "phone_line_type"):
            out[f["lead_id"]].append(f)
        return out

    assert job() == (1, 1)
    age(25)
    with connect(database_url) as conn:
        update_lead_columns(conn, "phone", {b: number}, overwrite=True)
    assert job() == (0, 0), "A's answer is 25 days old: B reuses it"
    [bought], [reused] = answers()[a], answers()[b]
    assert reused["details"]["reused"] and reused["observed_at"] == bought["observed_at"]
    age(10)

    assert job() == (1, 1), "35 days after the lookup: looked up again, once for both leads"
    fresh = {f["lead_id"]: f for f in _facts(database_url, "phone_line_type") if f["id"] > reused["id"]}
    assert set(fresh) == {a, b} and sum(float(f["cost"]) for f in fresh.values()) == PRICES["twilio_lookup"]


def test_the_workers_keep_one_connection_each_for_the_numbers_they_buy(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Twilio answer bought (and every reused answer passed on) opened a connection of its own, ~10 ms per
    number; a worker keeps one for all its numbers, over every chunk, and all are closed when the stage ends."""
    opened: list[psycopg.Connection[Any]] = []
    real = psycopg.connect

    def counting(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = real(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(psycopg, "connect", counting)
    twilio = sandbox_resources(sandbox, database_url)["twilio"]
    options = PhoneOptions(twilio="always", direct_dials=False, chunk_size=50, workers=2)
    stats = PhoneStage(database_url, world_batch.batch_id, twilio, None, options).run()
    chunks = -(-stats.leads // options.chunk_size)
    assert stats.twilio_lookups > 3 * (1 + chunks + options.workers)
    assert len(opened) <= 1 + chunks + options.workers  # the reader, a writer per chunk, a worker's each
    assert all(conn.closed for conn in opened)
