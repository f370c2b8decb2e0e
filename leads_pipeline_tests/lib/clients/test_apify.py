"""ApifyResource (apify-client) against the Apify emulator over the wire."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.http import MalformedResponseError
from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError
from leads_pipeline.sandbox.http import EmulatorSettings, HttpEmulator, ProviderSettings, build_http_app
from leads_pipeline.sandbox.http.apify import PRICE_USD
from leads_pipeline.sandbox.http.common import RateLimit
from leads_pipeline.sandbox.world import Company, Experience, LinkedInProfile, Person, Phone, World
from leads_pipeline_tests.support import served

TOKEN = "apify_api_secret_token_31"
ACME = Company(
    name="Acme Analytics",
    domain="acme.io",
    industry="Software",
    linkedin_url="https://www.linkedin.com/company/acme-analytics",
    hq_city="Austin",
    hq_country="US",
)


def person(index: int, first: str, last: str, domain: str = "acme.io") -> Person:
    return Person(
        id=f"p{index}",
        first_name=first,
        last_name=last,
        company_domain=domain,
        title="Engineer",
        email=f"{first.lower()}.{last.lower()}@{domain}",
        phones=(Phone(f"+1415555{index:04d}", "mobile"),),
        linkedin=LinkedInProfile(
            url=f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}",
            headline=f"Engineer at {ACME.name}",
            location="Austin, Texas, United States",
            photo_url=f"https://media.example/{index}.jpg",
            connection_degree=index % 3 + 1,
            experience=(
                Experience("Engineer", ACME.name, "2020-01"),
                Experience("Intern", "Initech", "2019-01", "2019-12"),
            ),
        ),
    )


PEOPLE = tuple(person(i, first, "Doe") for i, first in enumerate(["Jane", "John", "Jill", "Jack", "Joan"], start=1))
OTHER_JANE = replace(
    person(9, "Jane", "Doe", domain="initech.example"),
    linkedin=LinkedInProfile("https://www.linkedin.com/in/jane-doe-2", "Sales at Initech", None, None, None),
)
WORLD = World(companies=(ACME,), people=(*PEOPLE, OTHER_JANE))


SETTINGS = EmulatorSettings(
    timeout_sleep_s=1.0,
    apify_run_s=0.05,  # runs stay RUNNING briefly, so the client polls waitForFinish
    providers={"apify": ProviderSettings(api_keys=frozenset({TOKEN}))},
)


def resource(base: str, **overrides: Any) -> ApifyResource:
    settings: dict[str, Any] = {
        "token": TOKEN,
        "api_url": f"{base}/apify",
        "timeout_s": 0.3,
        "run_timeout_s": 5.0,
        "max_retries": 2,
        "min_delay_between_retries_s": 0.01,
    }
    return ApifyResource(**{**settings, **overrides})


@pytest.fixture
def apify(emulators: tuple[HttpEmulator, str]) -> ApifyResource:
    return resource(emulators[1])


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_google_search_finds_the_profile_at_the_named_employer_first(apify: ApifyResource) -> None:
    results = apify.google_search("Jane Doe Acme Analytics")
    assert [r.url for r in results] == [
        "https://www.linkedin.com/in/jane-doe",  # Jane at the named employer
        "https://www.linkedin.com/in/jane-doe-2",  # the other Jane Doe
        "https://www.acme.io/",
        "https://www.linkedin.com/company/acme-analytics",
    ]
    assert [r.position for r in results] == [1, 2, 3, 4]
    assert results[0].title == "Jane Doe - Engineer - Acme Analytics | LinkedIn"


def test_google_search_site_filter(apify: ApifyResource) -> None:
    results = apify.google_search("Acme Analytics site:acme.io")
    assert [r.url for r in results] == ["https://www.acme.io/"]


def test_linkedin_profiles_read_every_dataset_page(app: HttpEmulator, emulators: tuple[HttpEmulator, str]) -> None:
    paged = resource(emulators[1], dataset_page_size=10)
    unknown = [f"https://www.linkedin.com/in/nobody-{i}" for i in range(20)]  # > 1 KiB of input: gzip-encoded
    urls = [p.linkedin.url for p in PEOPLE if p.linkedin] + unknown
    profiles = paged.linkedin_profiles(urls)
    assert [p.first_name for p in profiles] == ["Jane", "John", "Jill", "Jack", "Joan"]
    first = profiles[0]
    assert (first.headline, first.location, first.photo_url, first.connection_degree) == (
        "Engineer at Acme Analytics",
        "Austin, Texas, United States",
        "https://media.example/1.jpg",
        2,
    )
    assert [(e.title, e.company, e.end) for e in first.experience] == [
        ("Engineer", "Acme Analytics", None),
        ("Intern", "Initech", "2019-12"),
    ]
    pages = [r for r in app.log.records("apify") if r.path.endswith("/items")]
    assert len(pages) == 4  # 25 items in pages of 10, then the empty page that ends the iteration


def test_run_actor_reports_the_cost_of_the_run(apify: ApifyResource) -> None:
    urls = [p.linkedin.url for p in PEOPLE[:3] if p.linkedin] + ["https://www.linkedin.com/in/nobody"]
    run = apify.run_actor(apify.linkedin_profile_actor, {"profileUrls": urls})
    assert (run.status, len(run.items)) == ("SUCCEEDED", 4)
    assert run.usage_total_usd == pytest.approx(3 * PRICE_USD["linkedin_profiles"])  # only profiles found


def test_people_search_returns_contact_details(apify: ApifyResource) -> None:
    (match,) = apify.people_search("Jane", "Doe", "acme.io")
    assert (match.email, match.title, match.company_domain) == ("jane.doe@acme.io", "Engineer", "acme.io")
    assert [(p.number, p.type) for p in match.phones] == [("+14155550001", "mobile")]
    assert apify.people_search("Nobody", "Here", "acme.io") == []


def test_429_is_retried_by_the_client(app: HttpEmulator, apify: ApifyResource) -> None:
    app.inject("apify", "429")
    assert apify.people_search("Jane", "Doe", "acme.io")
    assert [r.status for r in app.log.records("apify")][:2] == [429, 201]


def test_5xx_is_retried_by_the_client(app: HttpEmulator, apify: ApifyResource) -> None:
    app.inject("apify", "500", "503")
    assert apify.people_search("Jane", "Doe", "acme.io")
    assert [r.status for r in app.log.records("apify")][:3] == [500, 503, 201]


def test_5xx_left_after_the_retries_is_transient(app: HttpEmulator, apify: ApifyResource) -> None:
    app.inject("apify", "503", "503", "503")
    with pytest.raises(TransientError, match="Apify failed for leads-pipeline/people-search after 3 attempts"):
        apify.people_search("Jane", "Doe", "acme.io")


def test_timeout_is_transient(app: HttpEmulator, apify: ApifyResource) -> None:
    app.inject("apify", "timeout", "timeout", "timeout")
    with pytest.raises(TransientError, match=r"did not answer .* within 0\.3 s \(3 attempts\)"):
        apify.people_search("Jane", "Doe", "acme.io")
    wait_for(lambda: len(app.log.records("apify")) == 3)


def test_malformed_body_is_a_clear_error(app: HttpEmulator, apify: ApifyResource) -> None:
    app.inject("apify", "malformed")
    with pytest.raises(MalformedResponseError, match="unreadable body"):
        apify.people_search("Jane", "Doe", "acme.io")


def test_unknown_actor_is_permanent(emulators: tuple[HttpEmulator, str]) -> None:
    misconfigured = resource(emulators[1], people_search_actor="someone/missing-actor")
    with pytest.raises(PermanentError, match="someone/missing-actor"):
        misconfigured.people_search("Jane", "Doe", "acme.io")


def test_rejected_token_is_a_configuration_error(emulators: tuple[HttpEmulator, str]) -> None:
    wrong = resource(emulators[1], token="apify_api_wrong_token_00")
    with pytest.raises(ConfigurationError, match="APIFY_TOKEN") as caught:
        wrong.google_search("Acme")
    assert "apify_api_wrong_token_00" not in str(caught.value)


def test_not_configured_names_the_environment_variable() -> None:
    assert not ApifyResource().is_configured
    with pytest.raises(ConfigurationError, match="set the APIFY_TOKEN environment variable"):
        ApifyResource().google_search("Acme")


def test_request_log_shows_the_run_and_its_price(app: HttpEmulator, apify: ApifyResource) -> None:
    apify.people_search("Jane", "Doe", "acme.io")
    start, *polls = app.log.records("apify")
    assert (start.method, start.path, start.status) == (
        "POST",
        "/v2/actors/leads-pipeline~people-search/runs",
        201,
    )
    assert (start.cost, start.cost_unit, start.api_key) == (PRICE_USD["people_search"], "usd", "...n_31")
    assert any(r.path.startswith("/v2/actor-runs/") for r in polls)


def test_a_paced_resource_keeps_the_tokens_rate_with_runs_at_once(database_url: str) -> None:
    limited = replace(SETTINGS, providers={"apify": ProviderSettings(rate_limit=RateLimit(10, 1.0))})
    app = build_http_app(WORLD, limited)
    with served(app) as base:
        apify = resource(base, requests_per_second=9.0)
        with apify.paced(database_url), ThreadPoolExecutor(4) as pool:  # four runs at once, as a stage starts them
            found = list(pool.map(lambda p: apify.people_search(p.first_name, "Doe", "acme.io"), PEOPLE * 2))
    assert all(found)
    assert [r.fault for r in app.log.records("apify")].count("rate_limit") == 0  # unpaced: 429s, the client retries
    assert app.log.busiest("apify", 1.0) <= 10
