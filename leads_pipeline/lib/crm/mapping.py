"""Field mapping: a lead's values as a CRM record, the transforms applied on the way, and the change hash.

The hash of the mapped values is what "changed since its last sync" means: a lead whose mapped values hash
like the last push is not sent again, whatever else about it changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from leads_pipeline.lib.errors import ConfigurationError

TRANSFORMS = ("lower", "upper", "strip", "title", "truncate:N", "default:VALUE", "digits")


@dataclass(frozen=True)
class FieldMap:
    local: str
    """A canonical lead field, or ``custom.<name>`` for a custom field."""
    remote: str
    transforms: tuple[str, ...] = ()


def parse_transforms(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigurationError(f"{where}: transforms: expected a list like [strip, lower], found {value!r}")
    for item in value:
        name, _, arg = str(item).partition(":")
        ok = name in ("lower", "upper", "strip", "title", "digits") and not arg
        ok = ok or (name == "truncate" and arg.isdigit() and int(arg) > 0) or (name == "default" and bool(arg))
        if not ok:
            raise ConfigurationError(f"{where}: unknown transform {item!r}; expected one of {', '.join(TRANSFORMS)}")
    return tuple(str(item) for item in value)


def apply_transforms(value: Any, transforms: Sequence[str]) -> Any:
    for transform in transforms:
        name, _, arg = transform.partition(":")
        if name == "default":
            value = arg if value is None or value == "" else value
        elif value is None:
            continue
        elif name == "truncate":
            value = utf16_prefix(str(value), int(arg))
        elif name == "digits":
            value = "".join(ch for ch in str(value) if ch.isdigit())
        else:
            value = getattr(str(value), name)()
    return value


def utf16_prefix(text: str, units: int) -> str:
    """The longest start of ``text`` that is at most ``units`` UTF-16 code units, a character never cut in two.

    Salesforce counts a field's length in UTF-16 code units (an emoji or a rare CJK ideograph outside the Basic
    Multilingual Plane is two), and HubSpot, which does not say, may too: cut at ``units`` code points, a title
    with emoji was longer than ``truncate:128`` promised and refused (STRING_TOO_LONG). A code-point count is
    never more than this, so the value fits a CRM that counts either way."""
    if len(text) <= units // 2:  # no character is more than two units
        return text
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def local_value(lead: Mapping[str, Any], name: str) -> Any:
    """A lead field's value; ``custom.X`` reads the custom JSON object."""
    if name.startswith("custom."):
        custom = lead.get("custom") or {}
        return custom.get(name[len("custom.") :])
    return lead.get(name)


def plain(value: Any) -> Any:
    """A value as JSON carries it (numbers from the database are Decimal); empty strings are None."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value == "":
        return None
    return value


def map_lead(lead: Mapping[str, Any], mapping: Sequence[FieldMap]) -> dict[str, Any]:
    """The lead as CRM field -> value; None for an empty field (sent as an empty value, so clearing works)."""
    return {m.remote: plain(apply_transforms(plain(local_value(lead, m.local)), m.transforms)) for m in mapping}


def values_hash(values: Mapping[str, Any]) -> str:
    """A stable hash of mapped values: key order and number formatting do not change it."""
    canonical = json.dumps({k: _comparable(v) for k, v in values.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _comparable(value: Any) -> Any:
    value = plain(value)
    return None if value is None else str(value)


def same(a: Any, b: Any) -> bool:
    """Equal as the CRM would store them (CRMs echo numbers as strings, empties as null or "")."""
    return _comparable(a) == _comparable(b)
