"""Phone numbers offline: parse with the lead's country then a default, E.164 with the extension kept, validity,
line type, carrier and time zones (phonenumbers); and Twilio Lookup's line types in the same vocabulary.

phonenumbers cannot tell US and Canadian mobiles from landlines (FIXED_LINE_OR_MOBILE) and knows no carrier
there; those are the numbers worth a paid line-type lookup. Parsing, typing and the carrier/time-zone lookups
cost ~0.1 ms each, so results are cached per (number, region).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, carrier, timezone

LINE_TYPES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
TWILIO_TYPES: dict[str, str] = {
    "mobile": "mobile",
    "landline": "landline",
    "fixedVoip": "voip",
    "nonFixedVoip": "voip",
    "tollFree": "toll_free",
    "premium": "premium",
    "sharedCost": "shared_cost",
    "personal": "personal",
    "pager": "pager",
    "uan": "uan",
    "voicemail": "voicemail",
}
AMBIGUOUS = frozenset({"fixed_or_mobile", "unknown"})
"""Line types phonenumbers leaves open: a line-type provider can settle them."""


@dataclass(frozen=True)
class PhoneInfo:
    """What the numbering plan says about one number. e164 is None when it cannot be parsed at all."""

    raw: str
    e164: str | None
    extension: str | None
    valid: bool
    line_type: str
    region: str | None
    carrier: str | None
    timezones: tuple[str, ...]
    error: str | None = None

    def details(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "line_type": self.line_type,
            "region": self.region,
            "carrier": self.carrier,
            "timezones": list(self.timezones),
            "extension": self.extension,
            "error": self.error,
        }


@functools.lru_cache(maxsize=1 << 16)
def analyze(number: str, region: str | None = None, default_region: str = "US") -> PhoneInfo:
    """Parse ``number`` (international, or national in ``region`` then ``default_region``) and type it."""
    text = number.strip()
    parsed = None
    problem = "not a phone number"
    regions = [None] if text.startswith("+") else list(dict.fromkeys(r for r in (region, default_region) if r))
    for candidate in regions:
        try:
            attempt = phonenumbers.parse(text, candidate)
        except phonenumbers.NumberParseException as error:
            problem = str(error)
            continue
        parsed = parsed or attempt
        if phonenumbers.is_valid_number(attempt):
            parsed = attempt
            break
    if parsed is None:
        return PhoneInfo(text, None, None, False, "unknown", None, None, (), f"cannot parse {text!r}: {problem}")
    valid = phonenumbers.is_valid_number(parsed)
    line_type = LINE_TYPES.get(phonenumbers.number_type(parsed), "unknown") if valid else "unknown"
    return PhoneInfo(
        raw=text,
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        extension=parsed.extension or None,
        valid=valid,
        line_type=line_type,
        region=phonenumbers.region_code_for_number(parsed),
        carrier=(carrier.name_for_number(parsed, "en") or None) if valid else None,
        timezones=tuple(tz for tz in timezone.time_zones_for_number(parsed) if tz != "Etc/Unknown") if valid else (),
        error=None if valid else "not a valid number for its region's numbering plan",
    )


def twilio_line_type(value: str | None) -> str:
    """Twilio Lookup's line type in this module's vocabulary."""
    return TWILIO_TYPES.get(value or "", "unknown")
