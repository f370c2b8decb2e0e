"""Provider resources in the Definitions: configured from the environment at run time, never from literals."""

from __future__ import annotations

import dagster as dg
import pytest

from leads_pipeline.defs.resources import provider_resources
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.errors import ConfigurationError


def test_unset_credentials_leave_the_provider_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APIFY_TOKEN", "APIFY_API_URL"):
        monkeypatch.delenv(name, raising=False)
    apify = provider_resources()["apify"]
    assert isinstance(apify, ApifyResource)
    assert not apify.is_configured
    with pytest.raises(ConfigurationError, match="APIFY_TOKEN"):
        apify.google_search("acme")


def test_set_credentials_are_bound_as_env_vars_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_TOKEN", "canary-secret-token")
    monkeypatch.setenv("APIFY_API_URL", "http://127.0.0.1:9/apify")
    apify = provider_resources()["apify"]
    fields = apify._get_non_default_public_field_values()
    assert fields["token"] == dg.EnvVar("APIFY_TOKEN")
    assert fields["api_url"] == dg.EnvVar("APIFY_API_URL")
    assert "canary-secret-token" not in repr(apify)


def test_a_providers_rate_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_REQUESTS_PER_SECOND", "2.5")
    monkeypatch.delenv("ZEROBOUNCE_REQUESTS_PER_SECOND", raising=False)
    resources = provider_resources()
    assert resources["twilio"].requests_per_second == 2.5
    assert resources["zerobounce"].requests_per_second == 100.0  # unset: the default


@pytest.mark.parametrize("value", ["fast", "0", "-3"])
def test_a_rate_that_is_no_positive_number_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("APIFY_REQUESTS_PER_SECOND", value)
    with pytest.raises(ConfigurationError, match="APIFY_REQUESTS_PER_SECOND must be a positive number"):
        provider_resources()
