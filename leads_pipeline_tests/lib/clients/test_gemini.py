"""GeminiResource (google-genai) against the Gemini emulator over the wire."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from leads_pipeline.lib.clients.gemini import CompanyFacts, GeminiResource
from leads_pipeline.lib.clients.http import MalformedResponseError
from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError
from leads_pipeline.sandbox.http import EmulatorSettings, HttpEmulator, ProviderSettings
from leads_pipeline.sandbox.world import Company, World
from leads_pipeline_tests.support import served

KEY = "gemini-secret-key-77"
ACME = Company(
    name="Acme Analytics",
    domain="acme.io",
    aliases=("Acme",),
    industry="Computer Software",
    employee_count=120,
    annual_revenue=15_000_000.0,
    technologies=("Salesforce", "AWS"),
    linkedin_url="https://www.linkedin.com/company/acme-analytics",
    hq_city="Austin",
    hq_country="US",
)
WORLD = World(companies=(ACME,), people=())


SETTINGS = EmulatorSettings(timeout_sleep_s=1.0, providers={"gemini": ProviderSettings(api_keys=frozenset({KEY}))})


def resource(base_url: str, **overrides: Any) -> GeminiResource:
    settings: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "timeout_s": 0.5,
        "retry_attempts": 3,
        "retry_initial_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
    }
    return GeminiResource(**{**settings, **overrides})


@pytest.fixture
def gemini(emulators: tuple[HttpEmulator, str]) -> GeminiResource:
    return resource(f"{emulators[1]}/gemini")


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_known_company_comes_back_with_world_facts_and_sources(gemini: GeminiResource) -> None:
    research = gemini.research_company("Acme Analytics", "acme.io")
    assert research.found
    assert (research.name, research.website, research.industry) == (
        "Acme Analytics",
        "https://www.acme.io",
        "Computer Software",
    )
    assert (research.employee_count, research.annual_revenue_usd) == (120, 15_000_000.0)
    assert research.technologies == ["Salesforce", "AWS"]
    assert (research.linkedin_url, research.twitter_url) == (ACME.linkedin_url, None)
    assert (research.hq_city, research.hq_country) == ("Austin", "US")
    assert [s.uri for s in research.sources] == ["https://www.acme.io", ACME.linkedin_url]
    assert research.search_queries
    assert research.total_tokens == (research.prompt_tokens or 0) + (research.output_tokens or 0) > 0
    assert research.model == "gemini-3-flash-preview"


def test_company_found_by_name_alone(gemini: GeminiResource) -> None:
    assert gemini.research_company("Acme").website == "https://www.acme.io"


@pytest.mark.parametrize(
    ("name", "domain"),
    [("Initech", "initech.example"), ("Initech", None), ("Acme Analytics", "acme-analytics.example")],
)
def test_unknown_company_is_not_found_and_nothing_is_invented(
    gemini: GeminiResource, name: str, domain: str | None
) -> None:
    research = gemini.research_company(name, domain)
    facts = research.model_dump(include=set(CompanyFacts.model_fields))
    assert facts == {field: None for field in facts} | {"found": False, "technologies": []}
    assert research.sources == []


def test_gemini_2_with_search_and_json_is_refused(emulators: tuple[HttpEmulator, str]) -> None:
    old = resource(f"{emulators[1]}/gemini", model="gemini-2.5-flash")
    with pytest.raises(PermanentError, match=r"gemini-2\.5-flash.*Tool use with a response mime type"):
        old.research_company("Acme Analytics", "acme.io")


def test_429_and_5xx_are_retried(app: HttpEmulator, gemini: GeminiResource) -> None:
    app.inject("gemini", "429", "503")
    assert gemini.research_company("Acme Analytics", "acme.io").found
    assert [r.status for r in app.log.records("gemini")] == [429, 503, 200]


def test_5xx_left_after_the_retries_is_transient(app: HttpEmulator, gemini: GeminiResource) -> None:
    app.inject("gemini", "500", "500", "500")
    with pytest.raises(TransientError, match="Gemini failed after 3 attempts"):
        gemini.research_company("Acme Analytics", "acme.io")


def test_timeout_is_transient(app: HttpEmulator, emulators: tuple[HttpEmulator, str]) -> None:
    slow = resource(f"{emulators[1]}/gemini", timeout_s=0.3, retry_attempts=2)
    app.inject("gemini", "timeout", "timeout")
    with pytest.raises(TransientError, match=r"Gemini did not answer within 0\.3 s"):
        slow.research_company("Acme Analytics", "acme.io")
    wait_for(lambda: len(app.log.records("gemini")) == 2)


def test_a_cut_body_is_retried_like_a_5xx(app: HttpEmulator, gemini: GeminiResource) -> None:
    app.inject("gemini", "malformed", "malformed")
    assert gemini.research_company("Acme Analytics", "acme.io").found
    assert len(app.log.records("gemini")) == 3


def test_malformed_body_left_after_the_retries_is_a_clear_transient_error(
    app: HttpEmulator, gemini: GeminiResource
) -> None:
    app.inject("gemini", "malformed", "malformed", "malformed")
    with pytest.raises(MalformedResponseError, match=r"not valid JSON \(3 attempts\)") as caught:
        gemini.research_company("Acme Analytics", "acme.io")
    assert isinstance(caught.value, TransientError) and len(app.log.records("gemini")) == 3


def answer_with(
    text: str, reason: str = "STOP", calls: list[int] | None = None
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A Gemini stand-in whose model answers ``text`` (``calls`` counts the requests): the emulator itself always
    honours the schema."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if calls is not None:
            calls.append(1)
        body = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": reason}]}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


@pytest.mark.parametrize("text", ["Acme is a software company in Austin.", '{"found": "maybe"}'])
def test_answer_that_does_not_parse_is_a_clear_error(text: str) -> None:
    with (
        served(answer_with(text)) as url,
        pytest.raises(MalformedResponseError, match="did not return JSON matching CompanyFacts") as caught,
    ):
        resource(url).research_company("Acme Analytics", "acme.io")
    assert "STOP" in str(caught.value)


def test_a_declined_answer_is_not_found_and_not_asked_again() -> None:
    """SAFETY (or RECITATION, MAX_TOKENS...) is the model's answer to that prompt: asking again would pay again
    for the same refusal."""
    calls: list[int] = []
    with served(answer_with("", reason="SAFETY", calls=calls)) as url:
        research = resource(url).research_company("Acme Analytics", "acme.io")
    assert research.found is False and research.name is None
    assert len(calls) == 1, "asked once"


def test_not_configured_names_the_environment_variable() -> None:
    assert not GeminiResource().is_configured
    with pytest.raises(ConfigurationError, match="set the GEMINI_API_KEY environment variable"):
        GeminiResource().research_company("Acme Analytics")


def test_rejected_key_is_a_configuration_error(emulators: tuple[HttpEmulator, str]) -> None:
    wrong = resource(f"{emulators[1]}/gemini", api_key="gemini-wrong-key-00")
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY") as caught:
        wrong.research_company("Acme Analytics", "acme.io")
    assert "gemini-wrong-key-00" not in str(caught.value)


def test_request_log_counts_tokens(app: HttpEmulator, gemini: GeminiResource) -> None:
    research = gemini.research_company("Acme Analytics", "acme.io")
    (record,) = app.log.records("gemini")
    assert (record.cost, record.cost_unit, record.api_key) == (research.total_tokens, "tokens", "...y-77")
