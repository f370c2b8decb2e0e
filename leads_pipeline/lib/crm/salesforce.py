"""Salesforce through simple-salesforce: Lead or Contact upserts by an external id field, SOQL to pull.

Small pushes go through the composite sObject collections upsert (200 records a request, one result per
record); pushes at or above the connection's ``bulk_threshold`` go through Bulk API 2.0 (one ingest job per
10,000 records, results read back as CSV). Both upsert by the external id, so resending a batch after a crash
updates instead of duplicating. The library does not retry; the sync engine does, paced by the token bucket.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import requests
from pydantic import Field
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

from leads_pipeline.lib.clients.http import parse_retry_after, redact
from leads_pipeline.lib.crm.base import (
    AllocationUsedUp,
    Category,
    Connector,
    CrmName,
    OutgoingRecord,
    PushResult,
    RecordNotFound,
    RemoteField,
    RemoteRecord,
    RetryableError,
)
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.crm.resource import CrmResource, parse_time
from leads_pipeline.lib.errors import ConfigurationError, PermanentError
from leads_pipeline.lib.ratelimit import Pacer

API_VERSION = "59.0"
COMPOSITE_MAX = 200
BULK_JOB_MAX = 10_000
BULK_REQUESTS = 6  # create, upload, close, poll, two result downloads: what one ingest job costs in API calls
BULK_NULL = "#N/A"
"""The Bulk API 2.0 CSV value that clears a field. An empty value leaves the field as it is on update ("Empty
field values are ignored when you update records. To set a field value to null, use a field value of #N/A")."""
MERGE_DEPTH = 5
"""The merges of a chain (A into X, X into Y, ...) a push follows, a queryAll each: a chain longer than that (never
seen) ends on a deleted record, the lead then a not_found failure."""
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_CATEGORIES: dict[str, Category] = {
    "INVALID_EMAIL_ADDRESS": "invalid_email",
    "REQUIRED_FIELD_MISSING": "required_field",
    "DUPLICATES_DETECTED": "duplicate",
    "DUPLICATE_VALUE": "duplicate",
    "ENTITY_IS_DELETED": "not_found",
    "INVALID_FIELD": "invalid_value",
    "STRING_TOO_LONG": "invalid_value",
    "UNABLE_TO_LOCK_ROW": "transient",
}


def _error_code(exc: SalesforceError) -> str | None:
    """The ``errorCode`` of a REST error answer ([{message, errorCode}], as simple-salesforce keeps it)."""
    content = getattr(exc, "content", None)
    first = content[0] if isinstance(content, list) and content else None
    return str(first.get("errorCode")) if isinstance(first, dict) else None


class SalesforceResource(CrmResource):
    """A Salesforce org: its instance URL and an OAuth access token (session id) from the environment."""

    instance_url: str | None = None
    access_token: str | None = Field(default=None, repr=False, description="OAuth access token (secret).")
    ca_bundle: str | None = Field(default=None, description="PEM file of CAs to trust (the sandbox's CA).")
    bulk_wait_s: float = 1.0

    LABEL: ClassVar[str] = "Salesforce"
    ENV_VAR: ClassVar[str] = "SALESFORCE_ACCESS_TOKEN"
    URL_ENV_VAR: ClassVar[str] = "SALESFORCE_INSTANCE_URL"
    CA_ENV_VAR: ClassVar[str] = "SALESFORCE_CA_BUNDLE"
    SECRET_ENV_VARS: ClassVar[tuple[str, ...]] = ("SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN")

    @property
    def is_configured(self) -> bool:
        return bool(self.instance_url and self.access_token)

    def connector(self, connection: Connection, limiter: Pacer) -> Connector:
        self.require_configured()
        session = requests.Session()
        if self.ca_bundle:
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (PROVIDERS.md)
            session.verify = self.ca_bundle
        client = Salesforce(
            instance_url=self.instance_url, session_id=self.access_token, session=session, version=API_VERSION
        )
        connector = SalesforceConnector(
            client, connection, limiter, self.timeout_s, self.bulk_wait_s, self.access_token
        )
        # simple-salesforce's exceptions drop the headers: keep the last Retry-After where _call can read it
        session.hooks["response"].append(connector.remember_retry_after)
        return connector


class SalesforceConnector:
    crm: CrmName = "salesforce"
    max_batch = COMPOSITE_MAX
    bulk_batch = BULK_JOB_MAX
    bulk_requests = BULK_REQUESTS
    survivors_max = COMPOSITE_MAX
    """Ids one queryAll names: its SOQL goes in the URL, which with the headers Salesforce takes up to 16,384 bytes
    (414 URI Too Long past it); 200 ids, URL-encoded, are about 6,000."""

    def __init__(
        self,
        client: Salesforce,
        connection: Connection,
        limiter: Pacer,
        timeout_s: float,
        bulk_wait_s: float,
        token: str | None,
    ) -> None:
        self._sf = client
        self._connection = connection
        self._object = connection.object
        self._external = connection.match_remote
        self._limiter = limiter
        self._timeout = timeout_s
        self._bulk_wait = bulk_wait_s
        self._secret = token
        self._retry_after: str | None = None

    def remember_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._retry_after = response.headers.get("Retry-After")

    def describe_fields(self) -> list[RemoteField]:
        """The object's fields from its describe; an answer without them (a cut body) is transient."""
        answer = self._call(lambda: getattr(self._sf, self._object).describe())
        try:
            return [
                RemoteField(f["name"], f["label"], f["type"], not f["nillable"] and f.get("createable", True))
                for f in answer["fields"]
            ]
        except (TypeError, KeyError) as exc:
            message = f"Salesforce answered a {self._object} describe that does not parse: {exc!r}"
            raise RetryableError(message) from None

    def merges_and_current(
        self, remote_ids: Sequence[str], fields: Sequence[str]
    ) -> tuple[dict[str, str], dict[str, RemoteRecord]]:
        """Record id -> the record it was merged into, for those of ``remote_ids`` a merge deleted since they were
        linked, and the live ones with ``fields`` as Salesforce has them now, in the first query: Salesforce deletes
        the losing records of a merge, and ``queryAll`` (deleted records included) shows them with ``IsDeleted =
        true`` and ``MasterRecordId`` the winner's id. A record deleted otherwise has none: not merged, the upsert
        creates it again. A winner merged later into another record (A into X, then X into Y) is deleted too, its
        ``MasterRecordId`` the next one: the chain is followed to its last record, one queryAll a link of the chain
        for all the ids (``MERGE_DEPTH`` at most), since an update by id of X fails ``ENTITY_IS_DELETED``."""
        ids = [i for i in dict.fromkeys(remote_ids) if _SF_ID.match(i)]
        masters: dict[str, str] = {}
        present: dict[str, RemoteRecord] = {}
        for hop in range(MERGE_DEPTH):
            merged = self._merged_into(ids, fields if hop == 0 else (), present)
            masters.update(merged)
            ids = [i for i in dict.fromkeys(merged.values()) if i not in masters and _SF_ID.match(i)]
            if not ids:
                break
        followed: dict[str, str] = {}
        for rid in dict.fromkeys(remote_ids):
            survivor, hops = masters.get(rid), 1
            while survivor in masters and hops < MERGE_DEPTH:
                survivor, hops = masters[survivor], hops + 1
            if survivor is not None:
                followed[rid] = survivor
        return followed, present

    def _merged_into(
        self, ids: Sequence[str], fields: Sequence[str], present: dict[str, RemoteRecord]
    ) -> dict[str, str]:
        """Record id -> its ``MasterRecordId``, for those of ``ids`` (valid record ids) a merge deleted; the live
        ones with ``fields`` go into ``present`` (none asked: none read)."""
        if not ids:
            return {}
        asked = ["SystemModstamp", *fields] if fields else []
        columns = ", ".join(dict.fromkeys(["Id", "IsDeleted", "MasterRecordId", *asked]))
        soql = f"SELECT {columns} FROM {self._object} WHERE Id IN ({', '.join(repr(i) for i in ids)})"
        answer = self._call(lambda: self._sf.query_all(soql, include_deleted=True))
        rows = answer.get("records") or []
        for row in rows:
            updated = parse_time(row.get("SystemModstamp")) if fields and not row.get("IsDeleted") else None
            if updated is not None:
                present[row["Id"]] = RemoteRecord(row["Id"], updated, {f: row.get(f) for f in fields})
        return {row["Id"]: row["MasterRecordId"] for row in rows
                if row.get("IsDeleted") and row.get("MasterRecordId")}  # fmt: skip

    def _update_survivors(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        """Update by id the records the leads' records were merged into (``OutgoingRecord.survivor``), through the
        composite sObject collections update (``PATCH composite/sobjects``): an upsert by the lead's external id
        would create the merged-away record again. The external id goes with the changes, as in every update: the
        lead's later upserts find the survivor by it."""
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": self._object}, "id": r.survivor, **self._values(r.update_values())}
                        for r in records],
        }  # fmt: skip
        answer = self._call(lambda: self._sf.restful("composite/sobjects", method="PATCH", json=body,
                                                     timeout=self._timeout))  # fmt: skip
        if not isinstance(answer, list) or len(answer) != len(records):
            raise RetryableError(f"Salesforce answered {len(records)} records with {answer!r:.200}")
        return [self._result(record, item) for record, item in zip(records, answer, strict=True)]

    def push(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        following = [record for record in records if record.survivor is not None]
        records = [record for record in records if record.survivor is None]
        merged = self._update_survivors(following) if following else []
        if not records:
            return merged
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": self._object}, **self._values(r.update_values())} for r in records],
        }
        path = f"composite/sobjects/{self._object}/{self._external}"
        answer = self._call(lambda: self._sf.restful(path, method="PATCH", json=body, timeout=self._timeout))
        if not isinstance(answer, list) or len(answer) != len(records):
            raise RetryableError(f"Salesforce answered {len(records)} records with {answer!r:.200}")
        return merged + [self._result(record, item) for record, item in zip(records, answer, strict=True)]

    def push_bulk(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        """One Bulk API 2.0 upsert job; results are matched back to leads by the external id column. The records
        following a merge in Salesforce go by id (``_update_survivors``), 200 a request."""
        following = [record for record in records if record.survivor is not None]
        records = [record for record in records if record.survivor is None]
        merged = [result for start in range(0, len(following), COMPOSITE_MAX)
                  for result in self._update_survivors(following[start : start + COMPOSITE_MAX])]  # fmt: skip
        if not records:
            return merged
        # the library writes one CSV, its columns those of the first row: every row has every record's fields
        columns = list(dict.fromkeys(name for r in records for name in r.values))
        rows = [self._bulk_row(r, columns) for r in records]
        for _ in range(BULK_REQUESTS - 1):
            self._limiter.acquire()
        bulk = getattr(self._sf.bulk2, self._object)
        jobs = self._call(lambda: bulk.upsert(records=rows, external_id_field=self._external, wait=self._bulk_wait))
        by_key = {r.key: r for r in records}
        results: dict[int, PushResult] = {}
        for job in jobs:
            for row in csv.DictReader(io.StringIO(self._call(lambda j=job: bulk.get_successful_records(j["job_id"])))):
                record = by_key.get(row.get(self._external, ""))
                if record is not None:
                    created = row["sf__Created"] == "true"
                    results[record.lead_id] = PushResult(
                        record.lead_id, "created" if created else "updated", row["sf__Id"] or None
                    )
            for row in csv.DictReader(io.StringIO(self._call(lambda j=job: bulk.get_failed_records(j["job_id"])))):
                record = by_key.get(row.get(self._external, ""))
                if record is not None:
                    code, _, message = row["sf__Error"].partition(":")
                    category = _CATEGORIES.get(code, "rejected")
                    results[record.lead_id] = PushResult(record.lead_id, "failed", None, None, category, message)
        for record in records:
            if record.lead_id not in results:
                message = "the Bulk API job reported nothing for this record"
                results[record.lead_id] = PushResult(record.lead_id, "failed", None, None, "transient", message)
        return merged + list(results.values())

    def pull(self, fields: Sequence[str], since: datetime | None) -> Iterator[RemoteRecord]:
        columns = ", ".join(dict.fromkeys(["Id", "SystemModstamp", *fields]))
        where = f" WHERE SystemModstamp > {since.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z" if since else ""
        soql = f"SELECT {columns} FROM {self._object}{where} ORDER BY SystemModstamp ASC"
        page = self._call(lambda: self._sf.query(soql))
        while True:
            for row in page["records"]:
                updated = parse_time(row["SystemModstamp"])
                assert updated is not None
                yield RemoteRecord(row["Id"], updated, {f: row.get(f) for f in fields})
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            following = page["nextRecordsUrl"]
            page = self._call(lambda url=following: self._sf.query_more(url, identifier_is_url=True))

    def delete(self, remote_id: str) -> bool:
        """``DELETE sobjects/{object}/{id}`` (simple-salesforce's ``delete``); its 404 (NOT_FOUND, or
        ENTITY_IS_DELETED for a record already deleted) means there is nothing left to delete."""
        try:
            self._call(lambda: getattr(self._sf, self._object).delete(remote_id))
        except RecordNotFound:
            return False
        return True

    @staticmethod
    def _bulk_row(record: OutgoingRecord, columns: list[str]) -> dict[str, str]:
        """The record's CSV row in an upsert job: what an update sends (``update_values``, as the composite push),
        a field it leaves out empty, which Bulk API 2.0 leaves as it is (a salesperson's edit of a field the lead
        did not change is kept), and a field the lead has no value for :data:`BULK_NULL`, which clears it."""
        sent = record.update_values()
        return {
            name: "" if name not in sent else BULK_NULL if sent[name] in (None, "") else str(sent[name])
            for name in columns
        }

    @staticmethod
    def _values(values: dict[str, Any]) -> dict[str, Any]:
        return {k: "" if v is None else v for k, v in values.items()}

    @staticmethod
    def _result(record: OutgoingRecord, item: dict[str, Any]) -> PushResult:
        if item.get("success"):
            return PushResult(record.lead_id, "created" if item.get("created") else "updated", item.get("id"))
        error = (item.get("errors") or [{}])[0]
        category = _CATEGORIES.get(error.get("statusCode", ""), "rejected")
        message = f"{error.get('statusCode')}: {error.get('message')}"
        return PushResult(record.lead_id, "failed", None, None, category, message)

    def _call(self, action: Any) -> Any:
        self._limiter.acquire()
        try:
            return action()
        except SalesforceExpiredSession as exc:
            detail = redact(str(exc), self._secret)
            raise ConfigurationError(
                f"Salesforce refused the session ({detail}); refresh SALESFORCE_ACCESS_TOKEN"
            ) from None
        except SalesforceResourceNotFound as exc:
            detail = redact(f"Salesforce: {str(getattr(exc, 'content', exc))[:300]}", self._secret)
            raise RecordNotFound(detail) from None
        except SalesforceError as exc:
            status = getattr(exc, "status", 0)
            detail = redact(f"HTTP {status} from Salesforce: {str(getattr(exc, 'content', exc))[:300]}", self._secret)
            if status in (429, 500, 502, 503, 504):
                raise RetryableError(detail, parse_retry_after(self._retry_after)) from None
            if status == 403 and _error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                if "TotalRequests" in detail:
                    raise AllocationUsedUp(
                        f"Salesforce's API request allocation of the org is used up ({detail}); it frees as its "
                        "rolling 24 hours pass"
                    ) from None
                raise RetryableError(detail, parse_retry_after(self._retry_after)) from None  # concurrent requests
            raise PermanentError(detail) from None
        except SalesforceOperationError as exc:  # a Bulk job that failed or timed out on the server
            raise RetryableError(f"Salesforce Bulk API job failed: {redact(str(exc), self._secret)}") from None
        except (requests.RequestException, ValueError) as exc:
            raise RetryableError(f"could not talk to Salesforce: {redact(str(exc), self._secret)}") from None
