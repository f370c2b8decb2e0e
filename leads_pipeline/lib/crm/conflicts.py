"""Which side wins a field both the CRM and the pipeline changed since the last sync.

Three values decide: the base (what both sides agreed on at the last sync, kept on the link), the local value
and the CRM's. Only one side changed: that side wins, no conflict. Both changed to different values: the
field's rule decides (``crm_wins``, ``local_wins``, or ``most_recent`` by modification time, the CRM on a tie)
and the conflict is recorded with both values.
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


def merge(
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    rules: Mapping[str, Rule],
    local_updated: datetime | None,
    remote_updated: datetime | None,
) -> Merge:
    """Merge per field; ``base`` None (never synced) counts every differing non-empty pair as a conflict."""
    take: dict[str, Any] = {}
    found: list[Conflict] = []
    for name, theirs in remote.items():
        ours = local.get(name)
        if same(ours, theirs):
            continue
        if base is not None:
            local_changed = not same(ours, base.get(name))
            remote_changed = not same(theirs, base.get(name))
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
