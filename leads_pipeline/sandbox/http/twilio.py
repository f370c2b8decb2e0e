"""Twilio Lookup v2 emulator: ``GET /v2/PhoneNumbers/{number}?Fields=line_type_intelligence`` with basic auth.

Formatting and validation come from phonenumbers; the line type and carrier of a number in the world come from
the world, and a valid number outside it gets the type phonenumbers can tell (``unknown`` where it cannot,
e.g. US FIXED_LINE_OR_MOBILE). As in the published Lookup v2 API, an invalid number is a 200 with ``valid:
false`` and ``validation_errors`` (v1 answered 404); unknown paths are 404 with Twilio's error body (code
20404). A line-type lookup is billed (``LOOKUP_PRICE_USD``, roughly Twilio's US list price); a basic lookup is
free. Numbers in the world are valid whatever phonenumbers says (worlds may use fictional 555 numbers).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response
from leads_pipeline.sandbox.world import World

LOOKUP_PRICE_USD = 0.008

_TYPES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "tollFree",
    PhoneNumberType.VOIP: "nonFixedVoip",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "sharedCost",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

_REASONS: dict[int, str] = {
    ValidationResult.TOO_SHORT: "TOO_SHORT",
    ValidationResult.TOO_LONG: "TOO_LONG",
    ValidationResult.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    ValidationResult.INVALID_LENGTH: "INVALID_LENGTH",
}

_ERRORS = {
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class TwilioEmulator:
    name = "twilio"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._world = world
        self._settings = settings

    def api_key(self, request: Request) -> str | None:
        """The account SID (the basic-auth user name); the auth token is checked only for being present."""
        user, _ = _basic_auth(request)
        return user

    def error(self, status: int, retry_after_s: int | None) -> Response:
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        return _error(status, headers)

    def handle(self, request: Request) -> Response:
        user, token = _basic_auth(request)
        if not token or not self._settings.for_provider(self.name).accepts(user):
            return _error(401, [("WWW-Authenticate", 'Basic realm="Twilio API"')])
        prefix = "/v2/PhoneNumbers/"
        if request.method != "GET" or not request.path.startswith(prefix) or len(request.path) == len(prefix):
            return _error(404)
        fields = {f.strip() for f in request.query.get("Fields", "").split(",") if f.strip()}
        number = unquote(request.path[len(prefix) :])
        payload = self._lookup(number, request.query.get("CountryCode") or "US", "line_type_intelligence" in fields)
        cost = LOOKUP_PRICE_USD if payload["line_type_intelligence"] is not None else 0.0
        return Response.json(200, payload, cost=cost, cost_unit="usd")

    def _lookup(self, raw: str, region: str, line_type: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "calling_country_code": None,
            "country_code": None,
            "phone_number": raw,
            "national_format": None,
            "valid": False,
            "validation_errors": None,
            "caller_name": None,
            "sim_swap": None,
            "call_forwarding": None,
            "line_type_intelligence": None,
            "identity_match": None,
            "reassigned_number": None,
            "sms_pumping_risk": None,
            "phone_number_quality_score": None,
            "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{raw}",
        }
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            payload["validation_errors"] = ["NOT_A_NUMBER"]
            return payload
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        known = self._world.person_by_phone(e164) is not None  # the world is the truth, even for 555 numbers
        if not known and not phonenumbers.is_valid_number(parsed):
            reason = phonenumbers.is_possible_number_with_reason(parsed)
            payload["validation_errors"] = [_REASONS.get(reason, "INVALID_BUT_POSSIBLE")]
            return payload
        payload.update(
            calling_country_code=str(parsed.country_code),
            country_code=phonenumbers.region_code_for_number(parsed),
            phone_number=e164,
            national_format=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
            valid=True,
            url=f"https://lookups.twilio.com/v2/PhoneNumbers/{e164}",
        )
        if line_type:
            payload["line_type_intelligence"] = self._line_type(e164, parsed)
        return payload

    def _line_type(self, e164: str, parsed: phonenumbers.PhoneNumber) -> dict[str, Any]:
        person = self._world.person_by_phone(e164)
        phone = next((p for p in person.phones if p.number == e164), None) if person else None
        kind: str
        if phone is not None:
            kind, carrier = phone.line_type, phone.carrier
        else:
            kind, carrier = _TYPES.get(phonenumbers.number_type(parsed), "unknown"), None
        return {
            "error_code": None,
            "mobile_country_code": None,
            "mobile_network_code": None,
            "carrier_name": carrier,
            "type": kind,
        }


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        user, _, token = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user or None, token or None


def _error(status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    code, message = _ERRORS.get(status, (20500, "Internal Server Error"))
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response.json(status, body, headers or [])
