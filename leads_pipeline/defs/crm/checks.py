"""The blocking check in front of every push: the mapping fits the CRM, and invalid leads are held back.

A lead that fails validation is never sent; the check lists those leads (a WARN: the others still go). The
check fails with ERROR, and so blocks ``crm_sync``, when the push cannot be right at all: a mapped field the
CRM does not have, or every lead of the list failing validation (a mapping that cannot be right).
"""

from __future__ import annotations

import dagster as dg

from leads_pipeline.lib.crm.base import RemoteField
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.crm.sync import PushPlan
from leads_pipeline.lib.store.audit import mask

PUSH_CHECK = "crm_push_is_valid"
PREVIEW_ROWS = 20

CHECK_SPECS = [
    dg.AssetCheckSpec(
        PUSH_CHECK,
        asset="crm_sync_plan",
        blocking=True,
        description="Mapped fields exist in the CRM; leads failing validation are listed and held back.",
    )
]


def unknown_fields(connection: Connection, fields: list[RemoteField]) -> dict[str, list[str]]:
    """The CRM fields the connection file names that the CRM's field list does not have, by the file's key that
    names them (``mapping``, ``pull_fields``). A field is named by its name, or by its label where the connector
    resolves labels (``RemoteField.by_label``): the same rule a push and a pull apply."""
    known = {f.name for f in fields} | {f.label for f in fields if f.by_label}
    wanted = {"mapping": connection.remote_fields, "pull_fields": list(connection.pull_fields)}
    found = {key: [name for name in names if name not in known] for key, names in wanted.items()}
    return {key: names for key, names in found.items() if names}


def describe_unknown(connection: Connection, unknown: dict[str, list[str]]) -> str:
    """``mapping: hubspot contacts has no field(s) a, b; pull_fields: ...`` for what ``unknown_fields`` found."""
    return "; ".join(
        f"{key}: {connection.crm} {connection.object} has no field(s) {', '.join(names)}"
        for key, names in unknown.items()
    )


def push_check(connection: Connection, plan: PushPlan, unknown: dict[str, list[str]]) -> dg.AssetCheckResult:
    # masked as the email column is: a problem quotes the value it is about ("Email 'ann@acme' is not an email
    # address"), and Dagster's event log keeps the metadata for ever
    rows = ["| lead | email | problems |", "|---|---|---|"] + [
        f"| {i.lead_id} | {mask(i.email or '')} | {mask('; '.join(i.reasons))} |" for i in plan.invalid[:PREVIEW_ROWS]
    ]
    metadata = {
        "to_send": dg.MetadataValue.int(len(plan.send)),
        "invalid": dg.MetadataValue.int(len(plan.invalid)),
        "invalid_preview": dg.MetadataValue.md("\n".join(rows) if plan.invalid else "none"),
        "unknown_fields": dg.MetadataValue.text(describe_unknown(connection, unknown) or "none"),
    }
    all_invalid = bool(plan.invalid) and not (plan.send or plan.unchanged or plan.held)
    if unknown or all_invalid:
        if unknown:
            reason = describe_unknown(connection, unknown)
        else:
            failing = "the one lead fails" if len(plan.invalid) == 1 else f"all {len(plan.invalid):,} leads fail"
            # which lead: masked, the reason alone gave a user of `leads sync` (which prints it) nothing to look up
            first = plan.invalid[0]
            reason = (
                f"{failing} validation, e.g. lead {first.lead_id}: {mask('; '.join(first.reasons))}"
                f" (`leads show {first.lead_id}` shows its values)"
            )
        metadata["reason"] = dg.MetadataValue.text(reason)
        return dg.AssetCheckResult(
            check_name=PUSH_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata
        )
    return dg.AssetCheckResult(
        check_name=PUSH_CHECK,
        passed=not plan.invalid,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
