"""The CRM emulators' own contract, straight over HTTP: auth, required headers, rate-limit headers, error shapes."""

from __future__ import annotations

import requests

from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings, RateLimit
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World


def test_rate_limits_answer_429_with_each_crms_headers(sandbox_world: World) -> None:
    limited = ProviderSettings(rate_limit=RateLimit(requests=1, per_seconds=60))
    settings = EmulatorSettings(providers={"hubspot": limited, "gohighlevel": limited})
    with Sandbox.start(sandbox_world, http_settings=settings) as box:
        hubspot = f"{box.http_url}/hubspot/crm/v3/properties/contacts"
        auth = {"Authorization": "Bearer t"}
        first = requests.get(hubspot, headers=auth, timeout=5)
        assert first.status_code == 200
        assert first.headers["X-HubSpot-RateLimit-Max"] == "1"
        second = requests.get(hubspot, headers=auth, timeout=5)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
        assert second.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        ghl = f"{box.http_url}/gohighlevel/contacts/search"
        body = {"locationId": "sandboxLocation01"}
        answer = requests.post(ghl, json=body, headers={**auth, "Version": "2021-07-28"}, timeout=5)
        assert answer.headers["X-RateLimit-Max"] == "1"
        assert requests.post(ghl, json=body, headers={**auth, "Version": "2021-07-28"}, timeout=5).status_code == 429


def test_auth_and_version_header_errors(sandbox: Sandbox) -> None:
    base = sandbox.http_url
    assert requests.get(f"{base}/hubspot/crm/v3/properties/contacts", timeout=5).status_code == 401
    no_version = requests.post(
        f"{base}/gohighlevel/contacts/upsert", json={}, headers={"Authorization": "Bearer t"}, timeout=5
    )
    assert no_version.status_code == 400 and "Version header" in no_version.json()["message"]
    assert requests.get(f"{base}/pipedrive/api/v1/personFields", timeout=5).status_code == 401
    fields = requests.get(f"{base}/pipedrive/api/v1/personFields", headers={"x-api-token": "t"}, timeout=5).json()
    assert any(len(f["key"]) == 40 and f["name"] == "Company" for f in fields["data"])
    missing_name = requests.post(
        f"{base}/pipedrive/api/v2/persons", json={"emails": []}, headers={"x-api-token": "t"}, timeout=5
    )
    assert missing_name.status_code == 400 and "name" in missing_name.json()["error"]
