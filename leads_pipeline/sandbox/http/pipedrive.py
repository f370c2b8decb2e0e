"""Pipedrive emulator: persons search, create, update, delete and list (API v2), and the person fields (API v1).

Endpoints: ``GET /api/v1/personFields`` (custom fields carry 40-character hash keys), ``GET
/api/v2/persons/search?term=&fields=email&exact_match=true``, ``POST /api/v2/persons``, ``PATCH
/api/v2/persons/{id}``, ``DELETE /api/v2/persons/{id}`` (``{success, data: {id}}``; 404 when not found),
``GET /api/v2/persons?updated_since=&sort_by=update_time&sort_direction=asc&cursor=`` (or ``?ids=1,2``, up to 100).
Auth: the ``x-api-token`` header (or ``api_token`` query parameter). Pipedrive has no upsert and no duplicate
check: a client must search before it creates. Errors: ``name`` missing (400), an email that is not one (400).
Every answer carries ``x-ratelimit-limit``/``-remaining``/``-reset``. Pipedrive's search index lags behind its
writes (a person is found seconds after its create); ``search_lag_s`` emulates that lag, none by default.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response
from leads_pipeline.sandbox.http.crmstore import CrmRecord, CrmStore, valid_email
from leads_pipeline.sandbox.world import World

CUSTOM_FIELDS = ("Company", "LinkedIn", "Lifecycle stage")
STANDARD = ("name", "first_name", "last_name", "emails", "phones", "job_title", "org_id", "owner_id")
PAGE_MAX = 500
PRIMARY = "primary_email"
"""The store's index of each person's primary email, so that an exact email search is a lookup."""


def field_key(name: str) -> str:
    """A custom field's 40-character key, stable per name as an account's keys are."""
    return hashlib.sha1(f"person:{name}".encode()).hexdigest()


class PipedriveEmulator:
    name = "pipedrive"

    def __init__(self, world: World, settings: EmulatorSettings) -> None:
        self._settings = settings
        self.store = CrmStore(key_fields=(PRIMARY,), new_id=lambda n: str(n))
        self.custom = {field_key(name): name for name in CUSTOM_FIELDS}
        self.search_lag_s = 0.0
        """A person created less than this long ago is not found by a search yet (tests set it)."""

    def add_person(self, name: str, email: str, **fields: Any) -> CrmRecord:
        """A person created in Pipedrive by a user (tests and benchmarks)."""
        emails = [{"value": email, "primary": True, "label": "work"}]
        return self.store.create({"name": name, "emails": emails, PRIMARY: email, **fields})

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-token") or request.query.get("api_token")

    def error(self, status: int, retry_after_s: int | None) -> Response:
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        return self._fail(status, {429: "Rate limit exceeded"}.get(status, "Service error"), headers)

    def handle(self, request: Request) -> Response:
        if not self._settings.for_provider(self.name).accepts(self.api_key(request)):
            return self._fail(401, "You need to be authorized to make this request.")
        path = request.path.rstrip("/")
        try:
            if request.method == "GET" and path == "/api/v1/personFields":
                return self._ok(
                    self._fields(), {"pagination": {"start": 0, "limit": 500, "more_items_in_collection": False}}
                )
            if request.method == "GET" and path == "/api/v2/persons/search":
                return self._search(request.query)
            if request.method == "POST" and path == "/api/v2/persons":
                return self._write(None, request.json())
            if request.method == "PATCH" and path.startswith("/api/v2/persons/"):
                record = self.store.get(path.rsplit("/", 1)[1])
                return self._write(record, request.json()) if record else self._fail(404, "Person not found")
            if request.method == "DELETE" and path.startswith("/api/v2/persons/"):
                person_id = path.rsplit("/", 1)[1]
                if not self.store.delete(person_id):
                    return self._fail(404, "Person not found")
                return self._ok({"id": int(person_id)})
            if request.method == "GET" and path == "/api/v2/persons":
                return self._list(request.query)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._fail(400, f"Invalid request: {exc}")
        return self._fail(404, f"Unknown endpoint {request.method} {request.path}")

    def _headers(self) -> list[tuple[str, str]]:
        limit = self._settings.for_provider(self.name).rate_limit
        if limit is None:
            return []
        return [("x-ratelimit-limit", str(limit.requests)), ("x-ratelimit-reset", str(int(limit.per_seconds)))]

    def _ok(self, data: Any, additional: dict[str, Any] | None = None, status: int = 200) -> Response:
        body: dict[str, Any] = {"success": True, "data": data}
        if additional is not None:
            body["additional_data"] = additional
        return Response.json(status, body, self._headers())

    def _fail(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
        body = {
            "success": False,
            "error": message,
            "error_info": "Please check developers.pipedrive.com",
            "code": status,
        }
        return Response.json(status, body, [*(headers or []), *self._headers()])

    def _fields(self) -> list[dict[str, Any]]:
        standard = [
            {"id": i + 1, "key": key, "name": key.replace("_", " ").title(), "field_type": "varchar",
             "mandatory_flag": key == "name", "edit_flag": False}
            for i, key in enumerate(STANDARD)
        ]  # fmt: skip
        custom = [
            {
                "id": 100 + i,
                "key": key,
                "name": name,
                "field_type": "varchar",
                "mandatory_flag": False,
                "edit_flag": True,
            }
            for i, (key, name) in enumerate(self.custom.items())
        ]
        return standard + custom

    def _search(self, query: Mapping[str, str]) -> Response:
        term = query.get("term", "").casefold()
        if len(term) < 2:
            return self._fail(400, "term must be at least 2 characters")
        exact = query.get("exact_match") == "true"
        fields = query.get("fields", "email").split(",")
        if exact and fields == ["email"]:
            found = self.store.find(PRIMARY, term)
            found = found if found is not None and self._indexed(found) else None
            return self._ok({"items": [{"result_score": 1.0, "item": _search_item(found)}] if found else []})
        items = []
        for record in self.store.changed_since(None):
            values = [e["value"] for e in record.fields.get("emails") or []] if "email" in fields else []
            if "name" in fields:
                values.append(record.fields.get("name") or "")
            hit = any((v.casefold() == term) if exact else (term in v.casefold()) for v in values)
            if hit and self._indexed(record):
                items.append({"result_score": 1.0, "item": _search_item(record)})
        return self._ok({"items": items}, {"next_cursor": None})

    def _indexed(self, record: CrmRecord) -> bool:
        """Whether the search index has the person yet (see ``search_lag_s``)."""
        return record.created_ms <= time.time() * 1000 - self.search_lag_s * 1000

    def _write(self, record: CrmRecord | None, payload: Any) -> Response:
        fields = {k: v for k, v in payload.items() if k in STANDARD}
        custom = payload.get("custom_fields") or {}
        unknown = sorted(set(custom) - set(self.custom))
        if unknown:
            return self._fail(400, f"Unknown custom field key(s): {', '.join(unknown)}")
        for email in fields.get("emails") or []:
            if not valid_email(email.get("value")):
                return self._fail(400, f"Invalid email address: {email.get('value')}")
        name = fields.get("name") or " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
        if record is None and not name:
            return self._fail(400, "Field 'name' is required")
        if name:
            fields["name"] = name
        if "emails" in fields:
            primary = next((e for e in fields["emails"] if e.get("primary")), None)
            fields[PRIMARY] = primary.get("value") if primary else None
        fields["custom_fields"] = {**((record.fields.get("custom_fields") if record else None) or {}), **custom}
        if record is None:
            return self._ok(_person(self.store.create(fields)), status=201)
        return self._ok(_person(self.store.update(record, fields)))

    def _list(self, query: Mapping[str, str]) -> Response:
        since = query.get("updated_since")
        since_ms = int(datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() * 1000) if since else None
        limit = min(int(query.get("limit") or 100), PAGE_MAX)
        offset = int(query.get("cursor") or 0)
        # updated_since is inclusive at one-second precision in Pipedrive: clients drop what they already saw
        ids = set(query["ids"].split(",")) if query.get("ids") else None
        found = [
            r for r in self.store.changed_since(None) if since_ms is None or r.updated_ms >= since_ms // 1000 * 1000
        ]
        if ids is not None:  # ``ids``: only those persons (up to 100)
            if len(ids) > 100:
                return self._fail(400, "ids: at most 100")
            found = [r for r in found if r.id in ids]
        page = found[offset : offset + limit]
        following = str(offset + limit) if offset + limit < len(found) else None
        return self._ok([_person(r) for r in page], {"next_cursor": following})


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(record: CrmRecord) -> dict[str, Any]:
    fields = record.fields
    return {
        "id": int(record.id),
        "name": fields.get("name"),
        "first_name": fields.get("first_name"),
        "last_name": fields.get("last_name"),
        "emails": fields.get("emails") or [],
        "phones": fields.get("phones") or [],
        "job_title": fields.get("job_title"),
        "org_id": fields.get("org_id"),
        "owner_id": fields.get("owner_id") or 1,
        "add_time": _time(record.created_ms),
        "update_time": _time(record.updated_ms),
        "custom_fields": fields.get("custom_fields") or {},
    }


def _search_item(record: CrmRecord) -> dict[str, Any]:
    person = _person(record)
    emails = [e["value"] for e in person["emails"]]
    phones = [p["value"] for p in person["phones"]]
    return {"id": person["id"], "type": "person", "name": person["name"], "emails": emails, "phones": phones}
