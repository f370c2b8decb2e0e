"""Countries as the import reads them: an ISO 3166-1 alpha-2 code from a name, a code or a common alias, one value
at a time. The import maps it over a column's distinct values (``normalize.country_codes``); a search's country
filter reads its values with it without loading the import's pandas and pyarrow.
"""

from __future__ import annotations

import os
import re
import unicodedata
from functools import cache, lru_cache
from typing import Final

import pycountry

from leads_pipeline.lib.errors import ConfigurationError

COUNTRY_PROBLEM: Final = "expected a country name or ISO 3166 code"
FORMER_COUNTRY_PROBLEM: Final = (
    "former country that no longer has an ISO 3166 code; expected a current country name or code"
)

# Common forms that pycountry's names do not cover. Keys are matched after _country_key().
_COUNTRY_ALIASES: Final[dict[str, str]] = {
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "us": "US",
    "usa": "US",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "korea": "KR",
    "south korea": "KR",
    "korea south": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "korea north": "KP",
    "dprk": "KP",
    "russia": "RU",
    "ivory coast": "CI",
    "palestine": "PS",
    "palestinian territory": "PS",
    "palestinian territories": "PS",
    "occupied palestinian territory": "PS",
    "macedonia": "MK",
    "republic of macedonia": "MK",
    "fyrom": "MK",
    "vatican": "VA",
    "vatican city": "VA",
    "vatican city state": "VA",
    "libyan arab jamahiriya": "LY",
    "cape verde": "CV",
    "swaziland": "SZ",
    "turkey": "TR",
    "burma": "MM",
    "zaire": "CD",
    "drc": "CD",
    "dr congo": "CD",
    "congo kinshasa": "CD",
    "congo brazzaville": "CG",
    "republic of the congo": "CG",
    "east timor": "TL",
    "svalbard and jan mayen islands": "SJ",
    "svalbard": "SJ",
    "pitcairn islands": "PN",
    "united states virgin islands": "VI",
    "us virgin islands": "VI",
    "virgin islands us": "VI",
    "uae": "AE",
    "holland": "NL",
    "republic of ireland": "IE",
    "macau": "MO",
    "prc": "CN",
    "mainland china": "CN",
    "kosovo": "XK",  # user-assigned code used by the EU, phonenumbers and most CRMs
    "xk": "XK",  # not in pycountry: without these the import's own "XK" (stored for Kosovo) was refused
    "xkx": "XK",
    # Endonyms that show up in European and Asian exports.
    "deutschland": "DE",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "espana": "ES",
    "brasil": "BR",
    "italia": "IT",
    "nederland": "NL",
    "belgie": "BE",
    "belgique": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "cesko": "CZ",
    "ceska republika": "CZ",
    "magyarorszag": "HU",
    "eire": "IE",
    "россия": "RU",
    "日本": "JP",
    "中国": "CN",
    "대한민국": "KR",
    "한국": "KR",
    # The names of the countries that write them in another script, as their own exports write them: unknown,
    # the country was left empty and a local phone number of the row was read as a US one ("050 123 4567" in
    # السعودية became +1 050...). Vowel signs and shadda are dropped by _country_key, as accents are.
    "السعودية": "SA",
    "المملكة العربية السعودية": "SA",
    "الإمارات": "AE",
    "الإمارات العربية المتحدة": "AE",
    "مصر": "EG",
    "المغرب": "MA",
    "الجزائر": "DZ",
    "تونس": "TN",
    "قطر": "QA",
    "الكويت": "KW",
    "البحرين": "BH",
    "عمان": "OM",
    "الأردن": "JO",
    "لبنان": "LB",
    "العراق": "IQ",
    "ישראל": "IL",
    "ایران": "IR",
    "پاکستان": "PK",
    "ελλαδα": "GR",
    "κυπρος": "CY",
    "российская федерация": "RU",
    "украина": "UA",
    "україна": "UA",
    "беларусь": "BY",
    "казахстан": "KZ",
    "българия": "BG",
    "србија": "RS",
    "ไทย": "TH",
    "ประเทศไทย": "TH",
    "भारत": "IN",
    "नेपाल": "NP",
    "বাংলাদেশ": "BD",
    "中华人民共和国": "CN",
    "中國": "CN",
    "台湾": "TW",
    "台灣": "TW",
    "臺灣": "TW",
    "香港": "HK",
    "澳门": "MO",
    "澳門": "MO",
    "新加坡": "SG",
    "日本国": "JP",
}

# Countries that split or merged: there is no single code to map them to, and guessing one (e.g. "AN" ->
# Curaçao) would silently misfile the lead. "AN" itself is withdrawn and unknown to phonenumbers.
_FORMER_COUNTRIES: Final[frozenset[str]] = frozenset(
    {
        "netherlands antilles",
        "yugoslavia",
        "serbia and montenegro",
        "ussr",
        "soviet union",
        "czechoslovakia",
        "east germany",
        "german democratic republic",
    }
)


def _country_key(value: str) -> str:
    """Accent-, case- and punctuation-insensitive form of a country name ("U.S.A." -> "usa")."""
    value = unicodedata.normalize("NFKD", value)
    value = "".join(c for c in value if not unicodedata.combining(c)).casefold()
    value = value.replace("&", " and ")
    value = re.sub(r"[.'\u2019`]", "", value)
    value = re.sub(r"[\W_]+", " ", value).strip()
    value = re.sub(r"\bst\b", "saint", value)
    return re.sub(r"^the ", "", value)


def _without_parenthetical(name: str) -> str:
    return re.sub(r"\s*\([^)]*\)", "", name).strip()


@cache
def _country_index() -> dict[str, str]:
    """Country key -> alpha-2: codes and names from pycountry, derived variants, then the alias table.

    Derived variants are "Korea, Republic of" -> "Republic of Korea" and "Korea", and names without
    their parenthetical ("Saint Martin (French part)" -> "Saint Martin"); a derived variant that two
    countries share ("Korea", "Virgin Islands") is dropped rather than guessed.
    """
    exact: dict[str, str] = {}
    derived: dict[str, set[str]] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        exact[_country_key(code)] = code
        exact[_country_key(country.alpha_3)] = code
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if not name:
                continue
            exact[_country_key(name)] = code
            variants = {_without_parenthetical(name)}
            if ", " in name:
                head, _, tail = name.partition(", ")
                variants |= {head, f"{tail} {head}"}
            for variant in variants:
                derived.setdefault(_country_key(variant), set()).add(code)
    index = {key: codes.pop() for key, codes in derived.items() if len(codes) == 1}
    index.update(exact)
    index.update({_country_key(alias): code for alias, code in _COUNTRY_ALIASES.items()})
    return index


@lru_cache(maxsize=1 << 12)
def country_code(value: str) -> tuple[str | None, str | None]:
    """(alpha-2, None) for a country name or code, else (None, what is wrong with it)."""
    index = _country_index()
    candidates = [value]
    if "(" in value:
        candidates += [_without_parenthetical(value), *re.findall(r"\(([^)]*)\)", value)]
    for candidate in candidates:
        key = _country_key(candidate)
        if key in index:
            return (index[key], None)
        if key in _FORMER_COUNTRIES:
            return (None, FORMER_COUNTRY_PROBLEM)
    return (None, COUNTRY_PROBLEM)


def check_default_region(region: str, given_as: str = "default region ") -> None:
    """Refuse a ``--default-region`` (of ``leads import`` or ``leads bulk set``) or a ``LEADS_DEFAULT_REGION``
    that phone numbers cannot be read in, before anything is recorded or selected; ``given_as`` names where the
    value came from in the message."""
    import phonenumbers  # here: `leads dev` and a search's country filter read this module and no number

    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(
            f"{given_as}{region!r} is not a country code phone numbers are known for;"
            " expected an ISO 3166 alpha-2 code such as US, GB or DE"
        )


DEFAULT_REGION_ENV: Final = "LEADS_DEFAULT_REGION"


def configured_default_region(given: str | None = None) -> str:
    """The region national phone numbers are read in when the row gives none: ``given`` (a command's option, a
    run config value) when there is one, else ``LEADS_DEFAULT_REGION``, else US. A team outside the US sets the
    variable once for every import (the drop folder's included, which has no option to give), rather than have
    its numbers kept raw as unreadable US ones."""
    if given is not None:
        return given
    value = os.environ.get(DEFAULT_REGION_ENV, "").strip()
    if not value:
        return "US"
    check_default_region(value, given_as=f"{DEFAULT_REGION_ENV}=")
    return value.upper()
