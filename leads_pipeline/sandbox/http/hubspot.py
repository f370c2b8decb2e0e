"""HubSpot CRM v3 emulator: contacts batch upsert, search and delete, and the contact properties list.

Endpoints as hubspot-api-client calls them (PROVIDERS.md): ``POST /crm/v3/objects/contacts/batch/upsert``
(by ``email`` or a unique custom property; 200 when every input succeeded, 207 with ``errors`` otherwise),
``POST /crm/v3/objects/contacts/search`` (filter on ``lastmodifieddate`` GT, sort ascending, ``after`` paging,
at most 200 per page), ``GET /crm/v3/properties/contacts``, and the deletes: ``POST
/crm/v3/objects/contacts/gdpr-delete`` {objectId[, idProperty]} (permanent; 204, 404 for an unknown contact) and
``DELETE /crm/v3/objects/contacts/{id}`` (archive; 204 even when already gone), the merge ``POST
/crm/v3/objects/contacts/merge`` {primaryObjectId, objectIdToMerge} (the primary keeps its id; the merged-away id
then reads as the primary, whose ``hs_merged_object_ids`` lists it), and by id ``GET
/crm/v3/objects/contacts/{id}``, ``POST /crm/v3/objects/contacts/batch/read`` and ``.../batch/update`` (207 with
``errors`` for unknown ids). Auth is a private-app bearer
token. Per-record errors: an invalid email (``INVALID_EMAIL``), a unique id property whose email already belongs
to another contact (``CONFLICT``, HubSpot's duplicate rule), unknown properties (``PROPERTY_DOESNT_EXIST``), a
value longer than 65,536 characters (``VALIDATION_ERROR``).
Every answer carries HubSpot's ``X-HubSpot-RateLimit-*`` headers. Once the account's daily limit
(``usage``, whose limit tests lower) is spent, every call answers 429 with ``policyName: DAILY`` ("You have reached
your daily limit."), as HubSpot does until midnight in the account's time zone.
"""

from __future__ import annotations

import uuid
from typing import Any

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response
from leads_pipeline.sandbox.http.crmstore import (
    CrmRecord,
    CrmStore,
    DailyUsage,
    bearer,
    iso_ms,
    utf16_length,
    valid_email,
)
from leads_pipeline.sandbox.world import World

PROPERTIES: dict[str, str] = {
    "email": "string",
    "firstname": "string",
    "lastname": "string",
    "phone": "string",
    "mobilephone": "string",
    "jobtitle": "string",
    "company": "string",
    "website": "string",
    "city": "string",
    "state": "string",
    "zip": "string",
    "country": "string",
    "industry": "string",
    "address": "string",
    "hs_linkedin_url": "string",
    "lifecyclestage": "enumeration",
    "hs_lead_status": "enumeration",
    "notes_last_updated": "datetime",
    "leads_id": "string",
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
    "hs_object_id": "number",
    "hs_merged_object_ids": "enumeration",
    "hs_additional_emails": "enumeration",
}
COMPUTED = frozenset({"createdate", "lastmodifieddate", "hs_object_id"})
READ_ONLY = COMPUTED | {"hs_merged_object_ids", "hs_additional_emails"}
UNIQUE = ("email", "leads_id")
VALUE_MAX = 65_536
"""The characters a text property's value may hold when set through the API. HubSpot does not say what it counts;
it runs on Java, whose strings count UTF-16 code units, so the emulator counts those (an emoji is two): the
stricter reading."""
SEARCH_PAGE_MAX = 200
BATCH_MAX = 100
DAILY_LIMIT = 500_000
"""Requests a day of a Professional or Enterprise account's private apps."""


class HubSpotEmulator:
    name = "hubspot"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._settings = settings
        self.store = CrmStore(key_fields=UNIQUE, new_id=lambda n: str(1000 + n))
        self.usage = DailyUsage(DAILY_LIMIT)
        self.merged: dict[str, str] = {}
        """Merged-away contact id -> the contact it was merged into."""

    def api_key(self, request: Request) -> str | None:
        return bearer(request.headers)

    def error(self, status: int, retry_after_s: int | None) -> Response:
        messages = {
            429: ("RATE_LIMITS", "You have reached your ten_secondly_rolling limit."),
            500: ("INTERNAL_ERROR", "Internal error"),
            503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
        }
        category, message = messages.get(status, ("INTERNAL_ERROR", "error"))
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        body = _error(category, message)
        if status == 429:
            body["policyName"] = "TEN_SECONDLY_ROLLING"
            body["errorType"] = "RATE_LIMIT"
        return Response.json(status, body, [*headers, *self._limit_headers()])

    def handle(self, request: Request) -> Response:
        if not self._settings.for_provider(self.name).accepts(bearer(request.headers)):
            body = _error("INVALID_AUTHENTICATION", "Authentication credentials not found or expired.")
            return Response.json(401, body, self._limit_headers())
        if not self.usage.spend():
            body = {**_error("RATE_LIMIT", "You have reached your daily limit."), "errorType": "RATE_LIMIT"}
            return Response.json(429, {**body, "policyName": "DAILY"}, self._limit_headers())
        route = (request.method, request.path.rstrip("/"))
        try:
            if route == ("POST", "/crm/v3/objects/contacts/batch/upsert"):
                return self._upsert(request.json())
            if route == ("POST", "/crm/v3/objects/contacts/merge"):
                return self._merge(request.json())
            if route == ("POST", "/crm/v3/objects/contacts/batch/read"):
                return self._read(request.json())
            if route == ("POST", "/crm/v3/objects/contacts/batch/update"):
                return self._update(request.json())
            if request.method == "GET" and route[1].startswith("/crm/v3/objects/contacts/"):
                record = self._live(route[1].rsplit("/", 1)[1])
                if record is None:
                    return Response.json(404, _error("OBJECT_NOT_FOUND", "Object not found."))
                return self._ok(_object(record, [*request.query.get("properties", "email").split(",")]))
            if route == ("POST", "/crm/v3/objects/contacts/search"):
                return self._search(request.json())
            if route == ("POST", "/crm/v3/objects/contacts/gdpr-delete"):
                return self._gdpr_delete(request.json())
            if request.method == "DELETE" and route[1].startswith("/crm/v3/objects/contacts/"):
                return self._archive(route[1].rsplit("/", 1)[1])
            if route == ("GET", "/crm/v3/properties/contacts"):
                return self._ok({"results": [_property(n, t) for n, t in PROPERTIES.items()]})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return Response.json(400, _error("VALIDATION_ERROR", f"Invalid input JSON: {exc}"))
        return Response.json(404, _error("OBJECT_NOT_FOUND", f"no route {request.method} {request.path}"))

    def _ok(self, payload: Any, status: int = 200) -> Response:
        return Response.json(status, payload, self._limit_headers())

    def _limit_headers(self) -> list[tuple[str, str]]:
        limit = self._settings.for_provider(self.name).rate_limit
        if limit is None:
            return []
        return [
            ("X-HubSpot-RateLimit-Max", str(limit.requests)),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(int(limit.per_seconds * 1000))),
        ]

    def _upsert(self, payload: Any) -> Response:
        inputs = payload["inputs"]
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= BATCH_MAX:
            return Response.json(400, _error("VALIDATION_ERROR", f"inputs: expected 1 to {BATCH_MAX} items"))
        started = iso_ms(self.store.now_ms())
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            id_property, key = item["idProperty"], str(item["id"])
            properties = {k: (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            problem = self._problem(id_property, key, properties)
            if problem:
                errors.append(_error(*problem, context={"id": [key]}))
                continue
            with self.store.lock:
                record = self.store.find(id_property, key)
                fields = {**properties, id_property: key}
                if record is None:
                    record, new = self.store.create(fields), True
                else:
                    record, new = self.store.update(record, fields), False
                results.append({**_object(record, list(properties)), "new": new})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        body["completedAt"] = iso_ms(self.store.now_ms())
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return self._ok(body, 207)
        return self._ok(body)

    def _problem(self, id_property: str, key: str, properties: dict[str, Any]) -> tuple[str, str] | None:
        if id_property not in UNIQUE:
            return "VALIDATION_ERROR", f"{id_property} is not a unique property; use one of {', '.join(UNIQUE)}"
        refused = self._refused(properties)
        if refused:
            return refused
        email = key if id_property == "email" else properties.get("email")
        if not valid_email(email):
            return "INVALID_EMAIL", f"Property values were not valid: email {email!r} is invalid (INVALID_EMAIL)"
        if id_property != "email" and email:
            owner = self.store.find("email", email)
            if owner is not None and owner.fields.get(id_property) not in (None, "", key):
                return "CONFLICT", f"Contact already exists. Existing ID: {owner.id} (duplicate email {email})"
        return None

    @staticmethod
    def _refused(properties: dict[str, Any]) -> tuple[str, str] | None:
        """Why HubSpot refuses these property values (None: it takes them)."""
        unknown = sorted(set(properties) - set(PROPERTIES))
        if unknown:
            return "PROPERTY_DOESNT_EXIST", f"Property values were not valid: {', '.join(unknown)} does not exist"
        read_only = sorted(set(properties) & READ_ONLY)
        if read_only:
            return "READ_ONLY_VALUE", f"{', '.join(read_only)} is a read only property"
        too_long = sorted(k for k, v in properties.items() if utf16_length(v) > VALUE_MAX)
        if too_long:
            return "VALIDATION_ERROR", (
                f"Property values were not valid: {', '.join(too_long)} longer than {VALUE_MAX} characters"
            )
        if not valid_email(properties.get("email")):
            email = properties["email"]
            return "INVALID_EMAIL", f"Property values were not valid: email {email!r} is invalid (INVALID_EMAIL)"
        return None

    def _live(self, record_id: str) -> CrmRecord | None:
        """The contact an id names: a merged-away id names the contact it was merged into, as HubSpot reads it."""
        with self.store.lock:
            return self.store.get(self.merged.get(record_id, record_id))

    def _merge(self, payload: Any) -> Response:
        """``POST /crm/v3/objects/contacts/merge`` {primaryObjectId, objectIdToMerge}: the primary contact keeps its
        id and its values, takes the other's where it has none, and its email as an additional one; the other is
        gone, its id (and those merged into it) read as the primary's, listed in ``hs_merged_object_ids``."""
        primary_id, other_id = str(payload["primaryObjectId"]), str(payload["objectIdToMerge"])
        with self.store.lock:
            primary, other = self._live(primary_id), self._live(other_id)
            if primary is None or other is None or primary is other:
                return Response.json(400, _error("VALIDATION_ERROR", f"cannot merge {other_id} into {primary_id}"))
            kept = {k for k, v in primary.fields.items() if v not in (None, "")} | set(UNIQUE) | READ_ONLY
            taken = {k: v for k, v in other.fields.items() if k not in kept and v not in (None, "")}
            emails = [*_listed(primary, "hs_additional_emails"), *_listed(other, "hs_additional_emails")]
            merged = [*_listed(primary, "hs_merged_object_ids"), other.id, *_listed(other, "hs_merged_object_ids")]
            self.store.delete(other.id)
            self.merged.update(dict.fromkeys([other.id, *_listed(other, "hs_merged_object_ids")], primary.id))
            extra = {"hs_additional_emails": ";".join([*emails, str(other.fields.get("email") or "")]).strip(";"),
                     "hs_merged_object_ids": ";".join(merged)}  # fmt: skip
            record = self.store.update(primary, {**taken, **extra})
            return self._ok(_object(record, list(PROPERTIES)))

    def _read(self, payload: Any) -> Response:
        """``POST /crm/v3/objects/contacts/batch/read`` by id: a merged-away id answers with the contact it was
        merged into; an unknown or deleted one is in ``errors`` (207)."""
        properties = list(payload.get("properties") or ["email", "firstname", "lastname"])
        results: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for item in payload["inputs"]:
            record = self._live(str(item["id"]))
            if record is None:
                missing.append(str(item["id"]))
            else:
                results[record.id] = _object(record, properties)
        body: dict[str, Any] = {"status": "COMPLETE", "results": list(results.values())}
        body.update(startedAt=iso_ms(self.store.now_ms()), completedAt=iso_ms(self.store.now_ms()))
        if missing:
            error = _error("OBJECT_NOT_FOUND", "Could not get some CONTACT objects", context={"ids": missing})
            body.update(numErrors=1, errors=[error])
            return self._ok(body, 207)
        return self._ok(body)

    def _update(self, payload: Any) -> Response:
        """``POST /crm/v3/objects/contacts/batch/update`` by id (a merged-away id updates the contact it was merged
        into); an unknown id or a refused property fails the input, in ``errors`` (207)."""
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in payload["inputs"]:
            properties = {k: (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            with self.store.lock:
                record = self._live(str(item["id"]))
                problem = self._refused(properties) if record is not None else ("OBJECT_NOT_FOUND", "Object not found.")
                owner = self.store.find("email", properties.get("email"))
                if problem is None and owner is not None and owner is not record:
                    problem = "CONFLICT", f"Contact already exists. Existing ID: {owner.id}"
                if problem or record is None:
                    errors.append(_error(*(problem or ("OBJECT_NOT_FOUND", "")), context={"ids": [str(item["id"])]}))
                    continue
                results.append(_object(self.store.update(record, properties), list(properties)))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso_ms(self.store.now_ms())}
        body["completedAt"] = iso_ms(self.store.now_ms())
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return self._ok(body, 207)
        return self._ok(body)

    def _gdpr_delete(self, payload: Any) -> Response:
        """Permanently delete a contact (``objectId``, by record id or by ``idProperty`` such as email): 204, or
        404 when no such contact exists (already deleted included)."""
        key, id_property = str(payload["objectId"]), payload.get("idProperty")
        with self.store.lock:
            record = self.store.find(id_property, key) if id_property else self.store.get(key)
            if record is None or not self.store.delete(record.id):
                return Response.json(404, _error("OBJECT_NOT_FOUND", f"Could not find contact {key}"))
        return Response(204, b"", self._limit_headers())

    def _archive(self, record_id: str) -> Response:
        """``DELETE /crm/v3/objects/contacts/{id}``: 204, also for an id already gone (HubSpot's archive)."""
        self.store.delete(record_id)
        return Response(204, b"", self._limit_headers())

    def _search(self, payload: Any) -> Response:
        limit = min(int(payload.get("limit") or 10), SEARCH_PAGE_MAX)
        offset = int(payload.get("after") or 0)
        since: int | None = None
        for group in payload.get("filterGroups") or []:
            for item in group.get("filters") or []:
                if item.get("propertyName") == "lastmodifieddate" and item.get("operator") in ("GT", "GTE"):
                    since = int(item["value"]) - (1 if item["operator"] == "GTE" else 0)
        found = list(self.store.changed_since(since))
        page = found[offset : offset + limit]
        properties = list(payload.get("properties") or ["email", "firstname", "lastname"])
        body: dict[str, Any] = {"total": len(found), "results": [_object(r, properties) for r in page]}
        if offset + limit < len(found):
            body["paging"] = {"next": {"after": str(offset + limit), "link": None}}
        return self._ok(body)


def _object(record: CrmRecord, properties: list[str]) -> dict[str, Any]:
    shown = {name: record.fields.get(name) for name in properties if name not in COMPUTED}
    shown.update(
        hs_object_id=record.id, createdate=iso_ms(record.created_ms), lastmodifieddate=iso_ms(record.updated_ms)
    )
    return {
        "id": record.id,
        "properties": shown,
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    }


def _listed(record: CrmRecord, name: str) -> list[str]:
    """A multi-value property's values (HubSpot separates them with semicolons)."""
    return [value for value in str(record.fields.get(name) or "").split(";") if value]


def _property(name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": kind,
        "fieldType": {"string": "text", "enumeration": "select", "datetime": "date", "number": "number"}[kind],
        "description": "",
        "groupName": "contactinformation",
        "options": [],
        "hasUniqueValue": name in UNIQUE,
        "modificationMetadata": {"archivable": True, "readOnlyValue": name in READ_ONLY, "readOnlyDefinition": True},
    }


def _error(category: str, message: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "context": context or {},
        "links": {},
        "errors": [],
    }
