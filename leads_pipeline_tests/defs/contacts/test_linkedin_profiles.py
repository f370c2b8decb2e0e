"""linkedin_profiles on a batch from the sandbox world: batched actor runs, precision against the truth."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.defs.contacts.assets import linkedin_profiles, phone_contacts
from leads_pipeline.defs.contacts.checks import LINKEDIN_URL_CHECK
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.egress import ALLOW_PRIVATE_ENV
from leads_pipeline.lib.credits import PRICES
from leads_pipeline.lib.store.contacts import update_lead_columns
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import WorldBatch, materialize, metadata, sandbox_resources


def _facts(database_url: str, field: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM lead_facts WHERE field = %s ORDER BY id", (field,)))


def test_finds_profiles_precisely_in_batched_runs(
    database_url: str, sandbox: Sandbox, sandbox_world: World, world_batch: WorldBatch, tmp_path: Path
) -> None:
    resources = sandbox_resources(sandbox, database_url)
    config = {
        "linkedin_profiles": {"queries_per_run": 100, "media_dir": str(tmp_path / "media"), "download_photos": False}
    }
    result = materialize([linkedin_profiles], world_batch.batch_id, resources, config)
    meta = metadata(result, "linkedin_profiles")
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == LINKEDIN_URL_CHECK and check.passed
    with connect(database_url) as conn:
        urls = {r["id"]: r["linkedin_url"] for r in conn.execute("SELECT id, linkedin_url FROM leads")}
    blanked = [i for i, row in world_batch.truth.items() if "linkedin" in row["blanked"] and row["true"]["linkedin"]]
    found = [i for i in blanked if urls[i]]
    right = [i for i in found if urls[i] == world_batch.truth[i]["true"]["linkedin"]]
    assert len(right) >= 0.95 * len(found) and len(found) >= 0.8 * len(blanked), meta
    searches = meta["searched"]
    assert meta["actor_runs"] <= -(-searches // 100) + -(-len(world_batch.truth) // 50) + 2
    profiles = [f for f in _facts(database_url, "linkedin_profile") if f["value"]]
    assert profiles and all(f["details"]["url"] for f in profiles)
    assert any(f["details"]["experience"] for f in profiles)
    searched = _facts(database_url, "linkedin_search")
    read = _facts(database_url, "linkedin_profile")
    for f in searched + read:  # a credit per URL found or profile read; the run's USD share kept in details
        item = "apify_google_search" if f["field"] == "linkedin_search" else "apify_linkedin_profile"
        assert float(f["cost"]) == (PRICES[item] if f["value"] else 0.0)
        assert f["details"]["price_item"] == item and f["details"]["provider_cost_unit"] == "usd"
    assert meta["credits_this_source"] == sum(float(f["cost"]) for f in searched + read) > 0
    # again: nothing is bought twice
    paid = len(_facts(database_url, "linkedin_search")) + len(_facts(database_url, "linkedin_profile"))
    again = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources, config), "linkedin_profiles")
    assert again["actor_runs"] == 0 and again["credits_this_source"] == 0.0  # the second run spent nothing
    assert again["credits_source_total"] == meta["credits_source_total"] == meta["credits_this_source"]
    assert len(_facts(database_url, "linkedin_search")) + len(_facts(database_url, "linkedin_profile")) == paid


def test_without_apify_the_stage_is_skipped_with_the_reason(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch
) -> None:
    resources = {**sandbox_resources(sandbox, database_url), "apify": ApifyResource()}
    meta = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources), "linkedin_profiles")
    assert meta["found"] == 0 and "APIFY_TOKEN" in meta["skipped"]
    assert not _facts(database_url, "linkedin_search")


def test_a_profile_two_leads_share_is_read_once_for_both(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, tmp_path: Path
) -> None:
    """Two leads with the same LinkedIn URL (the same person in two lists): the profile is bought once and both
    leads get it; neither is asked for again by a rerun (the second one was left without a profile, so every
    later job bought the same profile again)."""
    with connect(database_url) as conn:
        first, second = (
            r["id"] for r in conn.execute("SELECT id FROM leads WHERE linkedin_url IS NOT NULL ORDER BY id LIMIT 2")
        )
        url = conn.execute("SELECT linkedin_url FROM leads WHERE id = %s", (first,)).fetchone()["linkedin_url"]
        update_lead_columns(conn, "linkedin_url", {second: url}, overwrite=True)
    resources = sandbox_resources(sandbox, database_url)
    config = {"linkedin_profiles": {"discover": False, "media_dir": str(tmp_path / "media"), "download_photos": False}}

    meta = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources, config), "linkedin_profiles")

    shared = {f["lead_id"]: f for f in _facts(database_url, "linkedin_profile") if f["lead_id"] in (first, second)}
    assert set(shared) == {first, second} and shared[first]["value"] == shared[second]["value"]
    assert sorted(float(f["cost"]) for f in shared.values()) == [0.0, PRICES["apify_linkedin_profile"]]
    assert meta["profiles"] == len({f["lead_id"] for f in _facts(database_url, "linkedin_profile") if f["value"]})
    again = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources, config), "linkedin_profiles")
    assert again["actor_runs"] == 0 and again["credits_this_source"] == 0.0 < meta["credits_this_source"]


def test_profile_photos_download_from_the_sandbox(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Photos download by default; the sandbox world's photo URLs were on media.licdn.com, which an offline
    machine cannot reach, so every photo fact carried 'cannot download https://media.licdn.com/...'. The sandbox
    now serves them itself: each is a PNG, stored once under its SHA-256, the same bytes for the same person."""
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, sandbox.env()[ALLOW_PRIVATE_ENV])  # the sandbox listens on 127.0.0.1
    resources = sandbox_resources(sandbox, database_url)
    config = {"linkedin_profiles": {"discover": False, "media_dir": str(tmp_path / "media")}}

    meta = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources, config), "linkedin_profiles")

    photos = _facts(database_url, "linkedin_photo")
    assert meta["photos"] > 0 and meta["photo_errors"] == 0, [f["details"] for f in photos if not f["value"]][:3]
    assert meta["photos"] == len(photos) and all(f["details"]["url"].startswith(sandbox.http_url) for f in photos)
    files = {Path(f["value"]) for f in photos}
    assert all(p.parent == tmp_path / "media" and p.suffix == ".png" for p in files)
    assert all(
        p.read_bytes().startswith(b"\x89PNG") and p.stem == hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    )
    assert len(files) == len({f["details"]["url"] for f in photos})  # one person, one picture; two, two


def test_a_url_the_people_search_already_bought_is_not_searched_for_again(
    database_url: str, sandbox: Sandbox, world_batch: WorldBatch, tmp_path: Path
) -> None:
    """The phone stage's people search (2 credits a match) names the person's LinkedIn profile: the LinkedIn stage
    takes that URL at no cost instead of paying a Google search (1 credit) to find it again (a 300-lead job paid
    97 such searches)."""
    resources = sandbox_resources(sandbox, database_url)
    materialize([phone_contacts], world_batch.batch_id, resources, {"phone_contacts": {"twilio": "never"}})
    with connect(database_url) as conn:
        matched = {
            r["lead_id"]: r["url"]
            for r in conn.execute(
                """SELECT f.lead_id, f.details->'match'->>'linkedin_url' AS url FROM lead_facts f
                   JOIN leads l ON l.id = f.lead_id
                   WHERE f.field = 'person_match' AND l.linkedin_url IS NULL
                     AND f.details->'match'->>'linkedin_url' IS NOT NULL"""
            )
        }
    assert matched
    config = {"linkedin_profiles": {"media_dir": str(tmp_path / "media"), "download_photos": False}}
    meta = metadata(materialize([linkedin_profiles], world_batch.batch_id, resources, config), "linkedin_profiles")
    searched = {f["lead_id"] for f in _facts(database_url, "linkedin_search")}
    assert not searched & set(matched)  # fails before: every one of them was searched (and charged) again
    assert meta["from_people_search"] == len(matched)
    with connect(database_url) as conn:
        urls = {r["id"]: r["linkedin_url"] for r in conn.execute("SELECT id, linkedin_url FROM leads")}
    assert all(urls[lead_id] == url for lead_id, url in matched.items())
    facts = {f["lead_id"]: f for f in _facts(database_url, "linkedin_url")}
    assert all(facts[i]["source"].startswith("apify:") and float(facts[i]["cost"]) == 0.0 for i in matched)
    assert all(world_batch.truth[i]["true"]["linkedin"] == urls[i] for i in matched)
