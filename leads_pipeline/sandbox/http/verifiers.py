"""ZeroBounce (v2) and NeverBounce (v4) emulators: one verdict from the world, two vocabularies.

The verdict comes from the world the way an SMTP probe would find it: a person's address at a ``strict`` or
``accepts`` domain is deliverable; any address at a ``catch_all`` domain (and an unknown one at ``accepts``)
is a catch-all; an unknown mailbox at ``strict`` (or at a free-mail domain) is undeliverable; ``no_mx`` and
unknown domains have no mail DNS; ``timeout`` hosts give unknown; ``greylist`` hosts give unknown the first
time an address is checked and a strict answer afterwards. Free, disposable and role addresses are flagged
from the public lists.

ZeroBounce: ``GET /v2/validate?api_key=&email=`` and ``GET /v2/getcredits?api_key=``; errors come back as 200
with ``{"error": ...}`` (``Credits: "-1"`` for a bad key), and unknown results cost no credit. NeverBounce:
``GET|POST /v4/single/check?key=&email=``; every answer is 200 with ``status`` (success, auth_failure,
throttle_triggered, temp_unavail, general_failure); ``credits_info=1`` adds the credit use.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response
from leads_pipeline.sandbox.world import Person, World

Outcome = Literal["syntax", "disposable", "no_dns", "no_mx", "timeout", "greylisted", "rejected", "catch_all", "ok"]

_SYNTAX = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")


@dataclass(frozen=True)
class Mailbox:
    """What a verifier learns about one address."""

    address: str
    local: str
    domain: str
    outcome: Outcome
    free: bool
    role: bool
    mx_record: str | None
    person: Person | None

    @property
    def mx_found(self) -> bool:
        return self.outcome not in ("syntax", "no_dns", "no_mx")


class MailboxOracle:
    """Classifies addresses against the world; remembers greylisted addresses to pass the 2nd check."""

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._world = world
        self._lists = settings.email_lists
        self._lock = threading.Lock()
        self._greylisted: set[str] = set()

    def check(self, address: str) -> Mailbox:
        address = address.strip()
        local, _, domain = address.casefold().rpartition("@")
        free = domain in self._lists.free_domains
        role = local in self._lists.role_local_parts
        person = self._world.person_by_email(address)
        company = self._world.company(domain)
        mx_record = (company.mx_hosts[0] if company.mx_hosts else None) if company else None

        def box(outcome: Outcome) -> Mailbox:
            return Mailbox(address, local, domain, outcome, free, role, mx_record, person)

        if not _SYNTAX.match(address):
            return box("syntax")
        if domain in self._lists.disposable_domains:
            return box("disposable")
        if company is None:
            if person is not None:
                return box("ok")
            return box("rejected" if free else "no_dns")
        match company.mx_behaviour:
            case "no_mx":
                return box("no_mx")
            case "timeout":
                return box("timeout")
            case "catch_all":
                return box("catch_all")
            case "accepts":
                return box("ok" if person else "catch_all")
            case "greylist" if self._first_check(address):
                return box("greylisted")
        return box("ok" if person else "rejected")

    def _first_check(self, address: str) -> bool:
        with self._lock:
            first = address.casefold() not in self._greylisted
            self._greylisted.add(address.casefold())
            return first


class _Credits:
    """Credit balance per API key: every key starts with the configured allowance."""

    def __init__(self, allowance: int) -> None:
        self._allowance = allowance
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}

    def remaining(self, key: str) -> int:
        with self._lock:
            return self._allowance - self._used.get(key, 0)

    def spend(self, key: str, amount: int) -> None:
        with self._lock:
            self._used[key] = self._used.get(key, 0) + amount


_ZB_VERDICTS: dict[Outcome, tuple[str, str]] = {
    "syntax": ("invalid", "failed_syntax_check"),
    "disposable": ("do_not_mail", "disposable"),
    "no_dns": ("invalid", "no_dns_entries"),
    "no_mx": ("invalid", "no_dns_entries"),
    "timeout": ("unknown", "mail_server_did_not_respond"),
    "greylisted": ("unknown", "greylisted"),
    "rejected": ("invalid", "mailbox_not_found"),
    "catch_all": ("catch-all", ""),
    "ok": ("valid", ""),
}


class ZeroBounceEmulator:
    name = "zerobounce"
    _BAD_KEY = "Invalid API key or your account ran out of credits"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._oracle = MailboxOracle(world, settings)
        self._credits = _Credits(settings.zerobounce_credits)

    def api_key(self, request: Request) -> str | None:
        return request.params().get("api_key")

    def error(self, status: int, retry_after_s: int | None) -> Response:
        messages = {429: "Too many requests, you have been temporarily blocked", 503: "Service unavailable"}
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        return Response.json(status, {"error": messages.get(status, "Internal server error")}, headers)

    def handle(self, request: Request) -> Response:
        key = self.api_key(request) or ""
        valid_key = self._settings.for_provider(self.name).accepts(key)
        match request.path.rstrip("/"):
            case "/v2/getcredits":
                return Response.json(200, {"Credits": str(self._credits.remaining(key) if valid_key else -1)})
            case "/v2/validate":
                if not valid_key or self._credits.remaining(key) <= 0:
                    return Response.json(200, {"error": self._BAD_KEY})
                email = request.params().get("email", "")
                if not email:
                    return Response.json(400, {"error": "Missing parameter: email"})
                return self._validate(key, self._oracle.check(email))
        return Response.json(404, {"error": "Not found"})

    def _validate(self, key: str, box: Mailbox) -> Response:
        status, sub_status = _ZB_VERDICTS[box.outcome]
        if box.role and status in ("valid", "catch-all"):
            status, sub_status = "do_not_mail", "role_based" if status == "valid" else "role_based_catch_all"
        cost = 0 if status == "unknown" else 1
        self._credits.spend(key, cost)
        person = box.person
        payload = {
            "address": box.address,
            "status": status,
            "sub_status": sub_status,
            "free_email": box.free,
            "did_you_mean": None,
            "account": box.local,
            "domain": box.domain,
            "domain_age_days": None,
            "smtp_provider": None,
            "mx_found": "true" if box.mx_found else "false",
            "mx_record": box.mx_record,
            "firstname": person.first_name if person else None,
            "lastname": person.last_name if person else None,
            "gender": None,
            "country": None,
            "region": None,
            "city": None,
            "zipcode": None,
            "processed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }
        return Response.json(200, payload, cost=cost, cost_unit="credits")


_NB_RESULTS: dict[Outcome, tuple[str, tuple[str, ...]]] = {
    "syntax": ("invalid", ("bad_syntax",)),
    "disposable": ("disposable", ("has_dns", "has_dns_mx", "disposable_email")),
    "no_dns": ("invalid", ("bad_dns",)),
    "no_mx": ("invalid", ("has_dns",)),
    "timeout": ("unknown", ("has_dns", "has_dns_mx", "connect_fails")),
    "greylisted": ("unknown", ("has_dns", "has_dns_mx", "smtp_connectable")),
    "rejected": ("invalid", ("has_dns", "has_dns_mx", "smtp_connectable")),
    "catch_all": ("catchall", ("has_dns", "has_dns_mx", "smtp_connectable", "accepts_all")),
    "ok": ("valid", ("has_dns", "has_dns_mx", "smtp_connectable")),
}


class NeverBounceEmulator:
    name = "neverbounce"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._oracle = MailboxOracle(world, settings)
        self._credits = _Credits(settings.neverbounce_credits)

    def api_key(self, request: Request) -> str | None:
        return request.params().get("key")

    def error(self, status: int, retry_after_s: int | None) -> Response:
        """NeverBounce reports throttling as HTTP 200 ``throttle_triggered``; real 5xx carry a status too."""
        if status == 429:
            message = "Too many requests in a short amount of time, try again shortly"
            return Response.json(200, {"status": "throttle_triggered", "message": message, "execution_time": 1})
        if status == 503:
            message = "The service is temporarily unavailable"
            return Response.json(503, {"status": "temp_unavail", "message": message, "execution_time": 1})
        return Response.json(status, {"status": "general_failure", "message": "Internal error", "execution_time": 1})

    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/v4/single/check" or request.method not in ("GET", "POST"):
            return Response.json(404, {"status": "general_failure", "message": "Not found", "execution_time": 1})
        params = request.params()
        key = params.get("key", "")
        if not key:
            message = "Missing required parameter 'key'"
            return Response.json(200, {"status": "general_failure", "message": message, "execution_time": 1})
        if not self._settings.for_provider(self.name).accepts(key):
            # The real API quotes the rejected key back; clients must keep it out of their logs.
            message = f"Invalid API key '{key}'"
            return Response.json(200, {"status": "auth_failure", "message": message, "execution_time": 1})
        if self._credits.remaining(key) <= 0:
            message = "Insufficient credit balance"
            return Response.json(200, {"status": "general_failure", "message": message, "execution_time": 1})
        email = params.get("email", "")
        if not email:
            message = "Missing required parameter 'email'"
            return Response.json(200, {"status": "general_failure", "message": message, "execution_time": 1})
        box = self._oracle.check(email)
        result, flags = _NB_RESULTS[box.outcome]
        flags = flags + (("free_email_host",) if box.free else ()) + (("role_account",) if box.role else ())
        self._credits.spend(key, 1)
        payload: dict[str, object] = {
            "status": "success",
            "result": result,
            "flags": list(flags),
            "suggested_correction": "",
            "retry_token": "",
            "execution_time": 120,
        }
        if params.get("credits_info", params.get("credit_info", "")).lower() in ("1", "true"):
            payload["credits_info"] = {
                "paid_credits_used": 1,
                "free_credits_used": 0,
                "paid_credits_remaining": self._credits.remaining(key),
                "free_credits_remaining": 0,
            }
        return Response.json(200, payload, cost=1, cost_unit="credits")
