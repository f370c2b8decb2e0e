"""TwilioLookupResource against the Lookup v2 emulator over the wire."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.clients.http import MalformedResponseError
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.errors import ConfigurationError, PermanentError, TransientError
from leads_pipeline.sandbox.http import EmulatorSettings, HttpEmulator, ProviderSettings
from leads_pipeline.sandbox.world import Company, Person, Phone, World

SID = "AC0000000000000000000000000000sand"
TOKEN = "twilio-secret-token-42"
WORLD = World(
    companies=(Company(name="Acme", domain="acme.io"),),
    people=(
        Person(
            id="p1",
            first_name="Jane",
            last_name="Doe",
            company_domain="acme.io",
            phones=(
                Phone("+14155552671", "mobile", "T-Mobile USA"),
                Phone("+15555550100", "fixedVoip", "Bandwidth"),
            ),
        ),
    ),
)


SETTINGS = EmulatorSettings(providers={"twilio": ProviderSettings(api_keys=frozenset({SID}))})


@pytest.fixture
def twilio(emulators: tuple[HttpEmulator, str]) -> TwilioLookupResource:
    return TwilioLookupResource(
        account_sid=SID,
        auth_token=TOKEN,
        base_url=f"{emulators[1]}/twilio",
        max_retries=2,
        backoff_base_s=0.01,
    )


def test_world_number_has_its_line_type_and_carrier(twilio: TwilioLookupResource) -> None:
    result = twilio.lookup("+14155552671")
    assert (result.valid, result.line_type, result.carrier_name) == (True, "mobile", "T-Mobile USA")
    assert (result.country_code, result.calling_country_code, result.national_format) == (
        "US",
        "1",
        "(415) 555-2671",
    )
    assert result.cost_usd == twilio.price_usd_per_lookup


def test_fictional_number_of_the_world_is_valid(twilio: TwilioLookupResource) -> None:
    result = twilio.lookup("+15555550100")
    assert (result.valid, result.line_type) == (True, "fixedVoip")


@pytest.mark.parametrize(
    ("number", "line_type"),
    [
        ("+442071838750", "landline"),  # phonenumbers knows UK fixed lines
        ("+12025550123", "unknown"),  # US numbers are FIXED_LINE_OR_MOBILE: no guess
        ("+18005550199", "tollFree"),
    ],
)
def test_number_outside_the_world_gets_what_phonenumbers_can_tell(
    twilio: TwilioLookupResource, number: str, line_type: str
) -> None:
    result = twilio.lookup(number)
    assert (result.valid, result.line_type, result.carrier_name) == (True, line_type, None)


def test_invalid_number_is_a_result_not_an_error(twilio: TwilioLookupResource) -> None:
    result = twilio.lookup("+1415")
    assert (result.valid, result.validation_errors, result.line_type, result.cost_usd) == (
        False,
        ("TOO_SHORT",),
        None,
        0.0,
    )


def test_429_is_retried(app: HttpEmulator, twilio: TwilioLookupResource) -> None:
    app.inject("twilio", "429")
    assert twilio.lookup("+14155552671").valid
    assert [r.status for r in app.log.records("twilio")] == [429, 200]


def test_5xx_left_after_the_retries_is_transient(app: HttpEmulator, twilio: TwilioLookupResource) -> None:
    app.inject("twilio", "500", "500", "500")
    with pytest.raises(TransientError, match="Twilio Lookup failed on its side"):
        twilio.lookup("+14155552671")


def test_malformed_body_is_a_clear_error(app: HttpEmulator, twilio: TwilioLookupResource) -> None:
    app.inject("twilio", "malformed")
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        twilio.lookup("+14155552671")


def test_wrong_credentials_name_both_variables_and_hide_the_token(twilio: TwilioLookupResource) -> None:
    bad = TwilioLookupResource(account_sid="ACwrong", auth_token=TOKEN, base_url=twilio.base_url)
    with pytest.raises(ConfigurationError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN") as caught:
        bad.lookup("+14155552671")
    assert TOKEN not in str(caught.value)
    assert "20003" in str(caught.value)


def test_wrong_url_is_an_error_not_an_invalid_number(twilio: TwilioLookupResource) -> None:
    moved = TwilioLookupResource(account_sid=SID, auth_token=TOKEN, base_url=twilio.base_url + "/v1")
    with pytest.raises(PermanentError, match="HTTP 404"):
        moved.lookup("+14155552671")


@pytest.mark.parametrize(
    ("resource", "variable"),
    [
        (TwilioLookupResource(), "TWILIO_ACCOUNT_SID"),
        (TwilioLookupResource(account_sid=SID), "TWILIO_AUTH_TOKEN"),
    ],
)
def test_not_configured_names_the_missing_variable(resource: TwilioLookupResource, variable: str) -> None:
    assert not resource.is_configured
    with pytest.raises(ConfigurationError, match=f"set the {variable} environment variable"):
        resource.lookup("+14155552671")


def test_request_log_shows_cost_and_redacted_sid(app: HttpEmulator, twilio: TwilioLookupResource) -> None:
    twilio.lookup("+14155552671")
    (record,) = app.log.records("twilio")
    assert (record.path, record.api_key, record.cost, record.cost_unit) == (
        "/v2/PhoneNumbers/+14155552671",
        "...sand",
        0.008,
        "usd",
    )
