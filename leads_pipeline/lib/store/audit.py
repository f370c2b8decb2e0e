"""The audit log: who did what to which object, when, append-only (``sql/007_security.sql`` refuses changes).

``record`` is called inside the transaction of the action it describes, so an action and its audit entry are
committed (or rolled back) together. Actions are dotted names (``list.share``, ``leads.export``,
``privacy.delete`` ...); ``object`` names what was acted on (``list:12``, ``selection``, ``subject:<hash>``);
``details`` is a small JSON object. Lead ids go under ``leadIds`` (at most ``MAX_LEAD_IDS``, the full count under
``leadCount``) so a privacy export can find the entries about a person.

Details never hold contact data: email addresses and phone-like digit runs in any string are masked before the
entry is written, so an erased person leaves no trace here and the log never needs rewriting; the names of the lists
an action was on (``record``'s ``lists``) are not personal data and are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Final

from psycopg.types.json import Jsonb

from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.lists import Connection

MAX_LEAD_IDS: Final = 10_000
"""Lead ids kept in one entry: a bulk action on a million leads records its count, not a 10 MB id array."""

_EMAIL: Final = re.compile(r"[^\s@,;'\"<>()]+@[^\s,;'\"<>()]*")
"""An address up to the next space or separator, mistyped ones too: ``jane.doe@@acme.com``, ``jane@acme@com`` and
``jane.doe@`` (an import's rejected emails, in its errors preview in Dagster) were left in clear."""
_NOT_A_PHONE: Final = (
    r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?!\.?\d)"
    r"|(?<!\d)(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)?(?!\d)"
    r"|(?<!\d)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[-_T]?(?:[01]\d|2[0-3])[0-5]\d[0-5]\d(?!\d)"
)
"""Digit runs kept as they are: an IPv4 address with its port (``127.0.0.1:9`` in a connection error), an ISO
date or timestamp (``2026-11-30T10:10:32.123456``) and a compact one (``20261130-101032``, in a list name)."""
_PHONE: Final = re.compile(
    rf"(?P<keep>{_NOT_A_PHONE})"
    r"|(?:(?<![0-9A-Za-z_])(?<![0-9A-Za-z]-)\+?\(?|%2B)\d[\d\s().-]{5,}\d(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?"
    r"(?![0-9A-Za-z_]|[-_][0-9A-Za-z])",
    re.IGNORECASE,
)
"""A run of 7+ digits (spaces, dots, dashes, brackets between) standing alone, with its extension if any: a phone
number, not the digits inside a token such as a subject hash or a CRM record id, which must stay intact to be
found again, nor a part of a name joined by ``-`` or ``_`` (``demo-0612345678``). Without the extension,
``007.155.3406x553`` was masked as ``<phone>.3406x553`` (the number's last digits and its extension left in
clear, in an import's errors preview). A number URL-encoded in a request path (``/v2/PhoneNumbers/%2B14155550100``,
quoted by a failed Twilio lookup's error) is one too."""
_SEPARATOR: Final = r"\s,;'\""


def mask(text: str, *, keep: Collection[str] = ()) -> str:
    """``text`` with email addresses and phone numbers replaced by placeholders; the names in ``keep`` (list
    names, never personal data) standing as words of their own are left as they are."""
    names = sorted((n for n in keep if n), key=len, reverse=True)
    if not names:
        return _PHONE.sub(lambda m: m["keep"] or "<phone>", _EMAIL.sub("<email>", text))
    alternatives = "|".join(map(re.escape, names))
    parts = re.split(rf"(?<![^{_SEPARATOR}])({alternatives})(?![^{_SEPARATOR}])", text)
    return "".join(part if i % 2 else mask(part) for i, part in enumerate(parts))


def _scrub(value: Any, keep: Collection[str]) -> Any:
    if isinstance(value, str):
        return mask(value, keep=keep)
    if isinstance(value, dict):
        return {str(k): _scrub(v, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, keep) for v in value]
    return value


def lead_ids(ids: list[int]) -> dict[str, Any]:
    """The ``leadIds``/``leadCount`` details of an action on these leads."""
    return {"leadIds": sorted(ids)[:MAX_LEAD_IDS], "leadCount": len(ids)}


def record(
    conn: Connection,
    actor: str,
    action: str,
    object: str,
    details: dict[str, Any] | None = None,
    *,
    lists: Collection[str] = (),
) -> int:
    """Append one entry in the caller's transaction; returns its id. Lead ids are kept as they are; every
    string is masked (see the module doc) but for the names of the ``lists`` the action was on: a date-stamped
    list name (``demo-20261130-101032``) was recorded as ``demo-<phone>``."""
    (entry_id,) = record_many(conn, actor, action, [(object, details or {})], lists=lists)
    return entry_id


def record_many(
    conn: Connection,
    actor: str,
    action: str,
    entries: Sequence[tuple[str, dict[str, Any]]],
    *,
    lists: Collection[str] = (),
) -> list[int]:
    """``record`` of each (object, details), in their order, in one statement; returns their ids in that order. A
    bulk action of an entry per object (``leads dedupe --merge`` of 10,000 clusters) took a statement each."""
    rows = conn.execute(
        "INSERT INTO audit_log (actor, action, object, details) SELECT %s, %s, e.object, e.details"
        " FROM unnest(%s::text[], %s::jsonb[]) WITH ORDINALITY AS e(object, details, n) ORDER BY e.n RETURNING id",
        (
            actor,
            action,
            [mask(object) for object, _ in entries],
            [Jsonb({k: (v if k == "leadIds" else _scrub(v, lists)) for k, v in d.items()}) for _, d in entries],
        ),
    )
    return sorted(int(r["id"]) for r in rows)


READABLE_CONDITION: Final = (
    "(actor = %(reader)s OR object = ANY(%(list_objects)s::text[]) OR EXISTS (SELECT 1 FROM leads l"
    " WHERE l.list_id = ANY(%(list_ids)s::bigint[])"
    " AND l.id IN (SELECT jsonb_array_elements_text(details -> 'leadIds')::bigint)))"
)
"""The entries a user who does not act on every list (``access.acts_on_every_list``) may read: their own, those
about a list they can read, and those naming a lead that is now in such a list."""


def entries(
    conn: Connection,
    *,
    since: datetime | None = None,
    action: str | None = None,
    lead_ids_any: list[int] | None = None,
    subject: str | None = None,
    limit: int | None = None,
    reader: str | None = None,
) -> list[dict[str, Any]]:
    """Entries oldest first: after ``since``, whose action is ``action`` or starts with ``action.``, about any
    of ``lead_ids_any`` or about the privacy ``subject`` hash; with ``reader``, only those that user may read
    (``readable_condition``)."""
    conditions = ["TRUE"]
    params: dict[str, Any] = {"since": since, "action": action, "prefix": f"{action}.%", "limit": limit}
    if reader is not None and not access.acts_on_every_list(conn, reader):
        conditions.append(READABLE_CONDITION)
        readable = access.readable_list_ids(conn, reader)
        params.update(reader=reader, list_ids=readable, list_objects=[f"list:{i}" for i in readable])
    if since is not None:
        conditions.append("at >= %(since)s")
    if action:
        conditions.append("(action = %(action)s OR action LIKE %(prefix)s)")
    about: list[str] = []
    if lead_ids_any is not None:
        about.append("EXISTS (SELECT 1 FROM unnest(%(ids)s::bigint[]) i WHERE details -> 'leadIds' @> to_jsonb(i))")
        params["ids"] = lead_ids_any
    if subject is not None:
        about.append("object = %(subject)s OR details ->> 'subject' = %(subject)s")
        params["subject"] = subject
    if about:
        conditions.append("(" + " OR ".join(about) + ")")
    query = f"SELECT id, at, actor, action, object, details FROM audit_log WHERE {' AND '.join(conditions)} ORDER BY id"
    if limit is not None:
        query += " LIMIT %(limit)s"
    return list(conn.execute(query, params))  # type: ignore[arg-type]
