"""GoHighLevel (LeadConnector API v2) contacts through requests: upsert to push, search to pull.

``POST /contacts/upsert`` de-duplicates by the location's email/phone rule, so a resent record updates the
contact the first attempt created. Every request carries the API ``Version`` header. Custom fields are
addressed by id; the mapping names them by their display name, resolved from the location's field list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from leads_pipeline.lib.crm.base import (
    Category,
    Connector,
    CrmName,
    OutgoingRecord,
    PushResult,
    RemoteField,
    RemoteRecord,
    RetryableError,
)
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.crm.resource import CrmResource, parse_time
from leads_pipeline.lib.crm.rest import Answer, JsonApi, push_each
from leads_pipeline.lib.errors import ConfigurationError, PermanentError
from leads_pipeline.lib.ratelimit import Pacer

API_VERSION = "2021-07-28"
STANDARD = ("firstName", "lastName", "name", "email", "phone", "companyName", "website", "address1", "city",
            "state", "postalCode", "country", "source")  # fmt: skip
WORKERS = 8
"""Records in flight at once: one request each, so latency, not the rate limit, would bound a serial push."""
PAGE = 100


class GoHighLevelResource(CrmResource):
    """A GoHighLevel sub-account (location) reached with a private integration token."""

    token: str | None = Field(default=None, repr=False, description="Private integration token (secret).")
    location_id: str | None = None
    base_url: str = "https://services.leadconnectorhq.com"

    LABEL: ClassVar[str] = "GoHighLevel"
    ENV_VAR: ClassVar[str] = "GOHIGHLEVEL_TOKEN"
    LOCATION_ENV_VAR: ClassVar[str] = "GOHIGHLEVEL_LOCATION_ID"
    URL_ENV_VAR: ClassVar[str] = "GOHIGHLEVEL_BASE_URL"
    SECRET_ENV_VARS: ClassVar[tuple[str, ...]] = ("GOHIGHLEVEL_TOKEN", "GOHIGHLEVEL_LOCATION_ID")

    @property
    def is_configured(self) -> bool:
        return bool(self.token and self.location_id)

    def connector(self, connection: Connection, limiter: Pacer) -> Connector:
        self.require_configured()
        assert self.location_id is not None
        headers = {"Authorization": f"Bearer {self.token}", "Version": API_VERSION, "Accept": "application/json"}
        api = JsonApi(
            "GoHighLevel",
            self.base_url,
            headers,
            limiter,
            timeout_s=self.timeout_s,
            env_var=self.ENV_VAR,
            secret=self.token,
            daily_remaining_header="X-RateLimit-Daily-Remaining",
        )
        return GoHighLevelConnector(api, connection, self.location_id)


class GoHighLevelConnector:
    crm: CrmName = "gohighlevel"
    max_batch = 50
    requests_per_record = 2
    """The duplicate search before each upsert (``_refused``), then the upsert."""
    current_max = 50
    """Contacts one call of ``current`` reads, in parallel: GoHighLevel reads a contact by id only."""
    current_each = True
    """``current`` sends a request per record (what a batch's quota check counts)."""

    def __init__(self, api: JsonApi, connection: Connection, location_id: str) -> None:
        self._api = api
        self._connection = connection
        self._location = location_id
        self._custom: dict[str, str] | None = None

    def describe_fields(self) -> list[RemoteField]:
        """The standard contact fields, by name, and the location's custom fields, by id or display name. An
        answer without the custom fields list (a cut body) is transient."""
        answer = self._api.call("GET", f"/locations/{self._location}/customFields", params={"model": "contact"})
        if not answer.ok:
            raise ConfigurationError(
                f"GoHighLevel refused the custom fields of location {self._location} (HTTP {answer.status}: "
                f"{answer.body}); check GOHIGHLEVEL_LOCATION_ID"
            )
        listed = answer.body.get("customFields") if isinstance(answer.body, dict) else None
        if not isinstance(listed, list):
            raise RetryableError(f"GoHighLevel answered the custom fields list without it: {answer.body!r:.200}")
        try:
            custom = [RemoteField(f["id"], f["name"], f.get("dataType", "TEXT"), by_label=True) for f in listed]
        except (TypeError, KeyError) as exc:
            raise RetryableError(f"GoHighLevel answered a custom fields list that does not parse: {exc!r}") from None
        self._custom = {f.label: f.name for f in custom}
        return [RemoteField(name, name) for name in STANDARD] + custom

    def _custom_ids(self) -> dict[str, str]:
        if self._custom is None:
            self.describe_fields()
        assert self._custom is not None
        wanted = {n for n in [*self._connection.remote_fields, *self._connection.pull_fields] if n not in STANDARD}
        missing = sorted(wanted - set(self._custom) - set(self._custom.values()))
        if missing:
            raise ConfigurationError(
                f"{self._connection.name}: GoHighLevel has no contact field named {', '.join(missing)}; "
                f"custom fields: {', '.join(sorted(self._custom)) or 'none'}"
            )
        return {name: self._custom.get(name, name) for name in wanted}

    def push(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        ids = self._custom_ids()
        return push_each(records, lambda record: self._push_one(record, ids), WORKERS)

    def _push_one(self, record: OutgoingRecord, ids: dict[str, str]) -> PushResult:
        body: dict[str, Any] = {"locationId": self._location}
        custom = []
        for name, value in record.update_values().items():
            if name in STANDARD:
                body[name] = value
            else:
                custom.append({"id": ids[name], "field_value": value})
        if custom:
            body["customFields"] = custom
        if refused := self._refused(record, body):
            return refused
        answer = self._api.call("POST", "/contacts/upsert", json=body)
        if answer.ok:
            contact = answer.body["contact"]
            updated = parse_time(contact.get("dateUpdated"))
            if answer.body.get("new"):
                return PushResult(record.lead_id, "created", contact["id"], updated)
            return PushResult(record.lead_id, "updated", contact["id"], updated)
        return _failure(record, answer)

    def _refused(self, record: OutgoingRecord, body: dict[str, Any]) -> PushResult | None:
        """The failure of an upsert that would write onto a contact another lead is linked to (None: send it).

        The upsert matches on GoHighLevel's side, by the location's duplicate rule (email, then phone, or its unique
        identifier when duplicates are allowed), and writes before we see the contact: after a merge there, or a
        salesperson giving another lead's contact this lead's address, it overwrote that lead's contact. Our links
        cannot tell, since they hold the addresses we sent, not the ones edited or merged there (the local check by
        match key, for leads linked with this lead's address, is done before: ``_linked_elsewhere``). So the
        contact that rule matches is asked for first (``GET /contacts/search/duplicate``, the upsert's own rule, one
        request more per record) and checked against the links (``OutgoingRecord.refused_at``)."""
        params = {"locationId": self._location}
        params.update({name: str(body[field]) for name, field in (("email", "email"), ("number", "phone"))
                       if body.get(field) not in (None, "")})  # fmt: skip
        if record.held_by is None or len(params) == 1:
            return None
        answer = self._api.call("GET", "/contacts/search/duplicate", params=params)
        if not answer.ok:
            return _failure(record, answer)
        if not isinstance(answer.body, dict):
            raise RetryableError(f"GoHighLevel answered the duplicate search without a body: {answer.body!r:.200}")
        found = (answer.body.get("contact") or {}).get("id")
        if found is None or found == record.remote_id:
            return None
        return record.refused_at("GoHighLevel", str(found))

    def current(self, remote_ids: Sequence[str], fields: Sequence[str]) -> dict[str, RemoteRecord]:
        """The contacts of ``remote_ids`` with ``fields`` as GoHighLevel has them now: its API reads a contact by id
        only (``GET /contacts/{contactId}``), one request each, ``WORKERS`` at once; one not found (deleted) is
        left out."""
        ids = self._custom_ids()

        def read(remote_id: str) -> RemoteRecord | None:
            answer = self._api.call("GET", f"/contacts/{remote_id}")
            contact = answer.body.get("contact") if answer.ok and isinstance(answer.body, dict) else None
            if not isinstance(contact, dict):
                return None
            updated = parse_time(contact.get("dateUpdated"))
            if updated is None:
                return None
            custom = {c["id"]: c.get("value") for c in contact.get("customFields") or []}
            values = {f: contact.get(f) if f in STANDARD else custom.get(ids.get(f, f)) for f in fields}
            return RemoteRecord(remote_id, updated, values)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            found = list(pool.map(read, dict.fromkeys(remote_ids)))
        return {record.remote_id: record for record in found if record is not None}

    def delete(self, remote_id: str) -> bool:
        """``DELETE /contacts/{contactId}``; a 404, or a 400 saying the contact is not found, means it is gone."""
        answer = self._api.call("DELETE", f"/contacts/{remote_id}")
        if answer.ok:
            return True
        message = str((answer.body or {}).get("message") if isinstance(answer.body, dict) else answer.body)
        if answer.status == 404 or (answer.status == 400 and "not found" in message.lower()):
            return False
        raise PermanentError(f"GoHighLevel refused to delete contact {remote_id}: HTTP {answer.status} {message}")

    def pull(self, fields: Sequence[str], since: datetime | None) -> Iterator[RemoteRecord]:
        ids = self._custom_ids()
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "locationId": self._location,
                "pageLimit": PAGE,
                "sort": [{"field": "dateUpdated", "direction": "asc"}],
            }
            if since is not None:
                value = {"gt": since.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
                body["filters"] = [{"field": "dateUpdated", "operator": "range", "value": value}]
            if after:
                body["searchAfter"] = after
            answer = self._api.call("POST", "/contacts/search", json=body)
            if not answer.ok:
                raise RetryableError(f"GoHighLevel refused the contact search: HTTP {answer.status} {answer.body}")
            contacts = answer.body.get("contacts") or []
            for contact in contacts:
                updated = parse_time(contact["dateUpdated"])
                assert updated is not None
                custom = {c["id"]: c.get("value") for c in contact.get("customFields") or []}
                values = {f: contact.get(f) if f in STANDARD else custom.get(ids.get(f, f)) for f in fields}
                yield RemoteRecord(contact["id"], updated, values)
            if len(contacts) < PAGE:
                return
            after = contacts[-1].get("searchAfter")
            if not after:
                return


def _failure(record: OutgoingRecord, answer: Answer) -> PushResult:
    """The record's failure from GoHighLevel's refusal (its message, a list of them on a 422)."""
    raw = (answer.body or {}).get("message") if isinstance(answer.body, dict) else answer.body
    message = "; ".join(raw) if isinstance(raw, list) else str(raw)
    category: Category = "rejected"
    if "email must be" in message:
        category = "invalid_email"
    elif "required" in message:
        category = "required_field"
    return PushResult(record.lead_id, "failed", None, None, category, f"HTTP {answer.status}: {message}")
