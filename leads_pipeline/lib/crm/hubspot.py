"""HubSpot through hubspot-api-client: contacts batch upsert by email (or a unique id property), search to pull,
GDPR delete to erase.

The library does not retry by default (PROVIDERS.md); retries happen in the sync engine, paced by the
connection's token bucket, so that every attempt is counted and a Retry-After pauses all callers. Search pages
stop at 10,000 results per query in HubSpot, so a long pull restarts from the newest modification time seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicGdprDeleteInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from pydantic import Field

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
from leads_pipeline.lib.crm.resource import CrmResource, epoch_ms, parse_time
from leads_pipeline.lib.errors import ConfigurationError, PermanentError
from leads_pipeline.lib.ratelimit import Pacer

SEARCH_PAGE = 200
SEARCH_CAP = 10_000
_CATEGORIES: dict[str, Category] = {
    "INVALID_EMAIL": "invalid_email",
    "CONFLICT": "duplicate",
    "PROPERTY_DOESNT_EXIST": "invalid_value",
    "READ_ONLY_VALUE": "invalid_value",
    "VALIDATION_ERROR": "invalid_value",
}


def _properties(values: dict[str, Any]) -> dict[str, str]:
    """Values as HubSpot's properties: strings, an empty one clearing the property."""
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _with_unmentioned(results: dict[int, PushResult], records: Sequence[OutgoingRecord]) -> list[PushResult]:
    """``results`` and a transient failure for each record HubSpot's batch answer left out: sent again next sync."""
    for record in records:
        if record.lead_id not in results:
            message = "HubSpot's batch answer did not mention this record"
            results[record.lead_id] = PushResult(record.lead_id, "failed", None, None, "transient", message)
    return list(results.values())


def _policy(body: Any) -> str | None:
    """The ``policyName`` of a 429's body: ``DAILY`` for the account's daily limit, else its ten-second one."""
    try:
        answer = json.loads(body or "")
    except (TypeError, ValueError):
        return None
    return str(answer.get("policyName")) if isinstance(answer, dict) else None


class HubSpotResource(CrmResource):
    """A HubSpot portal reached with a private-app token (``HUBSPOT_ACCESS_TOKEN``)."""

    access_token: str | None = Field(default=None, repr=False, description="Private app access token (secret).")
    base_url: str = "https://api.hubapi.com"

    LABEL: ClassVar[str] = "HubSpot"
    ENV_VAR: ClassVar[str] = "HUBSPOT_ACCESS_TOKEN"
    URL_ENV_VAR: ClassVar[str] = "HUBSPOT_BASE_URL"
    SECRET_ENV_VARS: ClassVar[tuple[str, ...]] = ("HUBSPOT_ACCESS_TOKEN",)

    @property
    def is_configured(self) -> bool:
        return bool(self.access_token)

    def connector(self, connection: Connection, limiter: Pacer) -> Connector:
        self.require_configured()
        client = HubSpot(access_token=self.access_token, host=self.base_url.rstrip("/"), retry=urllib3.Retry(0))
        return HubSpotConnector(client, connection, limiter, self.timeout_s, self.access_token)


class HubSpotConnector:
    crm: CrmName = "hubspot"
    max_batch = 100
    survivors_max = 100
    """Ids a batch read takes."""

    def __init__(
        self, client: HubSpot, connection: Connection, limiter: Pacer, timeout_s: float, token: str | None
    ) -> None:
        self._batch = client.crm.contacts.batch_api  # each attribute access builds a new API client: keep them
        self._search = client.crm.contacts.search_api
        self._basic = client.crm.contacts.basic_api
        self._properties = client.crm.properties.core_api
        self._connection = connection
        self._limiter = limiter
        self._timeout = timeout_s
        self._secret = token

    def describe_fields(self) -> list[RemoteField]:
        """The contact properties. A cut answer the library still builds a model from (its results missing) is
        transient, like a body that does not parse."""
        answer = self._call(self._properties.get_all, "contacts")
        results = getattr(answer, "results", None)
        if not isinstance(results, list):
            raise RetryableError("HubSpot answered the contact properties list without its results (a cut body)")
        return [RemoteField(p.name, p.label, p.type, False) for p in results]

    def merges_and_current(
        self, remote_ids: Sequence[str], fields: Sequence[str]
    ) -> tuple[dict[str, str], dict[str, RemoteRecord]]:
        """One batch read of ``remote_ids`` (``POST /crm/v3/objects/contacts/batch/read``): contact id -> the contact
        it was merged into, for those merged since they were linked, and the others with ``fields`` as HubSpot has
        them now. HubSpot keeps the primary contact's id and reads a merged-away id as that contact, whose
        ``hs_merged_object_ids`` lists the ids merged into it. A deleted contact is in the answer's errors: not
        merged, the upsert creates it again."""
        inputs = [SimplePublicObjectId(id=remote_id) for remote_id in dict.fromkeys(remote_ids)]
        properties = sorted({*fields, "hs_merged_object_ids", "lastmodifieddate"})
        request = BatchReadInputSimplePublicObjectId(inputs=inputs, properties=properties, properties_with_history=[])
        answer = self._call(self._batch.read, request)
        wanted = set(remote_ids)
        merged: dict[str, str] = {}
        found: dict[str, RemoteRecord] = {}
        for item in answer.results or []:
            values = item.properties or {}
            ids = str(values.get("hs_merged_object_ids") or "").split(";")
            merged.update({old: str(item.id) for old in ids if old in wanted and old != str(item.id)})
            updated = parse_time(values.get("lastmodifieddate")) or parse_time(item.updated_at)
            if str(item.id) in wanted and updated is not None:
                found[str(item.id)] = RemoteRecord(str(item.id), updated, {f: values.get(f) for f in fields})
        return merged, found

    def push(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        following = [record for record in records if record.survivor is not None]
        upserted = [record for record in records if record.survivor is None]
        results = self._upsert(upserted) if upserted else []
        return results + (self._update_survivors(following) if following else [])

    def _update_survivors(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        """Update by id the contacts the leads' contacts were merged into (``OutgoingRecord.survivor``): an upsert by
        the lead's email would not find the survivor, which keeps its own primary email, and would create the
        merged-away contact again."""
        inputs = [
            SimplePublicObjectBatchInput(id=record.survivor, properties=_properties(record.update_values()))
            for record in records
        ]
        answer = self._call(self._batch.update, BatchInputSimplePublicObjectBatchInput(inputs=inputs))
        by_id = {str(record.survivor): record for record in records}
        results: dict[int, PushResult] = {}
        for item in answer.results or []:
            record = by_id.get(str(item.id))
            if record is not None:
                updated = parse_time(item.updated_at)
                results[record.lead_id] = PushResult(record.lead_id, "updated", str(item.id), updated)
        for error in getattr(answer, "errors", None) or []:
            for record in records:
                if record.lead_id not in results:
                    category = _CATEGORIES.get(error.category, "rejected")
                    results[record.lead_id] = PushResult(record.lead_id, "failed", None, None, category, error.message)
        return _with_unmentioned(results, records)

    def _upsert(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        id_property = self._connection.match_remote
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id_property=id_property, id=record.key, properties=_properties(record.update_values())
            )
            for record in records
        ]
        answer = self._call(self._batch.upsert, BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
        by_key = {record.key.casefold(): record for record in records}
        results: dict[int, PushResult] = {}
        for item in answer.results or []:
            key = str((item.properties or {}).get(id_property) or "").casefold()
            record = by_key.get(key)
            if record is not None:
                results[record.lead_id] = PushResult(
                    record.lead_id, "created" if item.new else "updated", str(item.id), parse_time(item.updated_at)
                )
        for error in getattr(answer, "errors", None) or []:
            keys = [str(k).casefold() for k in (error.context or {}).get("id", [])]
            category = _CATEGORIES.get(error.category, "rejected")
            for key in keys or list(by_key):
                record = by_key.get(key)
                if record is not None and record.lead_id not in results:
                    results[record.lead_id] = PushResult(record.lead_id, "failed", None, None, category, error.message)
        return _with_unmentioned(results, records)

    def pull(self, fields: Sequence[str], since: datetime | None) -> Iterator[RemoteRecord]:
        properties = sorted({*fields, "lastmodifieddate"})
        cursor = epoch_ms(since) if since else 0
        while True:
            after: str | None = None
            seen = 0
            newest = cursor
            while True:
                request = PublicObjectSearchRequest(
                    filter_groups=[
                        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(cursor)}]}
                    ],
                    sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    properties=properties,
                    limit=SEARCH_PAGE,
                    after=after,
                )
                page = self._call(self._search.do_search, public_object_search_request=request)
                for item in page.results:
                    updated = parse_time(item.properties.get("lastmodifieddate")) or parse_time(item.updated_at)
                    if updated is None:
                        raise PermanentError(f"HubSpot contact {item.id} came back without lastmodifieddate")
                    newest = max(newest, epoch_ms(updated))
                    seen += 1
                    yield RemoteRecord(str(item.id), updated, {f: item.properties.get(f) for f in fields})
                after = page.paging.next.after if page.paging and page.paging.next else None
                if after is None:
                    return
                if seen + SEARCH_PAGE > SEARCH_CAP:  # HubSpot refuses pages past 10,000: query again from here
                    cursor = newest
                    break

    def delete(self, remote_id: str) -> bool:
        """HubSpot's GDPR delete (``POST /crm/v3/objects/contacts/gdpr-delete``): the contact and its associated
        content are removed for good, not archived for 90 days as ``DELETE`` would. Its 404 means no such contact."""
        try:
            self._call(self._basic.purge, PublicGdprDeleteInput(object_id=remote_id))
        except RecordNotFound:
            return False
        return True

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        self._limiter.acquire()
        try:
            return method(*args, _request_timeout=self._timeout, **kwargs)
        except (ApiException, PropertiesApiException) as exc:
            status = int(exc.status or 0)
            detail = redact(f"HTTP {status} from HubSpot: {str(exc.body or exc.reason)[:300]}", self._secret)
            if status in (401, 403):
                message = f"HubSpot rejected the access token ({detail}); check HUBSPOT_ACCESS_TOKEN"
                raise ConfigurationError(message) from None
            if status == 429 and _policy(exc.body) == "DAILY":
                raise AllocationUsedUp(
                    f"HubSpot's daily API request limit of the account is reached ({detail}); it resets at midnight "
                    "in the account's time zone"
                ) from None
            if status == 429 or status >= 500 or status == 0:
                headers = exc.headers or {}
                raise RetryableError(detail, parse_retry_after(headers.get("Retry-After"))) from None
            if status == 404:
                raise RecordNotFound(detail) from None
            raise PermanentError(detail) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RetryableError(f"could not reach HubSpot: {redact(str(exc), self._secret)}") from None
        except ValueError as exc:  # the library's model validation of a cut or malformed body
            raise RetryableError(f"HubSpot answered a body that does not parse: {exc}") from None
