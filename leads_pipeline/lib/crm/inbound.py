"""CRM values as lead values: the store's normal forms, so a pulled record looks like an imported one.

A value that does not fit its lead field (a country name no ISO code matches, a non-numeric employee count)
is kept under ``custom.<field>`` rather than dropped or stored malformed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from leads_pipeline.lib.normalize import country_codes


def to_lead_values(values: dict[str, Any]) -> dict[str, Any]:
    """``{lead field: CRM value}`` normalized; misfits move to ``custom.<field>``. The lead's ``id`` is never
    taken from a CRM (it is only ever sent, e.g. as an external id)."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name == "id":
            continue
        value = None if raw is None or str(raw).strip() == "" else str(raw).strip()
        fitted, ok = _fit(name, value)
        out[name if ok else f"custom.{name}"] = fitted if ok else value
        if not ok:
            out[name] = None
    return out


def _fit(name: str, value: str | None) -> tuple[Any, bool]:
    if value is None or name.startswith("custom."):
        return value, True
    if name == "email":
        return value.lower(), True
    if name == "country":
        code = country_codes(pd.Series([value], dtype="string")).values.iloc[0]
        return (str(code), True) if isinstance(code, str) else (None, False)
    if name == "employee_count":
        try:
            return int(float(value)), True
        except ValueError:
            return None, False
    if name == "annual_revenue":
        try:
            return float(value), True
        except ValueError:
            return None, False
    return value, True
