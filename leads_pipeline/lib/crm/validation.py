"""What a lead must have before it is sent: the blocking check in front of every push.

A lead that fails here is never sent (the CRM would refuse it, and each refusal costs a request and a quota
unit); it is recorded as ``invalid`` with the reason, and sent once it is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from leads_pipeline.lib.crm.connection import Connection

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.(?:[A-Za-z]{2,}|xn--[A-Za-z0-9-]+|[^\x00-\x7f]+)$")
"""An address a CRM takes: its top-level domain letters, or an internationalized one in Unicode (.рф, .中国) or
in its A-label (.xn--p1ai), as the import stores it; those were held back as "not an email address"."""
EMAIL_FIELDS = frozenset({"email", "Email", "primary_email"})

REQUIRED: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("salesforce", "Lead"): (("LastName",), ("Company",)),
    ("salesforce", "Contact"): (("LastName",),),
    ("pipedrive", "persons"): (("name",),),
    ("gohighlevel", "contacts"): (("email", "phone"),),
}
"""CRM fields a record cannot be created without; a tuple of alternatives means one of them."""


def problems(connection: Connection, values: Mapping[str, Any]) -> list[str]:
    """Why these mapped values cannot be pushed (empty when they can)."""
    found = []
    key = values.get(connection.match_remote)
    if key in (None, ""):
        found.append(f"no {connection.match_field} (the match key)")
    for remote in connection.remote_fields:
        value = values.get(remote)
        if remote in EMAIL_FIELDS and value not in (None, "") and not _EMAIL.match(str(value)):
            found.append(f"{remote} {value!r} is not an email address")
    mapped = set(connection.remote_fields)
    for alternatives in REQUIRED.get((connection.crm, connection.object), ()):
        present = [a for a in alternatives if a in mapped]
        if present and all(values.get(a) in (None, "") for a in present):
            found.append(f"{' or '.join(present)} is required by {connection.crm} {connection.object}")
    return found
