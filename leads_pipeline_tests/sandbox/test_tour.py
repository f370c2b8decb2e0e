"""The provider tour of ``make demo``: every real client, over the wire, answering the world's truth."""

from __future__ import annotations

import dataclasses

import pytest

from leads_pipeline.sandbox.demo_world import DEMO_COMPANIES, DEMO_PEOPLE, DEMO_SEED, demo_world
from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.tour import run_tour, tour_subjects
from leads_pipeline.sandbox.world import World

PROVIDERS = ["Apify", "Apify", "Apify", "Gemini", "ZeroBounce", "NeverBounce", "Twilio Lookup", "DNS", "SMTP"]


def test_every_step_answers_the_worlds_truth_over_the_wire(sandbox: Sandbox, sandbox_world: World) -> None:
    person, company = tour_subjects(sandbox_world)
    assert person.email and person.linkedin and person.phones
    logged_before = len(sandbox.log.entries())
    steps = run_tour(sandbox, sandbox_world)
    assert [s.provider for s in steps] == PROVIDERS
    assert [(s.provider, s.ok, s.detail) for s in steps if not s.ok] == []
    people, google, profile, gemini, zerobounce, neverbounce, twilio, mx, smtp = (s.answer for s in steps)
    assert people.startswith(f"{person.email}, ") and people.endswith(f", {person.title}")
    assert all(phone.number in people for phone in person.phones)
    assert google == person.linkedin.url
    assert profile == f"{person.linkedin.headline!r}, degree {person.linkedin.connection_degree}"
    pages = [page for page in (f"https://www.{company.domain}", company.linkedin_url) if page]  # the world's web
    assert gemini == f"{company.industry}, {company.employee_count} employees, sources: {len(pages)}"
    assert zerobounce.startswith("valid") and neverbounce.startswith("valid")
    assert twilio.startswith(person.phones[0].line_type)
    assert mx == ", ".join(company.mx_hosts)
    assert smtp.startswith("deliverable (250)")
    logged = sandbox.log.entries()[logged_before:]
    paths = {str(e.details["path"]).split("/")[1] for e in logged if e.service == "http"}
    assert paths == {"apify", "gemini", "zerobounce", "neverbounce", "twilio"}
    assert any(e.details["name"] == f"{company.domain}." for e in logged if e.service == "dns")
    assert any(e.details["rcpt"] == person.email for e in logged if e.service == "smtp")


def test_an_answer_that_disagrees_with_the_world_is_not_ok(sandbox: Sandbox, sandbox_world: World) -> None:
    person, _ = tour_subjects(sandbox_world)
    promoted = dataclasses.replace(person, title="Chief Tour Officer")
    believed = dataclasses.replace(
        sandbox_world, people=tuple(promoted if p is person else p for p in sandbox_world.people)
    )
    people_search = run_tour(sandbox, believed)[0]
    assert not people_search.ok
    assert people_search.detail == f"expected title 'Chief Tour Officer', found {person.title!r}"


def test_failed_calls_are_reported_and_the_tour_goes_on(sandbox_world: World) -> None:
    refusing = EmulatorSettings(default=ProviderSettings(api_keys=frozenset({"only-this-key"})))
    with Sandbox.start(sandbox_world, http_settings=refusing) as box:
        steps = run_tour(box, sandbox_world)
    failed = {s.provider for s in steps if not s.ok}
    assert failed == {"Apify", "Gemini", "ZeroBounce", "NeverBounce", "Twilio Lookup"}
    assert all(s.answer == "" and s.detail.startswith("ConfigurationError: ") for s in steps if not s.ok)
    assert [s.provider for s in steps if s.ok] == ["DNS", "SMTP"]


def test_a_world_without_a_suitable_person_is_refused(sandbox_world: World) -> None:
    nobody = dataclasses.replace(sandbox_world, people=())
    with pytest.raises(ValueError, match="no person with an email, a phone and a LinkedIn profile"):
        tour_subjects(nobody)


def test_demo_world_is_small_and_the_same_every_time() -> None:
    world = demo_world()
    assert (len(world.companies), len(world.people), world.seed) == (DEMO_COMPANIES, DEMO_PEOPLE, DEMO_SEED)
    assert demo_world() == world
    tour_subjects(world)
