"""The canonical lead fields: the one vocabulary shared by the CLI, mapping files, JSON output and the store.

Anything in an imported file that is not one of these goes to the lead's ``custom`` JSON object, keyed by the
file's original header.
"""

from __future__ import annotations

import re
from typing import Final, Literal

CANONICAL_FIELDS: Final[tuple[str, ...]] = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "mobile_phone",
    "title",
    "seniority",
    "department",
    "company",
    "company_domain",
    "website",
    "linkedin_url",
    "industry",
    "employee_count",
    "annual_revenue",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "source",
    "notes",
)

TYPED_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "employee_count": ("Int64", "integer"),
    "annual_revenue": ("Float64", "numeric"),
}
"""The fields that are not text: their pandas dtype and their PostgreSQL type."""

PHONE_EXTENSIONS: Final[dict[str, str]] = {"phone": "phone_ext", "mobile_phone": "mobile_phone_ext"}
"""The column holding each phone field's extension (E.164 has no room for one). An extension belongs to its
number: whatever writes a phone writes its extension with it, an empty one included."""

MULTILINE_FIELDS: Final = frozenset({"notes"})
"""The lead fields whose line breaks are kept: free text a person wrote in lines (a list, paragraphs). Custom values
keep theirs too, every other value is one line (a line break in a name or an email is a spreadsheet's accident):
``normalize.keeps_lines``, the rule every way of writing a value follows."""

MAPPED_FIELDS: Final[tuple[str, ...]] = (*CANONICAL_FIELDS, *PHONE_EXTENSIONS.values())
"""What a file's column may be mapped to: the canonical fields, and a phone's extension in a column of its own (as
``leads bulk export`` writes it)."""

SHOWN_FIELDS: Final[tuple[str, ...]] = tuple(
    column for name in CANONICAL_FIELDS for column in (name, PHONE_EXTENSIONS.get(name)) if column is not None
)
"""The lead fields a user sees (show, search, export): the canonical fields, each phone followed by its extension."""

FAMILY_NAME_FIRST: Final = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\U00020000-\U0002fa1f"
"""The letters of a regular-expression class (Han, kana, Hangul, 々) whose names are written family name first,
without a space: a first and last name written in them only join as 王伟, 山田花子, 김민준. The same class is in
sql/165 (``lead_names_family_first``, which the stored full names and search text follow)."""

HAN_COMPOUND_FAMILY_NAMES: Final[tuple[str, ...]] = (
    *("欧阳", "歐陽", "司马", "司馬", "诸葛", "諸葛", "上官", "司徒", "东方", "東方", "皇甫", "尉迟", "尉遲"),
    *("公孙", "公孫", "令狐", "慕容", "夏侯", "长孙", "長孫", "宇文", "端木", "澹台", "轩辕", "軒轅", "南宫"),
    *("南宮", "西门", "西門", "呼延", "申屠", "淳于", "钟离", "鍾離", "赫连", "赫連", "濮阳", "濮陽", "拓跋"),
)
"""The compound Chinese family names, simplified and traditional (欧阳娜娜 is 娜娜 of the 欧阳 family), where the family
name is otherwise one character; those whose first character is a common family name of its own before a common
given name (宗政) are left out."""


def full_name(first_name: str | None, last_name: str | None) -> str | None:
    """A first and last name joined as the import and sql/165's ``lead_full_name`` join them: "Ann Lee", and a
    Chinese, Japanese or Korean name family name first (伟 and 王 are 王伟, where "伟 王" is another name)."""
    if first_name and last_name and re.fullmatch(f"[{FAMILY_NAME_FIRST}]+", first_name + last_name):
        return last_name + first_name
    return " ".join(part for part in (first_name, last_name) if part) or None


DedupeKey = Literal["email", "phone", "both"]

LEAD_COLUMNS: tuple[str, ...] = (
    *CANONICAL_FIELDS,
    "phone_ext",
    "mobile_phone_ext",
    "company_key",
    "name_key",
)
"""The lead columns a prepared chunk holds in clear, validated against the lead schema."""
INDEX_COLUMNS: tuple[str, ...] = ("email_bidx", "email_domain", "phone_bidx", "mobile_phone_bidx", "street_bidx")
"""The blind indexes of the sealed fields and the email's domain, computed when a chunk is staged."""
STORED_COLUMNS: tuple[str, ...] = (*LEAD_COLUMNS, *INDEX_COLUMNS)
"""The lead columns an import writes, besides ``custom`` (the sealed fields sealed)."""

MATCH_KEYS: dict[DedupeKey, tuple[str, ...]] = {"email": ("email",), "phone": ("phone",), "both": ("email", "phone")}
"""The keys two live leads of a list must not share, by the list's dedupe setting."""
CONTACT_KEYS = ("email", "phone")
MATCH_COLUMNS: dict[str, str] = {
    "email": "email_bidx",
    "phone": "phone_bidx",
    "linkedin_url": "linkedin_url",
    "name_key": "name_key",
}
"""The column a stored key is compared on (sealed keys through their blind index)."""
