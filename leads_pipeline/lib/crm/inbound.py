"""CRM values as lead values: the store's normal forms, so a pulled record looks like an imported one.

A value that does not fit its lead field (a country name no ISO code matches, a non-numeric employee count)
is kept under ``custom.<field>`` rather than dropped or stored malformed.

The same normal forms say when the CRM's value is the lead's written another way ("(415) 555-0100" for
+14155550100, "Ann@Example.com", "https://www.acme.com/" for acme.com): a sync compares the CRM's values as the
pipeline would send them once normalized (:func:`as_sent`), so such a value is no edit to pull nor to send back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from leads_pipeline.lib.crm.mapping import FieldMap, map_lead, plain
from leads_pipeline.lib.fields import PHONE_EXTENSIONS
from leads_pipeline.lib.filters import CUSTOM_PREFIX
from leads_pipeline.lib.normalize import clean_value, phone_extensions_of, values_of


def lead_values(
    records: Sequence[Mapping[str, Any]], stored: Sequence[str | None] | None = None
) -> list[dict[str, Any]]:
    """Each of ``records`` (``{lead field: CRM value}``) normalized as an import normalizes a row (phones to E.164
    in the record's country, their extensions kept apart; emails, websites, LinkedIn URLs, countries, numbers);
    misfits move to ``custom.<field>``. Line breaks are kept in notes and custom values only
    (``normalize.keeps_lines``), as an import keeps them. The lead's ``id`` is never taken from a CRM (it is only
    ever sent, e.g. as an external id). A field's values are normalized in one pass (``normalize.values_of``): a
    pass a value made a pull's chunk of 200 records two seconds of pandas calls; each record's are those it has
    alone.

    ``stored``: the country each record's lead holds (None: a new lead, or none stored). A record with no country
    of its own (none mapped, or the CRM's empty) has its phones read in it, then in the default region, as
    ``leads bulk set`` reads a number in each lead's country: a UK lead's number the CRM holds as "01632 960000"
    is +441632960000, where read as a US number it was a misfit, moved to ``custom.phone`` and the lead's phone
    cleared."""
    texts = [{name: None if raw is None or not str(raw).strip() else str(raw).strip() for name, raw in values.items()}
             for values in records]  # fmt: skip
    own = values_of("country", [t.get("country") or "" for t in texts])
    countries = [c if isinstance(c, str) else None if stored is None else stored[i] for i, (c, _) in enumerate(own)]
    normal: dict[tuple[int, str], tuple[Any, str | None]] = {}
    extensions: dict[tuple[int, str], str | None] = {}
    for name in dict.fromkeys(name for t in texts for name, text in t.items() if text is not None and name != "id"):
        given = [i for i, t in enumerate(texts) if t.get(name) is not None]
        found = values_of(name, [texts[i][name] or "" for i in given], [countries[i] for i in given])
        normal.update(((i, name), result) for i, result in zip(given, found, strict=True))
        if name in PHONE_EXTENSIONS:
            fit = [i for i in given if normal[(i, name)][1] is None]
            for i, extension in zip(fit, phone_extensions_of([texts[i][name] or "" for i in fit]), strict=True):
                extensions[(i, name)] = extension
    out: list[dict[str, Any]] = []
    for i, values in enumerate(texts):
        lead: dict[str, Any] = {}
        for name, text in values.items():
            if name == "id":
                continue
            if text is None:
                lead[name] = text
                continue
            value, problem = normal[(i, name)]
            lead[name] = value
            if problem is not None:  # as the import moves it: the value cleaned as its field's, in one line
                lead[f"custom.{name}"] = clean_value(name, text)
            elif name in PHONE_EXTENSIONS:
                lead[PHONE_EXTENSIONS[name]] = extensions[(i, name)]
        out.append(lead)
    return out


def taken(values: Mapping[str, Any], fields: Collection[str]) -> dict[str, Any]:
    """What a lead takes of a record's lead values (``lead_values``) for its lead ``fields``: each field's
    value, with the ``custom.<field>`` a misfit moved to and a phone's extension, all normalized in the record's
    context (a phone in its country, as the record was compared)."""
    kept = {
        *fields,
        *(f"{CUSTOM_PREFIX}{n}" for n in fields),
        *(PHONE_EXTENSIONS[n] for n in fields if n in PHONE_EXTENSIONS),
    }
    return {name: value for name, value in values.items() if name in kept}


def as_sent(mapping: Sequence[FieldMap], remote: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The CRM's ``remote`` values (CRM field -> value) as the pipeline would send them once taken: the lead values
    they normalize to (``values``: ``lead_values`` of them) through the field's transforms (``map_lead``).
    "(415) 555-0100" is sent as +14155550100, the lead's number: one value, however the CRM writes it. A value that
    fits no lead field (moved to ``custom.<field>``), a phone written with an extension (E.164 has none: the lead
    keeps it apart), the lead's ``id`` and an empty value (which a ``default:`` transform would send filled) are
    compared as the CRM writes them."""
    custom = {name[len(CUSTOM_PREFIX) :]: v for name, v in values.items() if name.startswith(CUSTOM_PREFIX)}
    sent = map_lead({**values, "custom": custom}, mapping)
    own = {m.remote for m in mapping if m.local == "id" or plain(remote.get(m.remote)) is None
           or f"{CUSTOM_PREFIX}{m.local}" in values
           or (m.local in PHONE_EXTENSIONS and values.get(PHONE_EXTENSIONS[m.local]))}  # fmt: skip
    return {name: sent[name] if name in sent and name not in own else value for name, value in remote.items()}
