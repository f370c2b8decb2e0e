"""Phone typing with phonenumbers for US, GB, DE and IN numbers, extensions, regions and Twilio's vocabulary."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.contacts.phones import AMBIGUOUS, analyze, twilio_line_type


@pytest.mark.parametrize(
    ("number", "region", "e164", "line_type"),
    [
        ("(201) 555-0123", "US", "+12015550123", "fixed_or_mobile"),
        ("07400 123456", "GB", "+447400123456", "mobile"),
        ("020 7946 0018", "GB", "+442079460018", "landline"),
        ("01512 3456789", "DE", "+4915123456789", "mobile"),
        ("030 123456", "DE", "+4930123456", "landline"),
        ("098765 43210", "IN", "+919876543210", "mobile"),
        ("+1 800 555 0199", None, "+18005550199", "toll_free"),
    ],
)
def test_typing_by_country(number: str, region: str | None, e164: str, line_type: str) -> None:
    info = analyze(number, region)
    assert info.e164 == e164 and info.valid and info.line_type == line_type
    assert info.timezones


def test_us_numbers_stay_ambiguous_for_a_line_type_provider() -> None:
    assert analyze("+12015550123").line_type in AMBIGUOUS


def test_national_numbers_use_the_leads_country_then_the_default() -> None:
    assert analyze("07400 123456", "GB", "US").region == "GB"
    assert analyze("(201) 555-0123", None, "US").e164 == "+12015550123"
    assert analyze("030 123456", "FR", "DE").e164 == "+4930123456"


def test_extensions_are_kept_and_garbage_is_explained() -> None:
    info = analyze("+1 201-555-0123 ext. 42")
    assert info.e164 == "+12015550123" and info.extension == "42"
    bad = analyze("call me maybe")
    assert bad.e164 is None and not bad.valid and bad.error and "cannot parse" in bad.error
    short = analyze("+44 20 1")
    assert not short.valid and short.error


def test_carrier_for_mobiles_where_the_plan_knows_it() -> None:
    assert analyze("+447400123456").carrier


@pytest.mark.parametrize(
    ("twilio", "ours"), [("mobile", "mobile"), ("fixedVoip", "voip"), ("tollFree", "toll_free"), (None, "unknown")]
)
def test_twilio_line_types(twilio: str | None, ours: str) -> None:
    assert twilio_line_type(twilio) == ours
