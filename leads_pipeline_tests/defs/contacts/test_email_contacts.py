"""email_contacts on a batch written from the sandbox world: verdicts and discoveries against the truth."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from leads_pipeline.defs.contacts.assets import email_contacts
from leads_pipeline.defs.contacts.checks import EMAIL_MX_CHECK
from leads_pipeline.lib.credits import PRICES
from leads_pipeline.lib.store import enrichment as jobs_store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources
from leads_pipeline_tests.support import bidx


def _facts(database_url: str, field: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM lead_facts WHERE field = %s ORDER BY id", (field,)))


def _emails(database_url: str) -> dict[int, str | None]:
    with connect(database_url) as conn:
        return {r["id"]: r["email"] for r in conn.execute("SELECT id, email FROM leads")}


def test_discovers_and_verifies_emails_against_the_truth(
    database_url: str, sandbox: Sandbox, sandbox_world: World, world_batch: WorldBatch
) -> None:
    resources = sandbox_resources(sandbox, database_url)
    config = {"email_contacts": {"people_search": False}}
    result = materialize([email_contacts], world_batch.batch_id, resources, config)
    meta = metadata(result, "email_contacts")
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == EMAIL_MX_CHECK and check.passed
    assert meta["leads"] == len(world_batch.truth) and meta["mailbox_check"] == "smtp"
    assert meta["credits_this_source"] == 0.0  # SMTP probes are free
    assert meta["people_search"] == "off (config)"

    emails = _emails(database_url)
    blanked = [i for i, row in world_batch.truth.items() if "email" in row["blanked"]]
    found = [i for i in blanked if emails[i]]
    wrong = [i for i in found if emails[i] != world_batch.truth[i]["true"]["email"]]
    assert len(found) >= 0.5 * len(blanked), meta
    assert not wrong, [(emails[i], world_batch.truth[i]["true"]["email"]) for i in wrong]
    assert meta["found"] == len(found)

    discovered = {f["lead_id"]: f for f in _facts(database_url, "email") if f["source"] != "existing"}
    assert set(discovered) == set(blanked)
    existing = {f["lead_id"]: f for f in _facts(database_url, "email") if f["source"] == "existing"}
    assert set(existing) == set(world_batch.truth) - set(blanked)
    assert all(f["value"] == world_batch.truth[i]["true"]["email"] for i, f in existing.items())
    risky = [f for f in discovered.values() if f["details"]["status"] in ("catch_all", "unknown") and f["value"]]
    assert risky and all(0 < f["confidence"] <= 85 for f in risky)
    right = sum(f["value"] == world_batch.truth[f["lead_id"]]["true"]["email"] for f in risky)
    assert right >= 0.6 * len(risky)

    statuses = {f["lead_id"]: f for f in _facts(database_url, "email_status") if f["source"] == "smtp"}
    for lead_id, row in world_batch.truth.items():
        company = sandbox_world.company(row["true"]["company_domain"])
        assert company is not None
        if "email" not in row["blanked"] and company.mx_behaviour in ("strict", "no_mx"):
            assert statuses[lead_id]["value"] == "valid", statuses[lead_id]["details"]
        if "email" not in row["blanked"] and company.mx_behaviour == "catch_all":
            assert statuses[lead_id]["value"] == "catch_all"


def test_rerun_skips_done_leads_and_overwrite_rechecks(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    resources = sandbox_resources(sandbox, database_url)
    config = {"email_contacts": {"people_search": False}}
    materialize([email_contacts], world_batch.batch_id, resources, config)
    facts_before = len(_facts(database_url, "email_status")) + len(_facts(database_url, "email"))
    emails_before = _emails(database_url)
    again = metadata(materialize([email_contacts], world_batch.batch_id, resources, config), "email_contacts")
    unknown = Counter(f["value"] for f in _facts(database_url, "email_status"))["unknown"]
    assert again["already_done"] >= len(world_batch.truth) - unknown - 5
    assert _emails(database_url) == emails_before
    assert len(_facts(database_url, "email_status")) + len(_facts(database_url, "email")) <= facts_before + 2 * unknown
    forced = metadata(
        materialize(
            [email_contacts],
            world_batch.batch_id,
            resources,
            {"email_contacts": {"overwrite": True, "people_search": False}},
        ),
        "email_contacts",
    )
    assert forced["already_done"] == 0 and forced["checked"] >= forced["leads"] * 0.35


def test_probing_off_pays_the_verifier_once_per_address(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    config = {"email_contacts": {"discover": False}}
    meta = metadata(materialize([email_contacts], world_batch.batch_id, resources, config), "email_contacts")
    assert meta["mailbox_check"] == "zerobounce"
    paid = [f for f in _facts(database_url, "email_status") if f["source"] == "zerobounce"]
    assert len(paid) == meta["checked"]
    assert meta["credits_this_source"] == meta["credits_source_total"] == float(sum(f["cost"] for f in paid)) > 0
    for f in paid:  # a credit per verdict; an "unknown" is no data, so no charge; ZeroBounce's credits in details
        assert float(f["cost"]) == (0.0 if f["value"] == "unknown" else PRICES["zerobounce"])
        assert f["details"]["provider_cost_unit"] == "credits" and f["details"]["price_item"] == "zerobounce"
    # a restart with overwrite asks again, but answers already bought are reused: only the free "unknown"
    # answers (greylisting, silent hosts) are asked again, and only what they now cost is added
    free_unknown = {f["details"]["email"] for f in paid if f["value"] == "unknown" and float(f["cost"]) == 0}
    config = {"email_contacts": {"discover": False, "overwrite": True}}
    again = metadata(materialize([email_contacts], world_batch.batch_id, resources, config), "email_contacts")
    after = [f for f in _facts(database_url, "email_status") if f["source"] == "zerobounce"]
    asked_again = after[len(paid) :]
    assert {f["details"]["email"] for f in asked_again} <= free_unknown
    # each run reports what it spent, so summing the asset's materializations counts each credit once
    assert again["credits_this_source"] == float(sum(f["cost"] for f in asked_again))
    assert again["credits_source_total"] == meta["credits_this_source"] + again["credits_this_source"]


def test_a_reused_paid_verdict_keeps_the_time_it_was_bought(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """A later job reusing a cached ZeroBounce verdict writes it for its lead as observed when it was bought, not
    when it was reused: the verdict is no newer for being passed on (and ages out of the cache from then)."""
    assert sandbox.http_app is not None
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    materialize([email_contacts], world_batch.batch_id, resources, {"email_contacts": {"discover": False}})
    with connect(database_url) as conn:
        conn.execute("UPDATE email_verifications SET checked_at = checked_at - interval '10 days'")
        conn.execute("UPDATE lead_facts SET observed_at = observed_at - interval '10 days'")
        conn.execute("INSERT INTO batches (id, kind) VALUES ('later', 'selection')")
        conn.execute("INSERT INTO batch_leads (batch_id, lead_id) SELECT 'later', id FROM leads")
        bought = {r["email_bidx"]: r["checked_at"] for r in conn.execute("SELECT * FROM email_verifications")}
    asked = len(sandbox.http_app.log.records("zerobounce"))
    config = {"email_contacts": {"discover": False, "overwrite": True}}

    materialize([email_contacts], "later", resources, config)

    with connect(database_url) as conn:
        reused = list(
            conn.execute(
                "SELECT details->>'email_bidx' AS bidx, observed_at, cost FROM lead_facts"
                " WHERE batch_id = 'later' AND field = 'email_status' AND details ? 'reused_from'"
            )
        )
    assert reused and all(r["observed_at"] == bought[r["bidx"]] and float(r["cost"]) == 0 for r in reused)
    asked_again = len(sandbox.http_app.log.records("zerobounce")) - asked
    assert asked_again == len(bought) - len({r["bidx"] for r in reused})  # only the free "unknown" answers


def test_a_verdict_older_than_cache_days_is_verified_again(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """Without overwrite, an email with a settled verdict (valid, invalid...) was never verified again however old
    the verdict: now one older than cache_days is, and a younger one is kept."""
    assert sandbox.http_app is not None
    log = sandbox.http_app.log
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    config = {"email_contacts": {"discover": False, "cache_days": 30}}
    materialize([email_contacts], world_batch.batch_id, resources, config)
    settled = {f["details"]["email"] for f in _facts(database_url, "email_status") if f["value"] != "unknown"}
    assert settled

    def rerun_aged(days: int) -> tuple[set[str], int]:
        """Age every verdict by ``days``, run again; the addresses given a new verdict, and ZeroBounce requests."""
        with connect(database_url) as conn:
            conn.execute("UPDATE email_verifications SET checked_at = checked_at - make_interval(days => %s)", (days,))
            conn.execute("UPDATE lead_facts SET observed_at = observed_at - make_interval(days => %s)", (days,))
        before, asked = len(_facts(database_url, "email_status")), len(log.records("zerobounce"))
        materialize([email_contacts], world_batch.batch_id, resources, config)
        new = _facts(database_url, "email_status")[before:]
        return {f["details"]["email"] for f in new}, len(log.records("zerobounce")) - asked

    checked, _ = rerun_aged(10)
    assert not checked & settled, "a 10-day-old verdict is kept"
    checked, asked = rerun_aged(25)
    assert checked >= settled, "a 35-day-old verdict is verified again"
    assert asked >= len(settled)


def test_an_erased_persons_address_is_not_found_again(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """Half the people whose address was blanked were erased (`leads privacy delete`) and came back by name and
    company: discovery neither verifies, caches nor stores their address again, by pattern or by people search
    (before: each was found, verified and written back to the lead). The other half are found as usual."""
    blanked = sorted(i for i, row in world_batch.truth.items() if "email" in row["blanked"] and row["true"]["email"])
    erased = {world_batch.truth[i]["true"]["email"] for i in blanked[::2]}
    assert erased and blanked[1::2], "the world blanks addresses of people on both sides"
    hashes = [bidx(email) for email in erased]
    with connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO suppressions (hash, kind, reason, created_by) VALUES (%s, 'email', 'erasure request', 't')",
            [(h,) for h in hashes],
        )
    materialize([email_contacts], world_batch.batch_id, sandbox_resources(sandbox, database_url))

    emails = _emails(database_url)
    assert not erased & set(emails.values()), "no erased address is written back to a lead"
    assert sum(1 for i in blanked[1::2] if emails[i]) >= 0.5 * len(blanked[1::2]), "the others are found"
    with connect(database_url) as conn:
        for table, column in (("email_verifications", "email_bidx"), ("email_pattern_evidence", "address_bidx")):
            found = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {column} = ANY(%s)", (hashes,)).fetchone()
            assert found == {"n": 0}, table
        facts = json.dumps([dict(r) for r in conn.execute("SELECT value, details FROM lead_facts")], default=str)
    assert not [email for email in erased if f'"{email}"' in facts], "no fact names an erased address"


def test_launching_email_contacts_alone_records_its_job(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    """A UI launch of email_contacts alone on a batch without a job spent credits under the monthly budget only,
    and no job recorded it (`leads jobs` did not show it); it now creates the job, as company_profiles does."""
    resources = sandbox_resources(sandbox, database_url, smtp_probing="off")
    config = {"email_contacts": {"discover": False}}

    meta = metadata(materialize([email_contacts], world_batch.batch_id, resources, config), "email_contacts")

    with connect(database_url) as conn:
        job = jobs_store.find_job(conn, world_batch.batch_id)
        listed = [j.id for j in jobs_store.recent_jobs(conn, "dagster")]
        used = jobs_store.credits_used(conn, world_batch.batch_id)
    assert job is not None and job.sources == ("email",) and job.template == "standard"
    assert job.leads_queued == len(world_batch.truth) and job.created_by == "dagster"
    assert listed == [job.id]
    assert used == meta["credits_used_by_job"] == meta["credits_this_source"] > 0
