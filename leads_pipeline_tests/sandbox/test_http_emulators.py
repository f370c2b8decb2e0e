"""The HTTP emulators over the wire with plain ``requests``: shapes, faults, rate limits, the request log.

The client resources have their own tests (leads_pipeline_tests/lib/clients); these pin down what the
emulators promise to any client: the providers' documented shapes, and the sandbox's controls.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from apify_client._models import Run

from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.clients.verifiers import ZeroBounceResource
from leads_pipeline.sandbox.http import (
    EmailLists,
    EmulatorSettings,
    FaultRates,
    HttpEmulator,
    Latency,
    ProviderSettings,
    RateLimit,
    build_http_app,
    http_env,
)
from leads_pipeline.sandbox.world import Company, LinkedInProfile, Person, Phone, World
from leads_pipeline_tests.support import served

ACME = Company(
    name="Acme Analytics",
    domain="acme.io",
    industry="Software",
    employee_count=120,
    technologies=("AWS",),
    linkedin_url="https://www.linkedin.com/company/acme-analytics",
    twitter_url="https://twitter.com/acme",
    hq_city="Austin",
    hq_country="US",
    mx_hosts=("mx1.acme.io",),
)
JANE_URL = "https://www.linkedin.com/in/janedoe"
JANE = Person(
    id="p1",
    first_name="Jane",
    last_name="Doe",
    company_domain="acme.io",
    title="VP Sales",
    email="jane.doe@acme.io",
    phones=(Phone("+15555550100", "mobile", "Verizon"),),
    linkedin=LinkedInProfile(JANE_URL, "VP Sales", "Austin", None, 2),
)
WORLD = World(companies=(ACME,), people=(JANE,))


@contextmanager
def serve(settings: EmulatorSettings) -> Iterator[tuple[HttpEmulator, str]]:
    app = build_http_app(WORLD, settings)
    with served(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def emulators() -> Iterator[tuple[HttpEmulator, str]]:
    with serve(EmulatorSettings(seed=7, apify_run_s=0.3)) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(emulators: tuple[HttpEmulator, str]) -> None:
    emulators[0].reset()


@pytest.fixture
def app(emulators: tuple[HttpEmulator, str]) -> HttpEmulator:
    return emulators[0]


@pytest.fixture
def base(emulators: tuple[HttpEmulator, str]) -> str:
    return emulators[1]


APIFY_AUTH = {"Authorization": "Bearer apify-token-1234"}


def start_run(base: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, object]:
    response = requests.post(
        f"{base}/apify/v2/acts/dev_fusion~Linkedin-Profile-Scraper/runs",
        data=body,
        headers={**APIFY_AUTH, "Content-Type": "application/json", **(headers or {})},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def test_unknown_prefix_is_404_naming_the_mounted_emulators(base: str) -> None:
    response = requests.get(f"{base}/zoho/x", timeout=5)
    assert response.status_code == 404
    assert "apify" in response.json()["error"]


def test_apify_run_object_satisfies_the_client_model_and_waits_for_finish(base: str) -> None:
    run = start_run(base, json.dumps({"profileUrls": [JANE_URL]}).encode())
    assert run["status"] == "RUNNING"
    Run.model_validate(run)  # the fields apify-client requires are all there
    response = requests.get(f"{base}/apify/v2/actor-runs/{run['id']}?waitForFinish=5", headers=APIFY_AUTH, timeout=5)
    finished = response.json()["data"]
    assert finished["status"] == "SUCCEEDED"
    assert finished["usageTotalUsd"] == pytest.approx(0.004)
    assert finished["options"]["memoryMbytes"] >= 128


def test_apify_accepts_gzip_bodies(base: str) -> None:
    urls = [JANE_URL] + [f"https://www.linkedin.com/in/nobody-{i}" for i in range(40)]
    body = gzip.compress(json.dumps({"profileUrls": urls}).encode())
    run = start_run(base, body, {"Content-Encoding": "gzip"})
    items = requests.get(f"{base}/apify/v2/datasets/{run['defaultDatasetId']}/items", headers=APIFY_AUTH, timeout=5)
    assert len(items.json()) == 41
    assert items.json()[0]["headline"] == "VP Sales"
    assert "error" in items.json()[1]


def test_apify_dataset_pages_carry_the_five_pagination_headers(base: str) -> None:
    urls = [f"https://www.linkedin.com/in/p{i}" for i in range(5)]
    run = start_run(base, json.dumps({"profileUrls": urls}).encode())
    items_url = f"{base}/apify/v2/datasets/{run['defaultDatasetId']}/items"
    page = requests.get(items_url, params={"offset": 2, "limit": 2, "desc": "true"}, headers=APIFY_AUTH, timeout=5)
    assert [item["linkedinUrl"] for item in page.json()] == [urls[2], urls[1]]
    assert {k: v for k, v in page.headers.items() if k.lower().startswith("x-apify-pagination")} == {
        "X-Apify-Pagination-Total": "5",
        "X-Apify-Pagination-Offset": "2",
        "X-Apify-Pagination-Count": "2",
        "X-Apify-Pagination-Limit": "2",
        "X-Apify-Pagination-Desc": "true",
    }
    unlimited = requests.get(items_url, headers=APIFY_AUTH, timeout=5)
    assert unlimited.headers["X-Apify-Pagination-Limit"] == "999999999999"


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/v2/acts/nobody~nothing/runs", 404, "record-not-found"),
        ("/v2/acts/apify~google-search-scraper/runs", 400, "invalid-input"),
    ],
)
def test_apify_errors_have_the_api_shape(base: str, path: str, status: int, kind: str) -> None:
    response = requests.post(f"{base}/apify{path}", json={}, headers=APIFY_AUTH, timeout=5)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind


def test_apify_without_token_is_401(base: str) -> None:
    response = requests.post(f"{base}/apify/v2/acts/apify~google-search-scraper/runs", json={}, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "token-not-provided"


def generate(base: str, body: dict[str, object], model: str = "gemini-3-flash-preview") -> requests.Response:
    url = f"{base}/gemini/v1beta/models/{model}:generateContent"
    return requests.post(url, json=body, headers={"x-goog-api-key": "gem-key-1234"}, timeout=5)


JSON_SCHEMA = {
    "$defs": {"Social": {"properties": {"platform": {"type": "string"}, "url": {"type": "string"}}}},
    "type": "object",
    "properties": {
        "found": {"type": "boolean"},
        "companyName": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "employees": {"type": ["integer", "null"]},
        "headquarters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        },
        "social_profiles": {"type": "array", "items": {"$ref": "#/$defs/Social"}},
        "ceo": {"type": "string"},
        "technologies": {"type": "array", "items": {"type": "string"}},
    },
}


def test_gemini_fills_a_json_schema_from_the_world(base: str) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Tell me about acme.io, with its linkedin.com page"}]}],
        "tools": [{"googleSearch": {}}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": JSON_SCHEMA},
    }
    payload = generate(base, body).json()
    answer = json.loads(payload["candidates"][0]["content"]["parts"][0]["text"])
    assert answer == {
        "found": True,
        "companyName": "Acme Analytics",
        "employees": 120,
        "headquarters": {"city": "Austin", "country": "US"},
        "social_profiles": [
            {"platform": "linkedin", "url": ACME.linkedin_url},
            {"platform": "twitter", "url": ACME.twitter_url},
        ],
        "ceo": None,  # the world does not know it, so neither does the emulator
        "technologies": ["AWS"],
    }
    chunks = payload["candidates"][0]["groundingMetadata"]["groundingChunks"]
    assert [c["web"]["uri"] for c in chunks] == ["https://www.acme.io", ACME.linkedin_url]
    usage = payload["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] > 0


@pytest.mark.parametrize(
    "prompt",
    [
        "Research Initech (initech.example)",
        "Research Acme Analytics (acme-analytics.example)",  # a known name at an unknown domain is not Acme
        "Research Initech",
    ],
)
def test_gemini_answers_not_found_for_companies_outside_the_world(base: str, prompt: str) -> None:
    body = {
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": JSON_SCHEMA},
    }
    answer = json.loads(generate(base, body).json()["candidates"][0]["content"]["parts"][0]["text"])
    assert answer["found"] is False
    assert answer["companyName"] is None
    assert answer["headquarters"] == {"city": None, "country": None}
    assert answer["social_profiles"] == []


def test_gemini_2_rejects_search_with_json_output_like_the_real_api(base: str) -> None:
    body = {
        "contents": [{"parts": [{"text": "acme.io"}]}],
        "tools": [{"googleSearch": {}}],
        "generationConfig": {"responseMimeType": "application/json"},
    }
    response = generate(base, body, model="gemini-2.5-flash")
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_rate_limit_error_carries_retry_info(app: HttpEmulator, base: str) -> None:
    app.inject("gemini", "429")
    response = generate(base, {"contents": [{"parts": [{"text": "acme.io"}]}]})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["retryDelay"] == "1s"


def test_zerobounce_shapes_and_credits(base: str) -> None:
    validate = f"{base}/zerobounce/v2/validate"
    answer = requests.get(validate, params={"api_key": "zb-key-1", "email": "nobody@acme.io"}, timeout=5).json()
    assert (answer["status"], answer["sub_status"], answer["mx_found"]) == (
        "invalid",
        "mailbox_not_found",
        "true",
    )
    credits = requests.get(f"{base}/zerobounce/v2/getcredits", params={"api_key": "zb-key-1"}, timeout=5).json()
    assert credits == {"Credits": "99999"}
    assert requests.get(validate, params={"api_key": "", "email": "x@acme.io"}, timeout=5).json() == {
        "error": "Invalid API key or your account ran out of credits"
    }


def test_neverbounce_accepts_post_form_bodies(base: str) -> None:
    data = {"key": "nb-key-1", "email": "jane.doe@acme.io"}
    answer = requests.post(f"{base}/neverbounce/v4/single/check", data=data, timeout=5).json()
    assert (answer["status"], answer["result"]) == ("success", "valid")
    assert "has_dns_mx" in answer["flags"]


def test_neverbounce_throttling_is_a_200_with_a_status(app: HttpEmulator, base: str) -> None:
    app.inject("neverbounce", "429")
    response = requests.get(f"{base}/neverbounce/v4/single/check", params={"key": "k", "email": "a@b.c"}, timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "throttle_triggered"


def twilio(base: str, path: str, user: str = "AC123", token: str = "tok") -> requests.Response:
    auth = base64.b64encode(f"{user}:{token}".encode()).decode()
    return requests.get(f"{base}/twilio{path}", headers={"Authorization": f"Basic {auth}"}, timeout=5)


def test_twilio_lookup_v2_shapes(base: str) -> None:
    known = twilio(base, "/v2/PhoneNumbers/+15555550100?Fields=line_type_intelligence").json()
    assert known["valid"] is True  # a fictional 555 number is valid because the world has it
    assert known["line_type_intelligence"] == {
        "error_code": None,
        "mobile_country_code": None,
        "mobile_network_code": None,
        "carrier_name": "Verizon",
        "type": "mobile",
    }
    invalid = twilio(base, "/v2/PhoneNumbers/+1415").json()
    assert (invalid["valid"], invalid["validation_errors"]) == (False, ["TOO_SHORT"])
    missing = twilio(base, "/v1/Nothing")
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    unauthenticated = requests.get(f"{base}/twilio/v2/PhoneNumbers/+15555550100", timeout=5)
    assert (unauthenticated.status_code, unauthenticated.json()["code"]) == (401, 20003)
    assert "WWW-Authenticate" in unauthenticated.headers


def test_malformed_fault_cuts_the_body(app: HttpEmulator, base: str) -> None:
    app.inject("zerobounce", "malformed")
    response = requests.get(f"{base}/zerobounce/v2/getcredits", params={"api_key": "zb-key-1"}, timeout=5)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_request_log_redacts_keys_and_records_faults_and_costs(app: HttpEmulator, base: str) -> None:
    app.inject("zerobounce", "500")
    for _ in range(2):
        requests.get(
            f"{base}/zerobounce/v2/validate",
            params={"api_key": "zb-secret-9876", "email": "x@acme.io"},
            timeout=5,
        )
    first, second = app.log.records("zerobounce")
    assert (first.status, first.fault, first.cost) == (500, "500", 0)
    assert (second.status, second.fault, second.cost, second.cost_unit) == (200, None, 1, "credits")
    assert second.path == "/v2/validate"  # no query string: keys never reach the log
    assert second.api_key == "...9876"


def test_inject_rejects_unknown_providers(app: HttpEmulator) -> None:
    with pytest.raises(ValueError, match="zoho"):
        app.inject("zoho", "500")


def test_rate_limit_is_per_key_with_retry_after() -> None:
    limited = ProviderSettings(rate_limit=RateLimit(requests=2, per_seconds=60))
    with serve(EmulatorSettings(providers={"zerobounce": limited})) as (app, base):
        url = f"{base}/zerobounce/v2/getcredits"
        statuses = [requests.get(url, params={"api_key": "key-a"}, timeout=5).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        blocked = requests.get(url, params={"api_key": "key-a"}, timeout=5)
        assert 0 < int(blocked.headers["Retry-After"]) <= 60
        assert requests.get(url, params={"api_key": "key-b"}, timeout=5).status_code == 200
        assert [r.fault for r in app.log.records()].count("rate_limit") == 2


def test_the_log_counts_the_busiest_window_of_arrivals() -> None:
    with serve(EmulatorSettings()) as (app, base):
        url = f"{base}/zerobounce/v2/getcredits"
        for key in ("key-a", "key-b", "key-a"):  # what all clients sent, whatever their keys or processes
            requests.get(url, params={"api_key": key}, timeout=5)
        time.sleep(0.5)
        requests.get(url, params={"api_key": "key-a"}, timeout=5)
        first, *_, last = app.log.records("zerobounce")
        assert last.arrived - first.arrived >= 0.5
        assert app.log.busiest("zerobounce", 60.0) == 4
        assert app.log.busiest("zerobounce", 0.45) == 3
        assert app.log.busiest("twilio", 1.0) == 0


def test_random_faults_follow_the_rates() -> None:
    settings = EmulatorSettings(seed=3, default=ProviderSettings(faults=FaultRates(unavailable=1.0)))
    with serve(settings) as (_, base):
        response = requests.get(f"{base}/twilio/v2/PhoneNumbers/+15555550100", timeout=5)
        assert (response.status_code, response.json()["code"]) == (503, 20503)


def test_latency_is_log_normal_around_the_median() -> None:
    latency = Latency(median_s=0.1, p95_s=0.4)
    rng = random.Random(1)
    samples = sorted(latency.sample(rng) for _ in range(2000))
    assert samples[1000] == pytest.approx(0.1, rel=0.15)
    assert samples[1900] == pytest.approx(0.4, rel=0.25)
    assert Latency().sample(rng) == 0.0


def test_email_lists_load_the_shared_formats(tmp_path: Path) -> None:
    (tmp_path / "free_email_provider_domains_freemail.txt").write_text("gmail.com\nYahoo.com\n")
    (tmp_path / "disposable_email_blocklist.conf").write_text("0-mail.com\n\nmailinator.com\n")
    (tmp_path / "role_based_local_parts_mixmax.csv").write_text("local_part,category\ninfo,general\nsales,sales\n")
    lists = EmailLists.load(tmp_path)
    assert lists.free_domains == {"gmail.com", "yahoo.com"}
    assert lists.disposable_domains == {"0-mail.com", "mailinator.com"}
    assert lists.role_local_parts == {"info", "sales"}


def test_server_survives_many_concurrent_clients(base: str) -> None:
    url = f"{base}/zerobounce/v2/getcredits"
    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(
            pool.map(lambda _: requests.get(url, params={"api_key": "k"}, timeout=10).status_code, range(200))
        )
    assert statuses == [200] * 200


def test_http_env_points_the_client_resources_at_the_emulators(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = http_env(base)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    zerobounce = ZeroBounceResource(
        api_key=env[ZeroBounceResource.ENV_VAR], base_url=env[ZeroBounceResource.URL_ENV_VAR]
    )
    assert zerobounce.verify("jane.doe@acme.io").status == "valid"
    gemini = GeminiResource(api_key=env[GeminiResource.ENV_VAR])  # google-genai reads the base URL itself
    assert gemini.research_company("Acme Analytics", "acme.io").found


def test_body_that_does_not_match_its_encoding_is_a_400(base: str) -> None:
    response = requests.post(
        f"{base}/apify/v2/acts/apify~google-search-scraper/runs",
        data=b"not gzip at all",
        headers={**APIFY_AUTH, "Content-Encoding": "gzip"},
        timeout=5,
    )
    assert response.status_code == 400
