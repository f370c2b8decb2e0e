"""Which side wins a field both the CRM and the pipeline changed since the last sync.

Three values decide: the base (what both sides agreed on at the last sync, kept on the link), the local value
and the CRM's. Only one side changed: that side wins, no conflict. Both changed to different values: the
field's rule decides (``crm_wins``, ``local_wins``, or ``most_recent`` by modification time, the CRM on a tie)
and the conflict is recorded with both values.

The CRM's value is compared as the pipeline would send it once normalized (``inbound.as_sent``) too: the lead's
+14155550100 held as "(415) 555-0100" is one value, so neither side changed it. Taken as a difference, it was
pulled as an edit and the lead's form sent back over the CRM's on every sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from leads_pipeline.lib.crm.connection import Rule
from leads_pipeline.lib.crm.mapping import same

Winner = Literal["crm", "local"]


@dataclass(frozen=True)
class Conflict:
    field: str
    local: Any
    remote: Any
    rule: Rule
    winner: Winner


@dataclass(frozen=True)
class Merge:
    take: dict[str, Any]
    """CRM fields whose CRM value the lead takes."""
    conflicts: list[Conflict]


def alike(value: Any, theirs: Any, normal: Any) -> bool:
    """Whether the CRM's value ``theirs`` is ``value`` (the lead's or the agreed one, as sent): equal as the CRM
    stores them, or once normalized (``normal``: ``theirs`` as the pipeline would send it)."""
    return same(value, theirs) or same(value, normal)


def merge(
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    rules: Mapping[str, Rule],
    local_updated: datetime | None,
    remote_updated: datetime | None,
    normal: Mapping[str, Any] | None = None,
) -> Merge:
    """Merge per field; ``base`` None (never synced) counts every differing non-empty pair as a conflict.
    ``normal``: the ``remote`` values as the pipeline would send them (``inbound.as_sent``); ``take`` and the
    conflicts have the CRM's values as it writes them."""
    take: dict[str, Any] = {}
    found: list[Conflict] = []
    for name, theirs in remote.items():
        ours = local.get(name)
        theirs_sent = theirs if normal is None else normal.get(name, theirs)
        if alike(ours, theirs, theirs_sent):
            continue
        if base is not None:
            local_changed = not same(ours, base.get(name))
            remote_changed = not alike(base.get(name), theirs, theirs_sent)
        else:
            local_changed, remote_changed = ours not in (None, ""), theirs not in (None, "")
        if remote_changed and not local_changed:
            take[name] = theirs
        elif local_changed and remote_changed:
            rule = rules[name]
            winner = _decide(rule, local_updated, remote_updated)
            found.append(Conflict(name, ours, theirs, rule, winner))
            if winner == "crm":
                take[name] = theirs
    return Merge(take, found)


def _decide(rule: Rule, local_updated: datetime | None, remote_updated: datetime | None) -> Winner:
    if rule == "crm_wins":
        return "crm"
    if rule == "local_wins":
        return "local"
    if local_updated is not None and remote_updated is not None and local_updated > remote_updated:
        return "local"
    return "crm"
