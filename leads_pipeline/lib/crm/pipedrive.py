"""Pipedrive persons through its REST API (requests): look up by email, then update or create.

Pipedrive has no upsert, so a push searches for the person by email first (``exact_match``) and creates only when
nothing matches: a batch resent after a crash finds what the first attempt created. Creates are never retried
blindly: a create whose answer was lost (timeout, cut body) waits out the server's possible processing time and
looks for the person in the persons list (not the search, whose index lags behind creates) before the record counts
as failed. A push killed between a create and recording its link leaves a mark of the create (``marks_creates``; an
update is marked too, as the person it updates may have been deleted, and is then created again): the next push of
that person looks in the persons list too, since the search may not find them yet. Custom fields are addressed by
their account-specific 40-character hash keys: the mapping names them by their display name and ``/personFields``
resolves the keys once per connector.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
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

STANDARD = ("name", "first_name", "last_name", "email", "phone", "job_title")
"""CRM field names a mapping may use besides custom fields (email/phone become the primary entry)."""
WORKERS = 8
"""Records in flight at once: one request each, so latency, not the rate limit, would bound a serial push."""
PAGE = 500
CLOCK_SKEW_S = 300
"""How far this host's clock may run ahead of Pipedrive's: a lost create looks at persons changed since it was
sent less this margin, as Pipedrive's clock dates them."""


class PipedriveResource(CrmResource):
    """A Pipedrive company account reached with a personal API token (``PIPEDRIVE_API_TOKEN``)."""

    api_token: str | None = Field(default=None, repr=False, description="API token (secret).")
    base_url: str = "https://api.pipedrive.com"

    LABEL: ClassVar[str] = "Pipedrive"
    ENV_VAR: ClassVar[str] = "PIPEDRIVE_API_TOKEN"
    URL_ENV_VAR: ClassVar[str] = "PIPEDRIVE_BASE_URL"
    SECRET_ENV_VARS: ClassVar[tuple[str, ...]] = ("PIPEDRIVE_API_TOKEN",)

    @property
    def is_configured(self) -> bool:
        return bool(self.api_token)

    def connector(self, connection: Connection, limiter: Pacer) -> Connector:
        self.require_configured()
        assert self.api_token is not None
        api = JsonApi(
            "Pipedrive",
            self.base_url,
            {"x-api-token": self.api_token, "Accept": "application/json"},
            limiter,
            timeout_s=self.timeout_s,
            env_var=self.ENV_VAR,
            secret=self.api_token,
        )
        return PipedriveConnector(api, connection, settle_s=2 * self.timeout_s)


class PipedriveConnector:
    crm: CrmName = "pipedrive"
    max_batch = 50
    requests_per_record = 2  # a search, then an update or a create
    marks_creates = True
    """No upsert: the engine marks each create before it is sent (``OutgoingRecord.created_since``)."""
    current_max = 100
    """Ids one persons list names (its ``ids``)."""
    dated_to_the_second = True
    """``update_time`` counts whole seconds: a person dated the second of the engine's last write (a push's answer,
    a pull) may have changed after it within that second, in any field."""

    def __init__(self, api: JsonApi, connection: Connection, settle_s: float) -> None:
        self._api = api
        self._settle_s = settle_s
        self._connection = connection
        self._keys: dict[str, str] | None = None

    def describe_fields(self) -> list[RemoteField]:
        """The person fields a mapping can name: the standard ones this connector writes, by key, and the custom
        ones, by key or display name (resolved to their hash keys). An answer without the list is transient."""
        answer = self._api.call("GET", "/api/v1/personFields", params={"limit": 500})
        if not answer.ok:
            raise ConfigurationError(f"Pipedrive refused the person fields list: {answer.body}")
        data = answer.body.get("data") if isinstance(answer.body, dict) else None
        if not isinstance(data, list):
            raise RetryableError(f"Pipedrive answered the person fields list without its data: {answer.body!r:.200}")
        try:
            fields = [
                RemoteField(f["key"], f["name"], f.get("field_type", "varchar"), bool(f.get("mandatory_flag")),
                            by_label=len(f["key"]) == 40)
                for f in data
                if f["key"] in STANDARD or len(f["key"]) == 40
            ]  # fmt: skip
        except (TypeError, KeyError) as exc:
            raise RetryableError(f"Pipedrive answered a person fields list that does not parse: {exc!r}") from None
        fields += [RemoteField("email", "Email"), RemoteField("phone", "Phone")]
        self._keys = {f.label: f.name for f in fields if f.by_label}
        return fields

    def _custom_keys(self) -> dict[str, str]:
        """Display name -> hash key of the custom fields the mapping uses."""
        if self._keys is None:
            self.describe_fields()
        assert self._keys is not None
        wanted = {name for name in [*self._connection.remote_fields, *self._connection.pull_fields]
                  if name not in STANDARD}  # fmt: skip
        missing = sorted(wanted - set(self._keys) - set(self._keys.values()))
        if missing:
            raise ConfigurationError(
                f"{self._connection.name}: Pipedrive has no person field named {', '.join(missing)}; "
                f"custom fields: {', '.join(sorted(self._keys)) or 'none'}"
            )
        return {name: self._keys.get(name, name) for name in wanted}

    def push(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        keys = self._custom_keys()
        return push_each(records, lambda record: self._push_one(record, keys), WORKERS)

    def _push_one(self, record: OutgoingRecord, keys: dict[str, str]) -> PushResult:
        changes = self._body(record.update_values(), keys)
        person_id = record.remote_id or self._look_up(record, keys)
        if person_id is not None:
            if record.remote_id is None and (refused := record.refused_at("Pipedrive", person_id)):
                return refused
            answer = self._api.call("PATCH", f"/api/v2/persons/{person_id}", json=changes)
            if answer.status == 404:  # deleted (or merged away) in Pipedrive since the last sync: look again
                person_id = self._look_up(record, keys)
                if person_id is not None:
                    # a merge left the survivor with this lead's address: another lead's person is not written
                    if refused := record.refused_at("Pipedrive", person_id):
                        return refused
                    answer = self._api.call("PATCH", f"/api/v2/persons/{person_id}", json=changes)
            if person_id is not None:
                return self._result(record, answer, "updated")
        sent = datetime.now(UTC)
        try:
            answer = self._api.call("POST", "/api/v2/persons", json=self._body(record.values, keys))
        except RetryableError:
            # The create may have landed (a timeout or a cut answer says nothing): give the server the time the
            # request could still take, then look again, so that the retry never creates a second person.
            time.sleep(self._settle_s)
            found = self._added_since(record, keys, sent)
            if found is None:
                raise
            return PushResult(record.lead_id, "created", found)
        return self._result(record, answer, "created")

    def _look_up(self, record: OutgoingRecord, keys: dict[str, str]) -> str | None:
        """The person with the record's match key: by search, then, if a killed push may have created them since
        (``created_since``), in the persons list, since the search may not have them yet; there too the person a
        killed push created for the lead under a key it no longer has (``created_under``), which a search for its
        new key never finds: the resend created a second person and the first stayed, linked to no lead."""
        person_id = self._find(record)
        if person_id is None and record.created_since is not None:
            person_id = self._added_since(record, keys, record.created_since)
        return person_id

    def _added_since(self, record: OutgoingRecord, keys: dict[str, str], sent: datetime) -> str | None:
        """The person with the record's match key (or one of ``created_under``) among those changed since ``sent``
        (less ``CLOCK_SKEW_S``).

        A lost create is looked for in the persons list, not by search: Pipedrive's search index lags seconds
        behind its writes, so a search after the settle time could miss the person just created and the retry
        created them again. The list reads the persons themselves; only those changed in the minutes around the
        create are read (a page or two unless the account is busy), and only on this rare path."""
        since = (sent - timedelta(seconds=CLOCK_SKEW_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
        params: dict[str, Any] = {"updated_since": since, "sort_by": "update_time", "sort_direction": "asc"}
        wanted = record.key.casefold()
        cursor: str | None = None
        while True:
            page = {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
            answer = self._api.call("GET", "/api/v2/persons", params=page)
            if not answer.ok:
                return None
            for person in answer.body.get("data") or []:
                key = str(_value(person, self._connection.match_remote, keys) or "")
                if key.casefold() == wanted or (key and record.created_under and record.created_under(key)):
                    return str(person["id"])
            cursor = (answer.body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return None

    def current(self, remote_ids: Sequence[str], fields: Sequence[str]) -> dict[str, RemoteRecord]:
        """The persons of ``remote_ids`` with ``fields`` as Pipedrive has them now, one persons list naming them
        (``GET /api/v2/persons?ids=``, up to 100); a deleted person is not in it."""
        keys = self._custom_keys()
        params = {"ids": ",".join(dict.fromkeys(remote_ids)), "limit": self.current_max}
        answer = self._api.call("GET", "/api/v2/persons", params=params)
        if not answer.ok:
            raise RetryableError(f"Pipedrive refused the persons list: HTTP {answer.status} {answer.body}")
        found: dict[str, RemoteRecord] = {}
        for person in answer.body.get("data") or []:
            updated = parse_time(person.get("update_time"))
            if updated is not None:
                values = {f: _value(person, f, keys) for f in fields}
                found[str(person["id"])] = RemoteRecord(str(person["id"]), updated, values)
        return found

    def delete(self, remote_id: str) -> bool:
        """``DELETE /api/v2/persons/{id}``; its 404 means no such person (any more)."""
        answer = self._api.call("DELETE", f"/api/v2/persons/{remote_id}")
        if answer.status == 404:
            return False
        if not answer.ok:
            raise PermanentError(f"Pipedrive refused to delete person {remote_id}: HTTP {answer.status} {answer.body}")
        return True

    def _find(self, record: OutgoingRecord) -> str | None:
        field = "email" if self._connection.match_remote == "email" else "custom_fields"
        params = {"term": record.key, "fields": field, "exact_match": "true", "limit": 2}
        answer = self._api.call("GET", "/api/v2/persons/search", params=params)
        if not answer.ok:
            return None
        items = (answer.body.get("data") or {}).get("items") or []
        return str(items[0]["item"]["id"]) if items else None

    @staticmethod
    def _body(values: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name, value in values.items():
            if name in ("email", "phone"):
                body[f"{name}s"] = [{"value": value, "primary": True, "label": "work"}] if value else []
            elif name in STANDARD:
                body[name] = value
            else:
                custom[keys[name]] = value
        if custom:
            body["custom_fields"] = custom
        return body

    @staticmethod
    def _result(record: OutgoingRecord, answer: Answer, action: Any) -> PushResult:
        if answer.ok:
            data = answer.body["data"]
            return PushResult(record.lead_id, action, str(data["id"]), parse_time(data.get("update_time")))
        message = str((answer.body or {}).get("error") or answer.body)
        category: Category = "rejected"
        if "email" in message.lower():
            category = "invalid_email"
        elif "required" in message.lower():
            category = "required_field"
        return PushResult(record.lead_id, "failed", None, None, category, f"HTTP {answer.status}: {message}")

    def pull(self, fields: Sequence[str], since: datetime | None) -> Iterator[RemoteRecord]:
        keys = self._custom_keys()
        cursor: str | None = None
        params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc", "limit": PAGE}
        if since is not None:
            params["updated_since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        while True:
            answer = self._api.call(
                "GET", "/api/v2/persons", params={**params, **({"cursor": cursor} if cursor else {})}
            )
            if not answer.ok:
                raise RetryableError(f"Pipedrive refused the persons list: HTTP {answer.status} {answer.body}")
            for person in answer.body.get("data") or []:
                updated = parse_time(person["update_time"])
                assert updated is not None
                yield RemoteRecord(str(person["id"]), updated, {f: _value(person, f, keys) for f in fields})
            cursor = (answer.body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return


def _value(person: dict[str, Any], name: str, keys: dict[str, str]) -> Any:
    if name in ("email", "phone"):
        entries = person.get(f"{name}s") or []
        primary = next((e for e in entries if e.get("primary")), entries[0] if entries else None)
        return primary.get("value") if primary else None
    if name in STANDARD:
        return person.get(name)
    return (person.get("custom_fields") or {}).get(keys.get(name, name))
