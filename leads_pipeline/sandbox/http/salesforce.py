"""Salesforce REST emulator: sObject describe, composite upsert by external id, Bulk API 2.0 ingest, SOQL query.

Paths as simple-salesforce sends them (PROVIDERS.md), under ``/services/data/vXX.X/``:
``GET sobjects/{Lead|Contact}/describe``, ``DELETE sobjects/{object}/{id}`` (204; 404 ENTITY_IS_DELETED or
NOT_FOUND), ``PATCH composite/sobjects/{object}/{externalIdField}`` (at most 200
records, one result per record in order), ``POST jobs/ingest`` -> ``PUT jobs/ingest/{id}/batches`` (CSV) ->
``PATCH jobs/ingest/{id}`` {state: UploadComplete} -> ``GET jobs/ingest/{id}`` -> ``.../successfulResults`` and
``.../failedResults`` (CSV with ``sf__Id``, ``sf__Created`` / ``sf__Error``), and ``GET query/?q=`` for
``SELECT ... FROM {object} [WHERE SystemModstamp > T] ORDER BY SystemModstamp`` with ``nextRecordsUrl`` pages,
``SELECT ... FROM {object} WHERE Id IN (...)`` (``queryAll/`` shows deleted records: ``IsDeleted``, and
``MasterRecordId`` for those a merge deleted), and ``PATCH composite/sobjects`` (update by id). A salesperson's
merge (no REST resource; tests call :meth:`SalesforceEmulator.merge`) deletes the losing records as Salesforce does.
simple-salesforce always speaks https to the instance: :mod:`leads_pipeline.sandbox.http.tls` serves this
emulator at the root of a TLS port. Per-record errors: ``INVALID_EMAIL_ADDRESS``, ``REQUIRED_FIELD_MISSING``
(Lead: LastName, Company; Contact: LastName), ``STRING_TOO_LONG`` (a text value longer than its field's length,
counted in UTF-16 code units as Salesforce counts it) and ``DUPLICATES_DETECTED`` (the standard duplicate rule:
another record with the same Email). Every answer carries ``Sforce-Limit-Info: api-usage=N/LIMIT``; once the
org's allocation (``usage``, whose limit tests lower) is used up, every call answers 403 ``REQUEST_LIMIT_EXCEEDED``
``TotalRequests Limit exceeded.``, as Salesforce does until its rolling 24 hours free some.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import threading
from datetime import datetime
from typing import Any

from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response, SeededIds
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

EXTERNAL_ID = "Leads_Id__c"
FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "Company", "Website", "City",
             "State", "PostalCode", "Country", "Industry", "NumberOfEmployees", "AnnualRevenue", "LeadSource",
             "Status", "Rating", "Description", EXTERNAL_ID),
    "Contact": ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "MailingCity", "MailingState",
                "MailingPostalCode", "MailingCountry", "LeadSource", "Description", EXTERNAL_ID),
}  # fmt: skip
LENGTHS: dict[str, int] = {
    "FirstName": 40, "LastName": 80, "Email": 80, "Phone": 40, "MobilePhone": 40, "Title": 128, "Company": 255,
    "Website": 255, "City": 40, "State": 80, "PostalCode": 20, "Country": 80, "Industry": 255, "LeadSource": 255,
    "Status": 255, "Rating": 255, "Description": 32000, "MailingCity": 40, "MailingState": 80,
    "MailingPostalCode": 20, "MailingCountry": 80, EXTERNAL_ID: 255,
}  # fmt: skip
"""The text fields' lengths as the standard objects' describe gives them, in UTF-16 code units (Salesforce counts
a character outside the Basic Multilingual Plane, an emoji, as two); a longer value fails STRING_TOO_LONG."""
REQUIRED = {"Lead": ("LastName", "Company"), "Contact": ("LastName",)}
SYSTEM = ("Id", "CreatedDate", "SystemModstamp", "LastModifiedDate")
COMPOSITE_MAX = 200
BULK_NULL = "#N/A"
"""What clears a field in a Bulk API 2.0 CSV; an empty value leaves the field as it is."""
QUERY_PAGE = 2000
DAILY_API_LIMIT = 100_000
_PREFIX = {"Lead": "00Q", "Contact": "003"}
_DATA = re.compile(r"^/services/data/v\d+\.\d+/(?P<rest>.*)$")
_SOQL = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+SystemModstamp\s*>\s*(?P<since>\S+))?(?:\s+ORDER\s+BY\s+SystemModstamp(?:\s+ASC)?)?\s*$",
    re.IGNORECASE,
)


_BY_ID = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)\s+WHERE\s+Id\s+IN\s*\((?P<ids>[^)]*)\)\s*$", re.IGNORECASE
)
_STATE = ("IsDeleted", "MasterRecordId")
"""What ``queryAll`` tells of a deleted record: that it is, and the record a merge deleted it into."""


class SalesforceEmulator:
    name = "salesforce"

    def __init__(self, world: World, settings: EmulatorSettings, ids: SeededIds) -> None:
        self._settings = settings
        self._ids = ids
        self.stores = {
            obj: CrmStore(key_fields=(EXTERNAL_ID, "Email"), new_id=functools.partial(_record_id, _PREFIX[obj]))
            for obj in FIELDS
        }
        self._jobs: dict[str, dict[str, Any]] = {}
        self._queries: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._lock = threading.Lock()
        self.usage = DailyUsage(DAILY_API_LIMIT)
        self.merged: dict[str, str] = {}
        """Id of a record a merge deleted -> the master it was merged into (its ``MasterRecordId``)."""

    def api_key(self, request: Request) -> str | None:
        return bearer(request.headers)

    def error(self, status: int, retry_after_s: int | None) -> Response:
        codes = {429: "REQUEST_LIMIT_EXCEEDED", 500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE"}
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        body = [{"message": "The server could not answer", "errorCode": codes.get(status, "UNKNOWN_EXCEPTION")}]
        return Response.json(status, body, [*headers, self._limit_header()])

    def handle(self, request: Request) -> Response:
        if not self._settings.for_provider(self.name).accepts(bearer(request.headers)):
            return self._json(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        if not self.usage.spend():
            body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            return self._json(403, body)
        match = _DATA.match(request.path)
        if match is None:
            return self._not_found(request)
        parts = match["rest"].rstrip("/").split("/")
        method = request.method
        try:
            if len(parts) == 3 and parts[0] == "sobjects" and parts[2] == "describe" and method == "GET":
                return self._describe(parts[1])
            if len(parts) == 3 and parts[0] == "sobjects" and method == "DELETE":
                return self._delete(parts[1], parts[2])
            if len(parts) == 4 and parts[:2] == ["composite", "sobjects"] and method == "PATCH":
                return self._composite(parts[2], parts[3], request.json())
            if parts == ["composite", "sobjects"] and method == "PATCH":
                return self._composite_update(request.json())
            if parts[:2] == ["jobs", "ingest"]:
                return self._ingest(method, parts[2:], request)
            if parts[0] in ("query", "queryAll"):
                locator = parts[1] if len(parts) > 1 else None
                return self._query(request.query.get("q"), locator, deleted=parts[0] == "queryAll")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._json(400, [{"message": f"JSON_PARSER_ERROR: {exc}", "errorCode": "JSON_PARSER_ERROR"}])
        return self._not_found(request)

    def _json(self, status: int, payload: Any) -> Response:
        return Response.json(status, payload, [self._limit_header()])

    def _limit_header(self) -> tuple[str, str]:
        return ("Sforce-Limit-Info", f"api-usage={self.usage.used}/{self.usage.limit}")

    def _not_found(self, request: Request) -> Response:
        body = [{"message": f"The requested resource does not exist: {request.path}", "errorCode": "NOT_FOUND"}]
        return self._json(404, body)

    def _object(self, name: str) -> CrmStore:
        if name not in self.stores:
            raise KeyError(f"sObject type '{name}' is not supported")
        return self.stores[name]

    def _describe(self, obj: str) -> Response:
        if obj not in FIELDS:
            return self._json(404, [{"message": f"sObject type '{obj}' is not supported.", "errorCode": "NOT_FOUND"}])
        fields = [
            {"name": name, "label": name, "type": "id" if name == "Id" else "string", "nillable": name not in
             REQUIRED[obj], "createable": name not in SYSTEM, "updateable": name not in SYSTEM,
             "externalId": name == EXTERNAL_ID, "unique": name == EXTERNAL_ID, "length": LENGTHS.get(name, 0)}
            for name in (*SYSTEM, *FIELDS[obj])
        ]  # fmt: skip
        return self._json(200, {"name": obj, "label": obj, "fields": fields})

    def _delete(self, obj: str, record_id: str) -> Response:
        """``DELETE sobjects/{object}/{id}``: 204; 404 ENTITY_IS_DELETED for a deleted record, NOT_FOUND else."""
        store = self._object(obj)
        if store.delete(record_id):
            return Response(204, b"", [self._limit_header()])
        if record_id in store.deleted:
            return self._json(404, [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}])
        message = f"Provided external ID field does not exist or is not accessible: {record_id}"
        return self._json(404, [{"message": message, "errorCode": "NOT_FOUND"}])

    # upsert ---------------------------------------------------------------------------------------------------

    def _upsert(self, obj: str, external_field: str, values: dict[str, Any]) -> dict[str, Any]:
        """One record's upsert as Salesforce reports it: {id, success, errors, created}."""
        store = self._object(obj)
        values = {k: v for k, v in values.items() if k != "attributes"}
        unknown = sorted(set(values) - set(FIELDS[obj]))
        if unknown:
            return _failure("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj}", unknown[:1])
        key = values.get(external_field)
        if external_field != EXTERNAL_ID or key in (None, ""):
            return _failure("MISSING_ARGUMENT", f"{external_field} not specified or not an External ID", [])
        if not valid_email(values.get("Email")):
            return _failure("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {values['Email']}", ["Email"])
        if too_long := _too_long(values):
            return too_long
        with store.lock:
            record = store.find(EXTERNAL_ID, key)
            merged = {**(record.fields if record else {}), **values}
            missing = [f for f in REQUIRED[obj] if merged.get(f) in (None, "")]
            if missing:
                return _failure(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
            twin = store.find("Email", values.get("Email"))
            if twin is not None and twin is not record:
                message = f"Use one of these records? (duplicate rule: {obj} with the same email, {twin.id})"
                return _failure("DUPLICATES_DETECTED", message, [])
            clean = {k: None if v == "" else v for k, v in values.items()}
            if record is None:
                return {"id": store.create(clean).id, "success": True, "errors": [], "created": True}
            return {"id": store.update(record, clean).id, "success": True, "errors": [], "created": False}

    def merge(self, obj: str, master_id: str, *victim_ids: str) -> CrmRecord:
        """A salesperson's merge (Salesforce's merge screen, or the SOAP/Apex ``merge``, which the REST API has no
        resource for): the master keeps its id and its values, takes a victim's where it has none, and the victims
        are deleted, ``queryAll`` showing them with ``IsDeleted = true`` and ``MasterRecordId`` the master's id."""
        store = self._object(obj)
        with store.lock:
            master = store.records[master_id]
            for victim_id in victim_ids:
                victim = store.records[victim_id]
                store.delete(victim_id)
                self.merged[victim_id] = master_id
                taken = {k: v for k, v in victim.fields.items()
                         if k not in (EXTERNAL_ID, "Email") and master.fields.get(k) in (None, "")}  # fmt: skip
                store.update(master, taken)
            return master

    def _composite_update(self, payload: Any) -> Response:
        """``PATCH composite/sobjects``: update records by their ``id`` (at most 200), one result per record in
        order; a deleted record fails ``ENTITY_IS_DELETED``."""
        records = payload["records"]
        if not isinstance(records, list) or len(records) > COMPOSITE_MAX:
            return self._json(400, [{"message": f"records: at most {COMPOSITE_MAX}", "errorCode": "INVALID_BATCH"}])
        return self._json(200, [self._update(dict(r)) for r in records])

    def _update(self, values: dict[str, Any]) -> dict[str, Any]:
        obj = str(values.pop("attributes")["type"])
        store = self._object(obj)
        record_id = str(values.pop("id", None) or values.pop("Id", ""))
        unknown = sorted(set(values) - set(FIELDS[obj]))
        if unknown:
            return _failure("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj}", unknown[:1])
        if not valid_email(values.get("Email")):
            return _failure("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {values['Email']}", ["Email"])
        if too_long := _too_long(values):
            return too_long
        with store.lock:
            record = store.get(record_id)
            if record is None:
                code = "ENTITY_IS_DELETED" if record_id in store.deleted else "INVALID_CROSS_REFERENCE_KEY"
                return _failure(code, f"entity is deleted or does not exist: {record_id}", [])
            for key in (EXTERNAL_ID, "Email"):
                twin = store.find(key, values.get(key))
                if twin is not None and twin is not record:
                    code = "DUPLICATE_VALUE" if key == EXTERNAL_ID else "DUPLICATES_DETECTED"
                    message = f"duplicate value found: {key} duplicates value on record with id: {twin.id}"
                    return _failure(code, message, [])
            clean = {k: None if v == "" else v for k, v in values.items()}
            return {"id": store.update(record, clean).id, "success": True, "errors": []}

    def _composite(self, obj: str, external_field: str, payload: Any) -> Response:
        records = payload["records"]
        if not isinstance(records, list) or len(records) > COMPOSITE_MAX:
            return self._json(400, [{"message": f"records: at most {COMPOSITE_MAX}", "errorCode": "INVALID_BATCH"}])
        return self._json(200, [self._upsert(obj, external_field, dict(r)) for r in records])

    # bulk 2.0 -------------------------------------------------------------------------------------------------

    def _ingest(self, method: str, rest: list[str], request: Request) -> Response:
        if not rest and method == "POST":
            spec = request.json()
            job = {
                "id": "750" + self._ids.new(15),
                "operation": spec["operation"],
                "object": spec["object"],
                "externalIdFieldName": spec.get("externalIdFieldName"),
                "state": "Open",
                "contentType": "CSV",
                "apiVersion": 59.0,
                "numberRecordsProcessed": 0,
                "numberRecordsFailed": 0,
                "createdDate": datetime.now().astimezone().isoformat(),
                "data": "",
                "results": [],
            }
            self._object(job["object"])
            with self._lock:
                self._jobs[job["id"]] = job
            return self._json(200, _public(job))
        found = self._jobs.get(rest[0]) if rest else None
        if found is None:
            return self._json(404, [{"message": "Job not found", "errorCode": "NOT_FOUND"}])
        job, tail = found, rest[1:]
        if tail == ["batches"] and method == "PUT":
            if job["state"] != "Open":
                return self._json(400, [{"message": "Job is not open", "errorCode": "INVALIDJOBSTATE"}])
            job["data"] += request.body.decode("utf-8")
            return Response(201, b"", [self._limit_header()])
        if not tail and method == "PATCH":
            state = request.json()["state"]
            if state == "UploadComplete" and job["state"] == "Open":
                self._run_job(job)
            elif state == "Aborted":
                job["state"] = "Aborted"
            return self._json(200, _public(job))
        if not tail and method == "GET":
            return self._json(200, _public(job))
        if tail in (["successfulResults"], ["failedResults"]) and method == "GET":
            return self._results(job, tail[0] == "successfulResults")
        return self._json(404, [{"message": "Unknown ingest resource", "errorCode": "NOT_FOUND"}])

    def _run_job(self, job: dict[str, Any]) -> None:
        rows = list(csv.DictReader(io.StringIO(job["data"])))
        for row in rows:
            # as Salesforce reads an ingest CSV: an empty value leaves the field as it is, #N/A clears it
            values = {k: (None if v == BULK_NULL else v) for k, v in row.items() if v != ""}
            job["results"].append((row, self._upsert(job["object"], job["externalIdFieldName"], values)))
        job["numberRecordsProcessed"] = len(rows)
        job["numberRecordsFailed"] = sum(1 for _, r in job["results"] if not r["success"])
        job["state"] = "JobComplete"

    def _results(self, job: dict[str, Any], successful: bool) -> Response:
        out = io.StringIO()
        chosen = [(row, r) for row, r in job["results"] if r["success"] == successful]
        columns = list(chosen[0][0]) if chosen else []
        head = ["sf__Id", "sf__Created"] if successful else ["sf__Id", "sf__Error"]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*head, *columns])
        for row, result in chosen:
            extra = "true" if result["created"] else "false"
            if not successful:
                error = result["errors"][0]
                extra = f"{error['statusCode']}:{error['message']}"
            writer.writerow([result.get("id") or "", extra, *[row[c] for c in columns]])
        return Response(200, out.getvalue().encode("utf-8"), [("Content-Type", "text/csv"), self._limit_header()])

    # query ----------------------------------------------------------------------------------------------------

    def _query(self, soql: str | None, locator: str | None, *, deleted: bool = False) -> Response:
        if locator is not None:
            with self._lock:
                found = self._queries.get(locator)
            if found is None:
                return self._json(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
            return self._page(*found)
        by_id = _BY_ID.match((soql or "").strip())
        if by_id is not None:
            return self._query_ids(by_id, deleted)
        match = _SOQL.match((soql or "").strip())
        if match is None:
            return self._json(400, [{"message": f"unsupported SOQL: {soql}", "errorCode": "MALFORMED_QUERY"}])
        obj = match["object"]
        fields = [f.strip() for f in match["fields"].split(",")]
        unknown = [f for f in fields if f not in (*SYSTEM, *FIELDS.get(obj, ()))]
        if obj not in FIELDS or unknown:
            return self._json(400, [{"message": f"No such column '{unknown}' on {obj}", "errorCode": "INVALID_FIELD"}])
        since = _parse_soql_time(match["since"]) if match["since"] else None
        rows = [_row(obj, r, fields) for r in self.stores[obj].changed_since(since)]
        return self._page(rows, 0)

    def _query_ids(self, match: re.Match[str], deleted: bool) -> Response:
        """``SELECT ... FROM {object} WHERE Id IN (...)``; through ``queryAll`` the deleted records too, with
        ``IsDeleted = true`` and, for those a merge deleted, ``MasterRecordId`` (their other values are not kept)."""
        obj = match["object"]
        fields = [f.strip() for f in match["fields"].split(",")]
        unknown = [f for f in fields if f not in (*SYSTEM, *_STATE, *FIELDS.get(obj, ()))]
        if obj not in FIELDS or unknown:
            return self._json(400, [{"message": f"No such column '{unknown}' on {obj}", "errorCode": "INVALID_FIELD"}])
        store = self.stores[obj]
        rows = []
        for record_id in re.findall(r"'([^']*)'", match["ids"]):
            record = store.get(record_id)
            if record is not None:
                live = {"IsDeleted": False, "MasterRecordId": None}
                rows.append({**_row(obj, record, [f for f in fields if f not in _STATE]),
                             **{f: live[f] for f in fields if f in _STATE}})  # fmt: skip
            elif deleted and record_id in store.deleted:
                gone = {"Id": record_id, "IsDeleted": True, "MasterRecordId": self.merged.get(record_id)}
                rows.append({"attributes": {"type": obj, "url": f"/services/data/v59.0/sobjects/{obj}/{record_id}"},
                             **{f: gone.get(f) for f in fields}})  # fmt: skip
        return self._page(rows, 0)

    def _page(self, rows: list[dict[str, Any]], offset: int) -> Response:
        page = rows[offset : offset + QUERY_PAGE]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + QUERY_PAGE >= len(rows), "records": page}
        if not body["done"]:
            locator = f"01g{self._ids.new(15)}-{offset + QUERY_PAGE}"
            with self._lock:
                self._queries[locator] = (rows, offset + QUERY_PAGE)
            body["nextRecordsUrl"] = f"/services/data/v59.0/query/{locator}"
        return self._json(200, body)


def _record_id(prefix: str, number: int) -> str:
    """An 18-character id with the object's key prefix, as Salesforce ids look."""
    return f"{prefix}{number:015d}"


def _row(obj: str, record: CrmRecord, fields: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/v59.0/sobjects/{obj}/{record.id}"}}
    for name in fields:
        if name == "Id":
            row[name] = record.id
        elif name == "CreatedDate":
            row[name] = _soql_time(record.created_ms)
        elif name in ("SystemModstamp", "LastModifiedDate"):
            row[name] = _soql_time(record.updated_ms)
        else:
            row[name] = record.fields.get(name)
    return row


def _soql_time(ms: int) -> str:
    """Salesforce's datetime format: 2024-05-01T10:00:00.000+0000."""
    return iso_ms(ms).replace("Z", "+0000")


def _parse_soql_time(text: str) -> int:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(parsed.timestamp() * 1000)


def _too_long(values: dict[str, Any]) -> dict[str, Any] | None:
    """The STRING_TOO_LONG failure of the first value longer than its field, as Salesforce words it; else None."""
    for name, value in values.items():
        limit = LENGTHS.get(name)
        if limit is not None and utf16_length(value) > limit:
            return _failure("STRING_TOO_LONG", f"{name}: data value too large: {value} (max length={limit})", [name])
    return None


def _failure(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in ("data", "results")}
