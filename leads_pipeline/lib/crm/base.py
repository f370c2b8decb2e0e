"""The connector interface every CRM implements, and the records that cross it.

A connector knows one CRM object (Salesforce Lead, HubSpot contacts, Pipedrive persons, GoHighLevel contacts)
and one match key. It pushes batches by upsert (or look-up-then-write where the API has no upsert, so that a
retried batch never creates a duplicate), pulls records changed since a cursor, lists the object's fields, and
deletes a record for an erasure request.
Whole-call failures that a retry can cure raise :class:`RetryableError` (with the server's Retry-After when it
gave one), an API allowance spent for hours :class:`AllocationUsedUp`; per-record refusals come back as failed
:class:`PushResult` rows, each with a category.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from leads_pipeline.lib.errors import PermanentError, TransientError

CrmName = Literal["salesforce", "hubspot", "pipedrive", "gohighlevel"]
CRMS: tuple[CrmName, ...] = ("salesforce", "hubspot", "pipedrive", "gohighlevel")

Category = Literal[
    "transient", "invalid_email", "required_field", "duplicate", "merged", "invalid_value", "not_found", "rejected"
]
"""Why a record failed: ``transient`` is retried on later syncs, the rest only once the lead changes. ``merged``:
the lead's record was merged in the CRM into a record another lead is linked to."""


class RetryableError(TransientError):
    """A whole request failed in a way a retry can cure (429, 5xx, timeout, dropped connection)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AllocationUsedUp(TransientError):
    """The CRM's own API allowance is spent for a long while (Salesforce's rolling 24-hour TotalRequests): no
    retry within the run can succeed and each one spends nothing but the CRM's patience. A push stops, keeping the
    records it could not send for the next sync; nothing about them was refused."""


class RecordNotFound(PermanentError):
    """The CRM has no record with that id (never had, or already deleted): its 404."""


@dataclass(frozen=True)
class OutgoingRecord:
    """One lead as the CRM should see it: ``values`` are CRM field names to values, the match key included."""

    lead_id: int
    key: str
    values: dict[str, Any]
    remote_id: str | None = None
    created_since: datetime | None = None
    """For a connector that marks its creates (``marks_creates``): when a push that never recorded its outcome
    (it was killed) may have created a record with this key, or for this lead under a key it had then; that record
    is looked for among those made since."""
    created_under: Callable[[str], bool] | None = None
    """With ``created_since``: whether a record with that match key may be one of those creates (the lead's key
    then is known by its hash only)."""
    unchanged: frozenset[str] = frozenset()
    """Fields of ``values`` (never the match key) still as last agreed with the CRM (the link's values). An update
    of the record leaves them out (``update_values``), so a salesperson's edit of a field the lead did not change is
    kept; a create sends every field."""
    agreed: dict[str, Any] | None = None
    """The values last agreed with the CRM (the link's), for a linked lead: a field the update would send whose CRM
    value differs from them was changed there too since, a conflict the field's rule decides before it is sent."""
    local_updated: datetime | None = None
    """When the lead last changed: the lead's side of a ``most_recent`` rule."""
    country: str | None = None
    """The lead's stored country, for a linked lead: a number the CRM holds without its country code (its country
    not mapped, or empty there) is read in it when the push compares the CRM's values, as a pull reads it."""

    survivor: str | None = None
    """The record ``remote_id`` was merged into in the CRM since the last sync (its survivor, which no other lead is
    linked to), for a connector that reads merges (``merges_and_current``): the update goes to it, by id, and the
    lead is linked to it; the merged-away record is not created again."""
    held_by: Callable[[str], int | None] | None = None
    """The lead other than this one linked to a CRM record on the connection (None: no other lead). A record found
    for this lead by its match key or as the survivor of a merge in the CRM, not by its own link, is not written when
    another lead holds it (:meth:`refused_at`): that lead's values stay there."""

    def refused_at(self, crm: str, remote_id: str) -> PushResult | None:
        """The failure of writing this lead to ``remote_id``, a record found for it other than by its own link, when
        another lead is linked to that record (None: it may be written). A linked lead's record was merged there in
        the CRM (``merged``); an unlinked lead has the match key of that lead's record (``duplicate``). The lead is
        not linked to it either: one link per record is what lets a pull find its lead."""
        other = self.held_by(remote_id) if self.held_by is not None else None
        if other is None:
            return None
        if self.remote_id is None:
            message = (f"{crm} record {remote_id}, which has this lead's match key, is linked to lead {other}: not "
                       "written, not linked; remove the duplicate lead")  # fmt: skip
            return PushResult(self.lead_id, "failed", category="duplicate", message=message)
        message = (
            f"{crm} record {self.remote_id} of this lead was merged there into record {remote_id}, which lead {other} "
            f"is linked to: this lead's values are not written there, nor is it linked to it; merge the two leads "
            f"(leads dedupe --merge) or remove this one"
        )
        return PushResult(self.lead_id, "failed", category="merged", message=message)

    def update_values(self) -> dict[str, Any]:
        """What an update of the existing record sends: the fields changed since the last agreed values."""
        return {name: value for name, value in self.values.items() if name not in self.unchanged}


@dataclass(frozen=True)
class PushResult:
    lead_id: int
    action: Literal["created", "updated", "failed"]
    remote_id: str | None = None
    remote_updated: datetime | None = None
    category: Category | None = None
    message: str | None = None
    retry_after_s: float | None = None
    """What the CRM asked to wait before a transient failure is retried (its Retry-After)."""
    allowance_spent: bool = False
    """A transient failure because the CRM's allowance is spent for hours (:class:`AllocationUsedUp`, met by a
    connector sending one request per record): the run stops instead of retrying."""

    @property
    def transient(self) -> bool:
        return self.action == "failed" and self.category == "transient"


@dataclass(frozen=True)
class RemoteRecord:
    """A CRM record as pulled: its id, its last-modified time and the mapped fields' values."""

    remote_id: str
    updated_at: datetime
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteField:
    name: str
    label: str
    type: str = "string"
    required: bool = False
    by_label: bool = False
    """Whether a mapping may name the field by its label: the connector resolves labels to keys (custom fields
    of Pipedrive and GoHighLevel); every other field is sent under its name only."""


class Connector(Protocol):
    """One CRM object with one match key, as a sync sees it."""

    crm: CrmName
    max_batch: int
    """The most records one push call sends (the API's batch limit)."""

    def describe_fields(self) -> list[RemoteField]:
        """The object's fields (also what proves the credentials work)."""

    def push(self, records: Sequence[OutgoingRecord]) -> list[PushResult]:
        """Upsert ``records`` (at most ``max_batch``); one result per record, in any order."""

    def pull(self, fields: Sequence[str], since: datetime | None) -> Iterator[RemoteRecord]:
        """Records modified after ``since`` (all when None), oldest first, with ``fields``' values."""

    def delete(self, remote_id: str) -> bool:
        """Delete one record for good (an erasure request); False when the CRM has no such record (any more).
        Safe to repeat: a second call finds nothing and returns False."""
