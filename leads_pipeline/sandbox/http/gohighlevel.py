"""GoHighLevel (LeadConnector API v2) emulator: contacts upsert, read, search and delete, location custom fields.

Endpoints: ``POST /contacts/upsert`` (one contact; de-duplicated by the location's rule: email, then phone;
answers ``{new, contact, traceId}``), ``GET /contacts/search/duplicate`` (``locationId``, ``email``, ``number``:
the contact that rule matches, ``{contact}``, null when none), ``POST /contacts/search`` (``filters`` on
``dateUpdated`` with a ``range``/``gt``, ``sort`` ascending, ``pageLimit`` up to 100, ``searchAfter`` paging),
``GET /contacts/{contactId}`` (``{contact}``; 400 when not found), ``DELETE /contacts/{contactId}``
(``{succeded: true}``, the API's spelling; 404 when not found) and ``GET /locations/{locationId}/customFields``.
Every request needs the ``Version`` header (400 without it) and a bearer token. Errors: 422 with a list of
messages (an invalid email, no email and no phone), 400 for an unknown location. Answers carry
``X-RateLimit-Max``/``-Remaining``/``-Interval-Milliseconds`` and the daily headers; once the location's daily
limit (``usage``, whose limit tests lower) is spent, every call answers 429 with ``X-RateLimit-Daily-Remaining: 0``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response, SeededIds
from leads_pipeline.sandbox.http.crmstore import CrmRecord, CrmStore, DailyUsage, bearer, iso_ms, valid_email
from leads_pipeline.sandbox.world import World

LOCATION = "sandboxLocation01"
STANDARD = ("firstName", "lastName", "name", "email", "phone", "companyName", "website", "address1", "city",
            "state", "postalCode", "country", "source", "tags")  # fmt: skip
CUSTOM_FIELDS = {"cf_title": "Job Title", "cf_linkedin": "LinkedIn", "cf_stage": "Lifecycle Stage"}
PAGE_MAX = 100
DAILY_LIMIT = 200_000


class GoHighLevelEmulator:
    name = "gohighlevel"

    def __init__(self, world: World, settings: EmulatorSettings, ids: SeededIds) -> None:
        self._settings = settings
        self.store = CrmStore(key_fields=("email", "phone"), new_id=lambda n: ids.new(20))
        self.usage = DailyUsage(DAILY_LIMIT)

    def api_key(self, request: Request) -> str | None:
        return bearer(request.headers)

    def error(self, status: int, retry_after_s: int | None) -> Response:
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        messages = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
        return self._fail(status, messages.get(status, "Error"), headers)

    def handle(self, request: Request) -> Response:
        if not self._settings.for_provider(self.name).accepts(bearer(request.headers)):
            return self._fail(401, "Invalid JWT")
        if not request.headers.get("version"):
            return self._fail(400, "Version header was not found")
        if not self.usage.spend():
            return self._fail(429, "Too Many Requests")
        path = request.path.rstrip("/")
        try:
            if request.method == "POST" and path == "/contacts/upsert":
                return self._upsert(request.json())
            if request.method == "POST" and path == "/contacts/search":
                return self._search(request.json())
            if request.method == "GET" and path == "/contacts/search/duplicate":
                return self._duplicate(request.query)
            if request.method == "GET" and path.startswith("/contacts/") and path.count("/") == 2:
                found = self.store.get(path.rsplit("/", 1)[1])
                return self._json(200, {"contact": _contact(found)}) if found else self._fail(400, "Contact not found")
            if request.method == "DELETE" and path.startswith("/contacts/") and path.count("/") == 2:
                if not self.store.delete(path.rsplit("/", 1)[1]):
                    return self._fail(404, "Contact not found")
                return self._json(200, {"succeded": True})  # sic: the API's own spelling
            if request.method == "GET" and path == f"/locations/{LOCATION}/customFields":
                fields = [{"id": k, "name": v, "fieldKey": f"contact.{k}", "dataType": "TEXT", "model": "contact"}
                          for k, v in CUSTOM_FIELDS.items()]  # fmt: skip
                return self._json(200, {"customFields": fields})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._fail(422, f"invalid body: {exc}")
        if path.startswith("/locations/"):
            return self._fail(400, "Location not found")
        return self._fail(404, f"Cannot {request.method} {request.path}")

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("X-RateLimit-Limit-Daily", str(self.usage.limit)),
                   ("X-RateLimit-Daily-Remaining", str(max(0, self.usage.limit - self.usage.used)))]  # fmt: skip
        limit = self._settings.for_provider(self.name).rate_limit
        if limit is not None:
            headers += [("X-RateLimit-Max", str(limit.requests)),
                        ("X-RateLimit-Interval-Milliseconds", str(int(limit.per_seconds * 1000)))]  # fmt: skip
        return headers

    def _json(self, status: int, payload: Any) -> Response:
        return Response.json(status, payload, self._headers())

    def _fail(self, status: int, message: str | list[str], headers: list[tuple[str, str]] | None = None) -> Response:
        body = {"statusCode": status, "message": message, "error": {422: "Unprocessable Entity"}.get(status, "Error")}
        return Response.json(status, body, [*(headers or []), *self._headers()])

    def _upsert(self, payload: Any) -> Response:
        if payload.get("locationId") != LOCATION:
            return self._fail(400, "Location not found")
        fields = {k: v for k, v in payload.items() if k in STANDARD}
        problems = []
        if not valid_email(fields.get("email")):
            problems.append("email must be an email")
        custom = {c["id"]: c.get("field_value") for c in payload.get("customFields") or []}
        unknown = sorted(set(custom) - set(CUSTOM_FIELDS))
        if unknown:
            problems.append(f"customFields: unknown field id {', '.join(unknown)}")
        with self.store.lock:
            record = self.store.find("email", fields.get("email")) or self.store.find("phone", fields.get("phone"))
            if record is None and not fields.get("email") and not fields.get("phone"):
                problems.append("email or phone is required")
            if problems:
                return self._fail(422, problems)
            fields["customFields"] = {**((record.fields.get("customFields") if record else None) or {}), **custom}
            if record is None:
                return self._json(201, {"new": True, "contact": _contact(self.store.create(fields)),
                                        "traceId": str(uuid.uuid4())})  # fmt: skip
            record = self.store.update(record, fields)
        return self._json(200, {"new": False, "contact": _contact(record), "traceId": str(uuid.uuid4())})

    def _duplicate(self, query: Mapping[str, str]) -> Response:
        """The contact the upsert would update for that email and number (the location's rule: email, then phone),
        ``{contact: null}`` when none."""
        if query.get("locationId") != LOCATION:
            return self._fail(400, "Location not found")
        with self.store.lock:
            record = self.store.find("email", query.get("email")) or self.store.find("phone", query.get("number"))
            return self._json(200, {"contact": _contact(record) if record else None})

    def _search(self, payload: Any) -> Response:
        if payload.get("locationId") != LOCATION:
            return self._fail(400, "Location not found")
        limit = min(int(payload.get("pageLimit") or 20), PAGE_MAX)
        since: int | None = None
        for item in payload.get("filters") or []:
            if item.get("field") == "dateUpdated" and item.get("operator") == "range":
                since = int(datetime.fromisoformat(item["value"]["gt"].replace("Z", "+00:00")).timestamp() * 1000)
        after = payload.get("searchAfter")
        found = list(self.store.changed_since(since))
        if after:
            found = [r for r in found if (r.updated_ms, r.id) > (int(after[0]), str(after[1]))]
        page = found[:limit]
        return self._json(200, {"contacts": [_contact(r) for r in page], "total": len(found)})


def _contact(record: CrmRecord) -> dict[str, Any]:
    fields = record.fields
    contact = {name: fields.get(name) for name in STANDARD}
    contact.update(
        id=record.id,
        locationId=LOCATION,
        dateAdded=iso_ms(record.created_ms),
        dateUpdated=iso_ms(record.updated_ms),
        customFields=[{"id": k, "value": v} for k, v in (fields.get("customFields") or {}).items()],
        searchAfter=[record.updated_ms, record.id],
    )
    return contact
