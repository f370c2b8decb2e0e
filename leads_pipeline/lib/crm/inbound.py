"""CRM values as lead values: the store's normal forms, so a pulled record looks like an imported one.

A value that does not fit its lead field (a country name no ISO code matches, a non-numeric employee count)
is kept under ``custom.<field>`` rather than dropped or stored malformed.
"""

from __future__ import annotations

from typing import Any

from leads_pipeline.lib.fields import PHONE_EXTENSIONS
from leads_pipeline.lib.normalize import clean_value, one_value, phone_extension


def to_lead_values(values: dict[str, Any]) -> dict[str, Any]:
    """``{lead field: CRM value}`` normalized as an import normalizes a row (phones to E.164 in the record's
    country, their extensions kept apart; emails, websites, LinkedIn URLs, countries, numbers); misfits move to
    ``custom.<field>``. Line breaks are kept in notes and custom values only (``normalize.keeps_lines``), as an
    import keeps them. The lead's ``id`` is never taken from a CRM (it is only ever sent, e.g. as an external id)."""
    texts = {name: None if raw is None or not str(raw).strip() else str(raw).strip() for name, raw in values.items()}
    country, _ = one_value("country", texts.get("country") or "")
    out: dict[str, Any] = {}
    for name, text in texts.items():
        if name == "id":
            continue
        if text is None:
            out[name] = text
            continue
        value, problem = one_value(name, text, country if isinstance(country, str) else None)
        out[name] = value
        if problem is not None:  # as the import moves it: the value cleaned as its field's, in one line
            out[f"custom.{name}"] = clean_value(name, text)
        elif name in PHONE_EXTENSIONS:
            out[PHONE_EXTENSIONS[name]] = phone_extension(text)
    return out
