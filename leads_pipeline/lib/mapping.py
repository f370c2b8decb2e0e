"""Automatic column detection for imported lead files: which CSV column feeds which canonical field.

Lead files come from many tools (Apollo, HubSpot, Salesforce, LinkedIn, spreadsheets) and every tool names
its columns differently, so asking the user to map 50 columns by hand on every import is not an option. The
suggestion is built from two independent kinds of evidence:

1. **Header synonyms**: the header is normalised (case, spacing, punctuation, CamelCase, Salesforce
   ``__c`` suffixes) and looked up in a synonym table. Each synonym carries a base confidence, so a weak
   synonym such as ``Company Phone`` loses to a person's ``Phone`` when both are present.
2. **Value sniffing**: a sample of cell values is checked with cheap, precompiled regexes and set lookups
   (emails, phones, URLs, LinkedIn profile URLs, countries, first names). The sniffed share confirms or
   weakens the header's claim and lets unlabeled columns (``Contact`` full of emails) be mapped at all.

Conflicts are resolved greedily: one field per column, one column per field, highest confidence first. Every
column keeps a short human reason so the UI/CLI can explain the suggestion and the user can override it with a
mapping file (:func:`load_mapping_file`, :func:`apply_overrides`).

Decision on the ambiguous header ``Name``: it means a person's full name in contact exports and a company
name in organisation/account lists. Sampled values decide when there are any (share of values shaped like a
person's name; Japanese names written without a space, as short as a company's, only beside person columns or
another company column); without values the other headers decide (company context such as ``Industry``, ``Founded`` or
``Number of employees`` and no person context such as ``First Name``/``Email``/``Title`` => ``company``);
otherwise ``full_name``.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from nameparser import Parser, locales, parser_for

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.export import BOOKKEEPING_COLUMNS
from leads_pipeline.lib.fields import FAMILY_NAME_FIRST, MAPPED_FIELDS, SHOWN_FIELDS
from leads_pipeline.lib.filters import CUSTOM_PREFIX

__all__ = [
    "ColumnSuggestion",
    "MappingSuggestion",
    "apply_overrides",
    "header_field",
    "left_out_columns",
    "load_mapping_file",
    "suggest_mapping",
    "unmapped_labels",
]


@dataclass(frozen=True)
class ColumnSuggestion:
    """The suggestion for one CSV column.

    ``field`` is ``None`` when the column has no canonical field (or lost its field to a better column);
    such columns are kept in the lead's ``custom`` JSON under their original header, so nothing is thrown
    away. ``confidence`` is how sure the suggestion is: for a field, that the column feeds it; for ``None``,
    that the column belongs in ``custom``. ``reason`` is shown to the user so a wrong guess is easy to spot
    and override.
    """

    column: str
    field: str | None
    confidence: float
    reason: str


@dataclass(frozen=True)
class MappingSuggestion:
    """The suggestion for a whole file, one :class:`ColumnSuggestion` per column in file order."""

    columns: tuple[ColumnSuggestion, ...]

    def as_dict(self) -> dict[str, str | None]:
        """``{csv column: field or None}``, the shape mapping files and the importer use.

        If a header occurs twice, the first occurrence's entry is kept: only it can be addressed by name.
        """
        result: dict[str, str | None] = {}
        for column in self.columns:
            result.setdefault(column.column, column.field)
        return result


# ----------------------------------------------------------------------------------------------------
# Header normalisation
# ----------------------------------------------------------------------------------------------------

_QUOTES: Final = "\"'`\u2018\u2019\u201c\u201d\ufeff"
_SF_CUSTOM_SUFFIX_RE: Final = re.compile(r"__(?:c|pc)$", re.IGNORECASE)
_CAMEL_RE: Final = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_NON_WORD_RE: Final = re.compile(r"[^\w#]+|_+")
_JOINS: Final = ((re.compile(r"\blinked in\b"), "linkedin"), (re.compile(r"\be mail\b"), "email"))


def _normalize_header(header: str) -> str:
    """Reduce a header to lower-case space-separated words so that spelling variants meet one synonym.

    ``"FirstName"``, ``"first_name"``, ``" First  Name "`` and ``'"First Name"'`` all become ``"first name"``;
    ``"LinkedIn__c"`` becomes ``"linkedin"``. ``#`` is kept because ``# Employees`` is a real header. A Turkish
    capital İ (Turkish Excel's upper case of "i": ``"EMAİL"``) is an i: case folding makes it "i" and a
    combining dot, which split the word.
    """
    text = header.strip().strip(_QUOTES).strip()
    text = _SF_CUSTOM_SUFFIX_RE.sub("", text)
    text = _CAMEL_RE.sub(" ", text).casefold().replace("i\u0307", "i")
    text = _NON_WORD_RE.sub(" ", text).strip()
    text = " ".join(text.split())
    for pattern, joined in _JOINS:
        text = pattern.sub(joined, text)
    return text


# ----------------------------------------------------------------------------------------------------
# Synonym table
# ----------------------------------------------------------------------------------------------------

_STRONG: Final = 0.95
_GOOD: Final = 0.85
_WEAK: Final = 0.6

# field -> synonyms in preference order (earlier wins ties). Company-level variants of person fields are
# weak so that a person's own City/Phone/Country beats the company's when a file has both. German, French,
# Spanish, Japanese, Chinese, Korean and Russian headers (Vorname, Prénom, Nombre, 氏名, 姓名, 회사, Фамилия ...) are
# good rather than strong: a few are ordinary words elsewhere.
_SYNONYMS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "first_name": (
        ("First Name", _STRONG),
        ("Given Name", _STRONG),
        ("Forename", _STRONG),
        ("First", _GOOD),
        ("FName", _GOOD),
        ("名", _GOOD),
        ("Vorname", _GOOD),
        ("Prénom", _GOOD),
        ("Nombre", _GOOD),
        ("名字", _GOOD),
        ("Имя", _GOOD),
    ),
    "last_name": (
        ("Last Name", _STRONG),
        ("Surname", _STRONG),
        ("Family Name", _STRONG),
        ("Last", _GOOD),
        ("LName", _GOOD),
        ("姓", _GOOD),
        ("Nachname", _GOOD),
        ("Familienname", _GOOD),
        ("Nom", _GOOD),
        ("Nom de famille", _GOOD),
        ("Apellido", _GOOD),
        ("Apellidos", _GOOD),
        ("姓氏", _GOOD),
        ("Фамилия", _GOOD),
    ),
    "full_name": (
        ("Full Name", _STRONG),
        ("Contact Name", _STRONG),
        ("Lead Name", _GOOD),
        ("Person Name", _GOOD),
        ("Contact Full Name", _GOOD),
        ("氏名", _GOOD),
        ("姓名", _GOOD),
        ("名前", _GOOD),
        ("お名前", _GOOD),
        ("성명", _GOOD),
        ("ФИО", _GOOD),
        ("Name", 0.7),  # ambiguous: see _name_candidates
    ),
    "email": (
        ("Email", _STRONG),
        ("Email Address", _STRONG),
        ("Email 1", _STRONG),
        ("Work Email", _STRONG),
        ("Business Email", _STRONG),
        ("Primary Email", _STRONG),
        ("Email Id", _GOOD),
        ("Mail", _GOOD),
        ("メールアドレス", _GOOD),
        ("メール", _GOOD),
        ("E-Mail-Adresse", _GOOD),
        ("Courriel", _GOOD),
        ("Adresse e-mail", _GOOD),
        ("Correo", _GOOD),
        ("Correo electrónico", _GOOD),
        ("邮箱", _GOOD),
        ("电子邮件", _GOOD),
        ("電子郵件", _GOOD),
        ("이메일", _GOOD),
        ("Электронная почта", _GOOD),
        ("Эл. почта", _GOOD),
    ),
    "phone": (
        ("Phone", _STRONG),
        ("Phone Number", _STRONG),
        ("Phone 1", _STRONG),
        ("Work Direct Phone", _STRONG),
        ("Direct Phone", _STRONG),
        ("Direct Dial", _STRONG),
        ("Work Phone", _STRONG),
        ("Business Phone", _STRONG),
        ("Office Phone", _STRONG),
        ("Primary Phone", _STRONG),
        ("First Phone", _STRONG),
        ("Telephone", _STRONG),
        ("Tel", _GOOD),
        ("電話番号", _GOOD),
        ("Telefon", _GOOD),
        ("Telefonnummer", _GOOD),
        ("Téléphone", _GOOD),
        ("Teléfono", _GOOD),
        ("电话", _GOOD),
        ("電話", _GOOD),
        ("联系电话", _GOOD),
        ("전화번호", _GOOD),
        ("Телефон", _GOOD),
        ("Corporate Phone", _WEAK),
        ("Company Phone", _WEAK),
        ("Main Phone", _WEAK),
    ),
    "mobile_phone": (
        ("Mobile Phone", _STRONG),
        ("Mobile", _STRONG),
        ("Mobile Number", _STRONG),
        ("Mobile Phone Number", _STRONG),
        ("Cell Phone", _STRONG),
        ("Cell", _STRONG),
        ("Cellphone", _STRONG),
        ("携帯電話", _GOOD),
        ("携帯電話番号", _GOOD),
        ("携帯番号", _GOOD),
        ("Mobil", _GOOD),
        ("Mobiltelefon", _GOOD),
        ("Handy", _GOOD),
        ("Portable", _GOOD),
        ("Móvil", _GOOD),
        ("Celular", _GOOD),
        ("手机", _GOOD),
        ("手機", _GOOD),
        ("휴대폰", _GOOD),
        ("휴대전화", _GOOD),
        ("Мобильный телефон", _GOOD),
    ),
    "phone_ext": (
        ("phone_ext", _STRONG),
        ("Phone Extension", _STRONG),
        ("Extension", _GOOD),
        ("Ext", _GOOD),
    ),
    "mobile_phone_ext": (
        ("mobile_phone_ext", _STRONG),
        ("Mobile Phone Extension", _STRONG),
    ),
    "title": (
        ("Title", _STRONG),
        ("Job Title", _STRONG),
        ("Position", _STRONG),
        ("Job Position", _STRONG),
        ("Role", _GOOD),
        ("Job Role", _GOOD),
        ("Designation", _GOOD),
        ("役職", _GOOD),
        ("Funktion", _GOOD),
        ("Fonction", _GOOD),
        ("Poste", _GOOD),
        ("Cargo", _GOOD),
        ("Puesto", _GOOD),
        ("职位", _GOOD),
        ("職位", _GOOD),
        ("职务", _GOOD),
        ("직책", _GOOD),
        ("직위", _GOOD),
        ("Должность", _GOOD),
        ("Headline", _WEAK),
    ),
    "seniority": (
        ("Seniority", _STRONG),
        ("Seniority Level", _STRONG),
        ("Job Level", _GOOD),
        ("Management Level", _GOOD),
    ),
    "department": (
        ("Department", _STRONG),
        ("Departments", _STRONG),
        ("Dept", _GOOD),
        ("Division", _GOOD),
        ("Job Function", _GOOD),
        ("部署", _GOOD),
        ("Abteilung", _GOOD),
        ("Departamento", _GOOD),
        ("部门", _GOOD),
        ("部門", _GOOD),
        ("부서", _GOOD),
        ("Отдел", _GOOD),
    ),
    "company": (
        ("Company", _STRONG),
        ("Company Name", _STRONG),
        ("Account Name", _STRONG),
        ("Associated Company", _STRONG),
        ("Organization", _STRONG),
        ("Organisation", _STRONG),
        ("Organization Name", _STRONG),
        ("Organisation Name", _STRONG),
        ("Business Name", _GOOD),
        ("Employer", _GOOD),
        ("Account", _GOOD),
        ("Company Account", _GOOD),
        ("会社名", _GOOD),
        ("企業名", _GOOD),
        ("勤務先", _GOOD),
        ("Firma", _GOOD),
        ("Unternehmen", _GOOD),
        ("Société", _GOOD),
        ("Entreprise", _GOOD),
        ("Empresa", _GOOD),
        ("公司", _GOOD),
        ("公司名称", _GOOD),
        ("회사", _GOOD),
        ("회사명", _GOOD),
        ("Компания", _GOOD),
        ("Организация", _GOOD),
        ("Company Name for Emails", _WEAK),
    ),
    "company_domain": (
        ("Company Domain", _STRONG),
        ("Domain", _GOOD),
        ("Website Domain", _GOOD),
    ),
    "website": (
        ("Website", _STRONG),
        ("Company Website", _STRONG),
        ("Web Site", _STRONG),
        ("Website URL", _STRONG),
        ("Company URL", _GOOD),
        ("Homepage", _GOOD),
        ("Web", _GOOD),
        ("Web Address", _GOOD),
        ("ウェブサイト", _GOOD),
        ("Webseite", _GOOD),
        ("Site web", _GOOD),
        ("Sitio web", _GOOD),
        ("网站", _GOOD),
        ("網站", _GOOD),
        ("网址", _GOOD),
        ("웹사이트", _GOOD),
        ("Сайт", _GOOD),
        ("URL", _WEAK),  # generic: LinkedIn exports use it for the profile, see _url_candidates
    ),
    "linkedin_url": (
        ("Person Linkedin Url", _STRONG),
        ("LinkedIn", _STRONG),
        ("LinkedIn Url", _STRONG),
        ("LinkedIn Profile", _STRONG),
        ("LinkedIn Profile Url", _STRONG),
        ("Contact LinkedIn Url", _STRONG),
        ("Profile Url", _WEAK),
    ),
    "industry": (
        ("Industry", _STRONG),
        ("Industries", _STRONG),
        ("Sector", _GOOD),
        ("Vertical", _GOOD),
        ("業種", _GOOD),
        ("Branche", _GOOD),
        ("Secteur d'activité", _GOOD),
    ),
    "employee_count": (
        ("# Employees", _STRONG),
        ("Number of Employees", _STRONG),
        ("Employees", _STRONG),
        ("Employee Count", _STRONG),
        ("No of Employees", _STRONG),
        ("Num Employees", _STRONG),
        ("Headcount", _GOOD),
        ("Company Size", _GOOD),
        ("従業員数", _GOOD),
        ("Anzahl Mitarbeiter", _GOOD),
        ("Mitarbeiter", _GOOD),
        ("Effectif", _GOOD),
        ("Empleados", _GOOD),
    ),
    "annual_revenue": (
        ("Annual Revenue", _STRONG),
        ("Revenue", _GOOD),
        ("Company Revenue", _GOOD),
        ("Yearly Revenue", _GOOD),
        ("Umsatz", _GOOD),
        ("Chiffre d'affaires", _GOOD),
        ("Facturación", _GOOD),
    ),
    "street": (
        ("Street", _STRONG),
        ("Street Address", _STRONG),
        ("Address", _GOOD),
        ("Address 1", _GOOD),
        ("Address Line 1", _GOOD),
        ("Mailing Street", _GOOD),
        ("住所", _GOOD),
        ("Straße", _GOOD),
        ("Adresse", _GOOD),
        ("Dirección", _GOOD),
        ("Company Street", _WEAK),
    ),
    "city": (
        ("City", _STRONG),
        ("Town", _GOOD),
        ("Mailing City", _GOOD),
        ("市区町村", _GOOD),
        ("Stadt", _GOOD),
        ("Ort", _GOOD),
        ("Ville", _GOOD),
        ("Ciudad", _GOOD),
        ("城市", _GOOD),
        ("도시", _GOOD),
        ("Город", _GOOD),
        ("Company City", _WEAK),
    ),
    "state": (
        ("State", _STRONG),
        ("Province", _STRONG),
        ("State Province", _STRONG),
        ("State Region", _GOOD),
        ("Mailing State", _GOOD),
        ("Mailing State/Province", _GOOD),  # the labels of a Salesforce contact report
        ("都道府県", _GOOD),
        ("Bundesland", _GOOD),
        ("Région", _GOOD),
        ("Provincia", _GOOD),
        ("State Code", 0.75),
        ("Company State", _WEAK),
    ),
    "postal_code": (
        ("Postal Code", _STRONG),
        ("Zip", _STRONG),
        ("Zip Code", _STRONG),
        ("Zipcode", _STRONG),
        ("Postcode", _STRONG),
        ("Post Code", _STRONG),
        ("Zip Postal Code", _STRONG),
        ("Mailing Postal Code", _GOOD),
        ("Mailing Zip/Postal Code", _GOOD),
        ("郵便番号", _GOOD),
        ("PLZ", _GOOD),
        ("Postleitzahl", _GOOD),
        ("Code postal", _GOOD),
        ("Código postal", _GOOD),
        ("Company Postal Code", _WEAK),
    ),
    "country": (
        ("Country", _STRONG),
        ("Country Name", _STRONG),
        ("Country Region", _STRONG),
        ("Mailing Country", _GOOD),
        ("国", _GOOD),
        ("Country Code", 0.8),
        ("Land", _GOOD),
        ("Pays", _GOOD),
        ("País", _GOOD),
        ("国家", _GOOD),
        ("國家", _GOOD),
        ("국가", _GOOD),
        ("Страна", _GOOD),
        ("Company Country", _WEAK),
    ),
    "source": (
        ("Lead Source", _STRONG),
        ("Source", _STRONG),
        ("Original Source", _GOOD),
        ("Lead Origin", _GOOD),
    ),
    "notes": (
        ("Notes", _STRONG),
        ("Note", _STRONG),
        ("Comments", _GOOD),
        ("Comment", _GOOD),
        ("Remarks", _GOOD),
        ("Description", 0.7),  # Salesforce Lead.Description is the free-text note on the lead
    ),
}

# Headers that are recognised on purpose but have no canonical field: secondary contact points (a lead has one
# email/phone), other people's names (owners), record ids and CRM bookkeeping. They go to ``custom`` and value
# sniffing must not pull them into a field (``Email 2`` is full of emails, ``Lead Owner`` of person names).
_IGNORED_HEADERS: Final[tuple[str, ...]] = (
    # secondary contact points and company-level social links
    "Email 2",
    "Secondary Email",
    "Tertiary Email",
    "Additional email addresses",
    "Phone 2",
    "Home Phone",
    "Other Phone",
    "Fax",
    "Company Linkedin Url",
    "Facebook Url",
    "Twitter Url",
    "Logo Url",
    "Company Address",  # Apollo: "City, State, Country" in one cell, not a street
    # record ids, owners and dates
    "Index",
    "Id",
    "Record ID",
    "Customer Id",
    "Account Id",
    "User Id",
    "Organization Id",
    "Apollo Account Id",
    "Apollo Contact Id",
    "Primary Associated Company ID",
    "Lead Owner",
    "Contact owner",
    "Account Owner",
    "Owner.Name",
    "Subscription Date",
    "Create Date",
    "Last Activity Date",
    "Connected On",
    "Date of birth",
    # Apollo bookkeeping, enrichment and engagement columns
    "Account Stage",
    "Stage",
    "Lists",
    "Keywords",
    "SEO Description",
    "Short Description",
    "Technologies",
    "Total Funding",
    "Latest Funding",
    "Latest Funding Amount",
    "Last Raised At",
    "Number of Retail Locations",
    "SIC Codes",
    "Founded Year",
    "Email Status",
    "Email Confidence",
    "Catch-all Status",
    "Email Last Verified At",
    "Primary Email Source",
    "Primary Email Catch-all Status",
    "Primary Email Last Verified At",
    "Secondary Email Source",
    "Tertiary Email Source",
    "Last Contacted",
    "Email Sent",
    "Email Open",
    "Email Bounced",
    "Replied",
    "Demoed",
    "User Managed",
    "Primary Intent Topic",
    "Primary Intent Score",
    "Secondary Intent Topic",
    "Secondary Intent Score",
    # HubSpot
    "Lead Status",
    # Salesforce Lead standard and common custom fields
    "IsDeleted",
    "MasterRecordId",
    "Salutation",
    "MiddleName",
    "Suffix",
    "RecordTypeId",
    "Latitude",
    "Longitude",
    "GeocodeAccuracy",
    "Status",
    "Rating",
    "CurrencyIsoCode",
    "OwnerId",
    "HasOptedOutOfEmail",
    "IsConverted",
    "ConvertedDate",
    "ConvertedAccountId",
    "ConvertedContactId",
    "ConvertedOpportunityId",
    "IsUnreadByOwner",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "DoNotCall",
    "HasOptedOutOfFax",
    "LastTransferDate",
    "Jigsaw",
    "JigsawContactId",
    "EmailBouncedReason",
    "EmailBouncedDate",
    "IndividualId",
    "Pronouns",
    "GenderIdentity",
    "AreaCode__c",
    "Brand__c",
    "CompanyType__c",
    "ContactType__c",
    "LeadType__c",
    "Product__c",
    "Region__c",
    "CorporateNumber__c",
    # datablist samples
    "Deal Stage",
    "Founded",
    "Sex",
)

# Words that disqualify an *unrecognised* header from being mapped by value sniffing alone: they mark a
# secondary value, somebody else's data, an identifier or a company-level social link.
_NO_SNIFF_TOKENS_TEXT: Final = """
    2 3 4 secondary tertiary other additional alternate alt home personal fax owner id ids facebook
    twitter instagram youtube logo image photo avatar date
"""
_NO_SNIFF_TOKENS: Final[frozenset[str]] = frozenset(_NO_SNIFF_TOKENS_TEXT.split())

_COMPANY_CONTEXT: Final[frozenset[str]] = frozenset(
    {
        "industry",
        "industries",
        "founded",
        "founded year",
        "year founded",
        "# employees",
        "number of employees",
        "employees",
        "employee count",
        "organization id",
        "annual revenue",
        "revenue",
        "sic codes",
        "headcount",
    }
)
_PERSON_CONTEXT: Final[frozenset[str]] = frozenset(
    {
        "first name",
        "last name",
        "email",
        "email address",
        "title",
        "job title",
        "position",
        "mobile phone",
        "date of birth",
    }
)
_PERSON_FILE_FIELDS: Final[frozenset[str]] = frozenset(
    {"first_name", "last_name", "email", "title", "mobile_phone", "company"}
)
"""The fields of columns beside which a ``Name`` column is a person's, in any language (``メールアドレス``, ``会社名``):
a file of companies has no company column beside their names."""
_LINKEDIN_CONTEXT: Final[frozenset[str]] = frozenset({"connected on"})
_GENERIC_URL_HEADERS: Final[frozenset[str]] = frozenset({"url", "profile url"})


@dataclass(frozen=True)
class _Synonym:
    field: str
    confidence: float
    preference: int
    text: str


def _build_index() -> dict[str, _Synonym]:
    """Normalised header -> synonym, failing loudly at import time if the table maps one header twice."""
    index: dict[str, _Synonym] = {}
    for field, synonyms in _SYNONYMS.items():
        if field not in MAPPED_FIELDS:
            raise AssertionError(f"synonym table names unknown field {field!r}")
        for preference, (text, confidence) in enumerate(synonyms):
            key = _normalize_header(text)
            if key in index:
                raise AssertionError(f"synonym {text!r} is listed for both {index[key].field!r} and {field!r}")
            index[key] = _Synonym(field, confidence, preference, text)
    return index


_INDEX: Final[dict[str, _Synonym]] = _build_index()
_IGNORED: Final[frozenset[str]] = frozenset(_normalize_header(h) for h in _IGNORED_HEADERS)

# ----------------------------------------------------------------------------------------------------
# Value sniffing
# ----------------------------------------------------------------------------------------------------

_EMAIL_RE: Final = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^\W\d_]{2,}")
_URL_RE: Final = re.compile(r"(?:https?://\S+|www\.[^\s/]+\.[a-z]{2,}\S*)", re.IGNORECASE)
_DOMAIN_RE: Final = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,24}/?", re.IGNORECASE)
_LINKEDIN_PROFILE_RE: Final = re.compile(
    r"(?:https?://)?(?:[a-z]{2,3}\.)?linkedin\.com/(?:in|pub)/[^/\s?#]+", re.IGNORECASE
)
_PHONE_RE: Final = re.compile(r"\+?[\d\s().\-/]{7,}(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?", re.IGNORECASE)
_DATE_RE: Final = re.compile(r"\d{4}-\d{1,2}-\d{1,2}\b|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
_DECIMAL_RE: Final = re.compile(r"-?\d+(?:[.,]\d+)?")
_EXTENSION_RE: Final = re.compile(r"\s*(?:x|ext\.?|#)\s*", re.IGNORECASE)
_COMPANY_MARKERS_TEXT: Final = """
    inc llc ltd plc gmbh corp corporation co company group sons and & ag sa bv nv llp lp limited
    holdings partners associates solutions services systems technologies university bank
"""
_COMPANY_MARKERS: Final[frozenset[str]] = frozenset(_COMPANY_MARKERS_TEXT.split())
_PERSON_TOKEN_RE: Final = re.compile(r"[^\W\d_][^\W\d_'\u2019.\-]*(?:['\u2019\-][^\W\d_]+)*\.?")
_FAMILY_FIRST_NAME_RE: Final = re.compile(
    f"[{FAMILY_NAME_FIRST}]{{2,4}}|[{FAMILY_NAME_FIRST}]{{1,3}} [{FAMILY_NAME_FIRST}]{{1,3}}"
)
_HAN: Final = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002fa1f"
_JAPANESE_NAME_RE: Final = re.compile(f"[{_HAN}][{_HAN}\u3005\u3041-\u3096\u30a1-\u30fa\u30fc]{{2,4}}")
"""A Japanese name written without a space: a family name in Han, then the given name in Han or kana, three to
five characters (山田太郎, 佐々木希, 中村さくら). Two Han characters are more often a brand (日立, 百度) than a name."""
_CJK_COMPANY_WORDS_RE: Final = re.compile(
    "会社|公司|集团|集團|控股|商事|商店|工業|工业|産業|产业|製作所|電機|电机|電器|电器|電気|電子|电子|科技|技術|技术"
    "|銀行|银行|証券|证券|保険|保险|建設|建设|物産|興業|食品|製薬|化学|化工|自動車|汽车|重工|不動産|房地产"
    "|大学|大學|学院|學院|病院|医院|醫院|研究所|事務所|法人|協会|协会|組合|グループ|ホールディングス"
    "|주식회사|회사|[社店]$|그룹$|전자$|은행$|대학교$"
)
"""Words of a company's name in Chinese, Japanese or Korean (its legal form, trade or kind of institution): a value
of a person name's length holding one (山田商事, 高橋電機, 腾讯科技) is the company's."""

# A few hundred frequent given names (US/UK/EU/Latin/Indian). Deliberately small: it only needs to tell a
# column of first names from one of cities or products, and is never used to *lower* a header's confidence.
_FIRST_NAMES_TEXT: Final = """
    aaron abigail adam adrian aisha alan albert alex alexander alexandra alexis alice alicia alison
    allison amanda amber amy ana andrea andrew angela angelica anita ann anna anne annette anthony
    antonio april arjun ashley barbara ben benjamin beth betty beverly bill billy bob bobby bonnie brad
    bradley brandon brenda brent brett brian brittany bruce bryan caleb calvin cameron carl carla carlos
    carmen carol caroline carolyn carrie casey catherine charles charlotte chad cheryl chris christian
    christina christine christopher cindy claire clara colin connie courtney craig crystal curtis
    cynthia daisy dale dan dana daniel danielle darren david dawn dean deborah debra denise dennis derek
    diana diane dominic don donald donna doris dorothy douglas dustin dylan earl ed edward elaine elena
    elizabeth ella ellen emily emma eric erica erik erin ethan eugene eva evan evelyn felix fernando
    frances francis frank gabriel gail gary gene george gerald gina glen glenn gloria gordon grace greg
    gregory hannah harold harry heather helen henry holly howard ian isaac isabel isabella jack jackie
    jacob jacqueline james jamie jan jane janet janice jason javier jay jean jeff jeffrey jenna jennifer
    jenny jeremy jerry jesse jessica jesus jill jim jimmy joan joanne joe joel john johnny jon jonathan
    jordan jorge jose joseph josh joshua joy joyce juan judith judy julia julie justin karen katherine
    kathleen kathryn kathy katie kayla keith kelly kenneth kevin kim kimberly kristen kristin kurt kyle
    larry laura lauren lawrence leah lee leon leslie linda lisa logan lori louis lucas lucy luis luke
    lynn madison manuel marco margaret maria marie marilyn mario mark martha martin mary matthew megan
    melanie melissa mia michael michele michelle miguel mike mildred monica nancy natalie nathan neil
    nicholas nicole noah norma olivia oscar pamela patricia patrick paul paula pedro peggy peter philip
    phillip priya rachel rahul ralph randy raymond rebecca regina renee ricardo richard rick ricky rita
    robert roberto robin rodney roger ronald rose roy ruby russell ruth ryan sabrina sam samantha samuel
    sandra sara sarah scott sean sergio seth shannon sharon shawn sheila shirley sophia stacy stephanie
    stephen steve steven susan suzanne sydney tammy tanya tara taylor teresa terry theresa thomas
    tiffany tim timothy tina todd tom tommy tony tracy travis troy tyler valerie vanessa victor victoria
    vincent virginia walter wanda wayne wendy william willie yolanda zachary
"""
_FIRST_NAMES: Final[frozenset[str]] = frozenset(_FIRST_NAMES_TEXT.split())

# Countries pycountry spells differently from everyday usage (and from Faker/Apollo data).
_COUNTRY_ALIASES: Final[frozenset[str]] = frozenset(
    {
        "usa",
        "us",
        "u.s.",
        "u.s.a.",
        "america",
        "united states of america",
        "uk",
        "u.k.",
        "great britain",
        "britain",
        "england",
        "scotland",
        "wales",
        "northern ireland",
        "russia",
        "south korea",
        "north korea",
        "korea",
        "vietnam",
        "syria",
        "iran",
        "laos",
        "bolivia",
        "venezuela",
        "tanzania",
        "moldova",
        "czech republic",
        "ivory coast",
        "macedonia",
        "swaziland",
        "palestine",
        "taiwan",
        "turkey",
        "cape verde",
        "micronesia",
        "vatican",
        "vatican city",
        "holy see (vatican city state)",
        "libyan arab jamahiriya",
        "burma",
        "east timor",
        "the netherlands",
        "holland",
        "uae",
        "brunei",
        "congo",
        "democratic republic of the congo",
        "saint martin",
        "st. lucia",
        "reunion",
        "curacao",
        "falkland islands (malvinas)",
        "svalbard & jan mayen islands",
        "saint helena",
        "bouvet island (bouvetoya)",
        "antarctica (the territory south of 60 deg s)",
        "british indian ocean territory (chagos archipelago)",
        "slovakia (slovak republic)",
        "kyrgyz republic",
        "lao people's democratic republic",
        "pitcairn islands",
        "united states minor outlying islands",
        "netherlands antilles",
        "korea, south",
        "korea, north",
    }
)


@functools.cache
def _country_names() -> frozenset[str]:
    """Casefolded names, official/common names and alpha-2/alpha-3 codes of every country, loaded once.

    pycountry parses its JSON database on first use (tens of milliseconds), hence the cache.
    """
    import pycountry

    names: set[str] = set(_COUNTRY_ALIASES)
    for country in [*pycountry.countries, *pycountry.historic_countries]:
        for attribute in ("name", "official_name", "common_name", "alpha_2", "alpha_3"):
            value = getattr(country, attribute, None)
            if isinstance(value, str) and value:
                names.add(value.casefold())
                if "," in value:
                    names.add(value.split(",", 1)[0].casefold())
    return frozenset(names)


@dataclass(frozen=True)
class _ValueStats:
    """What the sampled values of one column look like; shares are over non-empty values."""

    non_empty: int
    fill: float
    email: float
    phone: float
    url: float
    linkedin: float
    domain: float
    country: float
    first_name: float
    person_name: float
    japanese_name: float
    """Values of a Japanese name's shape that ``person_name`` does not count: a person's or a short company's."""

    @property
    def has_evidence(self) -> bool:
        """Too few values prove nothing; three keeps a tiny preview file useful without trusting one cell."""
        return self.non_empty >= 3

    @property
    def website(self) -> float:
        """URLs that are not LinkedIn profiles: a column of profile links is not a company website."""
        return max(0.0, self.url - self.linkedin)


def _phone_score(value: str) -> float:
    """1 for a formatted phone number, 0.5 for a bare digit string (could as well be an id or an amount)."""
    if value.isdigit():
        return 0.5 if 7 <= len(value) <= 15 else 0.0
    if _DATE_RE.match(value) or _DECIMAL_RE.fullmatch(value) or not _PHONE_RE.fullmatch(value):
        return 0.0
    digits = sum(ch.isdigit() for ch in _EXTENSION_RE.split(value, maxsplit=1)[0])
    return 1.0 if 7 <= digits <= 15 else 0.0


def contact_kind(value: str) -> str | None:
    """ "an email address" or "a phone number" if the value is one (a phone written with its country code or
    at least 10 digits: a bare digit string or "2023-2024" may be a column's name), else None. A header cell
    that is one is a person's data, read as a header when a file's rows are wider than its header row."""
    value = value.strip().lstrip("'").strip()
    if "@" in value:
        return "an email address" if _EMAIL_RE.fullmatch(value) else None
    if _phone_score(value) == 1.0 and (value.startswith("+") or sum(ch.isdigit() for ch in value) >= 10):
        return "a phone number"
    return None


_LEGAL_FORMS_TEXT: Final = "inc llc ltd plc gmbh corp co ag sa bv nv llp lp limited srl sarl spa pty oy ab as"
_LEGAL_FORMS: Final[frozenset[str]] = frozenset(_LEGAL_FORMS_TEXT.split())


def _data_kind(cell: str) -> str | None:
    """What a header cell is when it is a value, by the sniffing that maps the columns (a given name, a country, a
    number or date, a web address, a company with its legal form), else None. Kept narrower than the column
    sniffing: a header cell is one value, not a column's share, so person-name shapes ("Job Title") and bare
    country codes ("ID", "CA") are left out."""
    value = cell.strip().lstrip("'").strip()
    folded = value.casefold()
    tokens = folded.replace(",", " ").split()
    if not tokens:
        return None
    if value[0].isdigit() or value[0] in "+(-":
        if _DATE_RE.match(value):
            return "a date"
        return "a number" if _DECIMAL_RE.fullmatch(value) or _phone_score(value) else None
    if _URL_RE.fullmatch(value):
        return "a web address"
    if len(folded) > 3 and folded in _country_names():
        return "a country"
    if tokens[0] in _FIRST_NAMES and not any(t in _NO_SNIFF_TOKENS for t in tokens):
        return "a person's name"
    if len(tokens) > 1 and tokens[-1].strip(".") in _LEGAL_FORMS:
        return "a company name"
    return None


_WEAK_DATA_KINDS: Final = frozenset({"a number", "a date"})


def data_row_header(headers: Sequence[str]) -> tuple[int, str] | None:
    """(column, what) of a header cell that is a value, when the header row reads as a data row: more of its cells
    are values (a given name, a country, a web address, a company) than are column names the mapping knows, or
    none is a known name and one is a value (numbers and dates too: "2023-2024" next to "Name" is a column's name,
    a row of numbers alone is not a header). A file without a
    header row has its first person's row read as the header: her name would be the import's column names, kept in
    ``imports.mapping`` and as custom-field names, where privacy export and erasure do not look for it."""
    known = 0
    values: list[tuple[int, str]] = []
    for position, header in enumerate(headers, start=1):
        norm = _normalize_header(header)
        if (
            norm in _INDEX
            or norm in _IGNORED
            or header.startswith(CUSTOM_PREFIX)
            or header in _EXPORT_COLUMNS
            or _NO_SNIFF_TOKENS.intersection(norm.split())
        ):
            known += 1
        elif (kind := _data_kind(header)) is not None:
            values.append((position, kind))
    strong = [value for value in values if value[1] not in _WEAK_DATA_KINDS]
    if strong and len(strong) > known:
        return strong[0]
    return values[0] if values and not known else None


def _looks_like_person_name(value: str) -> bool:
    """Two to four capitalised name-like words and no company marker (``Inc``, ``Group``, ``and``...)."""
    if any(ch.isdigit() for ch in value) or "," in value or "@" in value:
        return False
    tokens = value.split()
    if not 2 <= len(tokens) <= 4:
        return False
    if any(token.casefold().strip(".") in _COMPANY_MARKERS for token in tokens):
        return False
    if tokens[0].casefold() in _FIRST_NAMES:
        return True
    return all(_PERSON_TOKEN_RE.fullmatch(token) and token[0].isupper() for token in tokens)


@functools.cache
def _chinese_name_parser() -> Parser:
    return parser_for(locales.ZH)


@functools.lru_cache(maxsize=1 << 12)
def _looks_like_family_first_name(value: str) -> bool:
    """A Chinese, Japanese or Korean name, which the test of Latin names (capitals) never passed: family and given
    name apart (山田 花子), or written together with a family name nameparser knows first (王伟, 欧阳娜娜, 김민준; 华为
    too, whose 华 is one: the column's share decides), without a word of a company's name (高橋電機)."""
    if not _FAMILY_FIRST_NAME_RE.fullmatch(value) or _CJK_COMPANY_WORDS_RE.search(value):
        return False
    parsed = _chinese_name_parser().parse(value)
    return " " in value or bool(parsed.given and parsed.family)


def _looks_like_japanese_name(value: str) -> bool:
    """The shape of a Japanese name written without a space (山田太郎, 佐藤花子), whose family name no list of
    nameparser's knows (it has Chinese ones): a person's, or a company's written as short (富士通). Such values
    alone do not say which: the other columns decide (:func:`_name_candidates`)."""
    return bool(_JAPANESE_NAME_RE.fullmatch(value)) and not _CJK_COMPANY_WORDS_RE.search(value)


def _sniff(values: Sequence[str], total_rows: int) -> _ValueStats:
    """Classify every non-empty value once with cheap checks, each guarded by a substring test."""
    countries = _country_names()
    n = email = url = linkedin = domain = country = first = person = japanese = 0
    phone = 0.0
    for raw in values:
        value = raw.strip().lstrip("'").strip()  # Apollo prefixes phones with ' to stop Excel formulas
        if not value:
            continue
        n += 1
        folded = value.casefold()
        if "@" in value:
            email += bool(_EMAIL_RE.fullmatch(value))
            continue
        if "." in value:
            if "linkedin.com" in folded:
                linkedin += bool(_LINKEDIN_PROFILE_RE.match(value))
                url += 1
                continue
            if _URL_RE.fullmatch(value):
                url += 1
                continue
            if _DOMAIN_RE.fullmatch(value) and not value[0].isdigit():
                domain += 1
                url += 1
                continue
        if value[0].isdigit() or value[0] in "+(":
            phone += _phone_score(value)
            continue
        if folded in countries:
            country += 1
        if " " in value:
            person += _looks_like_person_name(value) or _looks_like_family_first_name(value)
        elif folded in _FIRST_NAMES:
            first += 1
        elif _looks_like_family_first_name(value):
            person += 1
        else:
            japanese += _looks_like_japanese_name(value)
    if n == 0:
        return _ValueStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return _ValueStats(
        non_empty=n,
        fill=n / total_rows if total_rows else 0.0,
        email=email / n,
        phone=phone / n,
        url=url / n,
        linkedin=linkedin / n,
        domain=domain / n,
        country=country / n,
        first_name=first / n,
        person_name=person / n,
        japanese_name=japanese / n,
    )


# field -> (stats attribute, description for the reason text, may lower the header's confidence).
# first_name/full_name only confirm: a short name list or a Latin-script shape test must not penalise names
# it does not know.
_SNIFFERS: Final[dict[str, tuple[str, str, bool]]] = {
    "email": ("email", "emails", True),
    "phone": ("phone", "phone numbers", True),
    "mobile_phone": ("phone", "phone numbers", True),
    "website": ("website", "website URLs", True),
    "linkedin_url": ("linkedin", "LinkedIn profile URLs", True),
    "company_domain": ("domain", "domains", True),
    "country": ("country", "countries", True),
    "first_name": ("first_name", "first names", False),
    "full_name": ("person_name", "person names", False),
}

# Order matters only for the reason text; the thresholds keep a few odd cells from mapping a column.
_SNIFF_ONLY: Final[tuple[tuple[str, float, float], ...]] = (
    # field, minimum share, confidence factor
    ("email", 0.5, 1.0),
    ("linkedin_url", 0.5, 1.0),
    ("website", 0.6, 0.9),
    ("phone", 0.6, 0.9),
    ("country", 0.7, 0.9),
    ("first_name", 0.6, 0.8),
)


@dataclass(frozen=True)
class _Candidate:
    field: str
    confidence: float
    preference: int
    reason: str


_NO_PREFERENCE: Final = 1_000


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


def _weigh(confidence: float, share: float, lowers: bool) -> float:
    """Combine a header's confidence with the share of values that fit its field.

    A good share pulls the confidence towards 1; a poor share (below half) pulls it towards a fifth of the
    header's value, so ``Email`` full of ``yes``/``no`` still shows up but loses to a column of real emails.
    """
    if share >= 0.5 or not lowers:
        return confidence + (1.0 - confidence) * share * 0.5
    return confidence * (0.2 + 1.6 * share)


def _header_candidate(column: str, synonym: _Synonym, stats: _ValueStats | None) -> _Candidate:
    reason = f"header synonym {column.strip()!r}"
    confidence = synonym.confidence
    sniffer = _SNIFFERS.get(synonym.field)
    if stats is not None and stats.has_evidence and sniffer is not None:
        attribute, what, lowers = sniffer
        share = float(getattr(stats, attribute))
        confidence = _weigh(confidence, share, lowers)
        if share >= 0.5:
            reason += f"; {_percent(share)} of sampled values look like {what}"
        elif lowers:
            reason += f"; only {_percent(share)} of sampled values look like {what}"
    return _Candidate(synonym.field, confidence, synonym.preference, reason)


def _name_candidates(
    column: str, synonym: _Synonym, stats: _ValueStats | None, headers: frozenset[str]
) -> list[_Candidate]:
    """``Name`` is a person in contacts and a company in organisation lists: values decide, else context.

    Japanese names written without a space (山田太郎) look as much like short company names (富士通): a column of
    them is the full name only beside a person's columns (``Email``, ``Title``...) or another company column,
    with less confidence than names the values alone tell."""
    company_pref = len(_SYNONYMS["company"])
    if stats is not None and stats.has_evidence:
        share = stats.person_name + stats.first_name
        if share >= 0.5:
            confidence = _weigh(synonym.confidence, share, lowers=False)
            reason = f"header {column.strip()!r}; {_percent(share)} of sampled values look like person names"
            return [_Candidate("full_name", confidence, synonym.preference, reason)]
        beside = {_INDEX[header].field for header in headers if header in _INDEX}
        if share + stats.japanese_name >= 0.5 and beside & _PERSON_FILE_FIELDS:
            share += stats.japanese_name
            confidence = _weigh(synonym.confidence, share / 2, lowers=False)
            columns = "a company column" if "company" in beside else "a person's columns (email, title...)"
            reason = (
                f"header {column.strip()!r}; {_percent(share)} of sampled values look like Chinese, Japanese or "
                f"Korean names (or short company names), beside {columns}"
            )
            return [_Candidate("full_name", confidence, synonym.preference, reason)]
        reason = f"header {column.strip()!r}; {_percent(share)} of sampled values look like person names"
        return [_Candidate("company", 0.6 + 0.3 * (1.0 - share), company_pref, reason)]
    if headers & _COMPANY_CONTEXT and not headers & _PERSON_CONTEXT:
        reason = f"header {column.strip()!r} next to company columns (industry, employees...), no person columns"
        return [_Candidate("company", 0.75, company_pref, reason)]
    return [_header_candidate(column, synonym, stats)]


def _url_candidates(
    column: str, synonym: _Synonym, stats: _ValueStats | None, headers: frozenset[str]
) -> list[_Candidate]:
    """A bare ``URL`` is a profile in LinkedIn exports, a website elsewhere: values decide, else context."""
    linkedin_pref = len(_SYNONYMS["linkedin_url"])
    if stats is not None and stats.has_evidence and (stats.linkedin or stats.url):
        if stats.linkedin >= 0.5:
            share = _percent(stats.linkedin)
            reason = f"header {column.strip()!r}; {share} of sampled values are LinkedIn profiles"
            return [_Candidate("linkedin_url", 0.7 + 0.25 * stats.linkedin, linkedin_pref, reason)]
        return [_header_candidate(column, _INDEX["website"] if synonym.field == "website" else synonym, stats)]
    if headers & _LINKEDIN_CONTEXT:
        reason = f"header {column.strip()!r} in a LinkedIn connections export ('Connected On' column)"
        return [_Candidate("linkedin_url", _GOOD, linkedin_pref, reason)]
    return [_header_candidate(column, synonym, stats)]


def _sniff_candidates(stats: _ValueStats | None) -> list[_Candidate]:
    """Fields an unrecognised column can be mapped to on its values alone, confidence = sniffed share."""
    if stats is None or not stats.has_evidence:
        return []
    candidates: list[_Candidate] = []
    for field, minimum, factor in _SNIFF_ONLY:
        attribute, what, _ = _SNIFFERS[field]
        share = float(getattr(stats, attribute))
        if share >= minimum:
            reason = f"{_percent(share)} of sampled values look like {what}"
            candidates.append(_Candidate(field, share * factor, _NO_PREFERENCE, reason))
    return candidates


def _fill_factor(candidate: _Candidate, stats: _ValueStats | None) -> _Candidate:
    """Nudge mostly-empty columns down so that, of two equal headers, the one with data wins."""
    if stats is None:
        return candidate
    factor = 0.9 + 0.1 * stats.fill
    if factor >= 1.0:
        return candidate
    reason = candidate.reason + (
        "; no sampled values" if stats.non_empty == 0 else f"; {_percent(stats.fill)} of rows filled"
    )
    return _Candidate(candidate.field, candidate.confidence * factor, candidate.preference, reason)


def _column_values(sample_rows: Sequence[Sequence[str]], index: int) -> list[str]:
    return [row[index] for row in sample_rows if index < len(row) and isinstance(row[index], str)]


def header_field(header: str) -> str | None:
    """The field a column is mapped to by its header alone (``Phone 1``: phone), whatever its values."""
    synonym = _INDEX.get(_normalize_header(header))
    return synonym.field if synonym is not None else None


_LEFT_OUT_REASON: Final = "bookkeeping column of `leads bulk export` (id, list, stage, ...): left out, not imported"


_EXPORT_COLUMNS: Final = frozenset((*BOOKKEEPING_COLUMNS, *SHOWN_FIELDS))
"""The columns ``leads bulk export`` writes, its ``custom.`` ones aside."""


def left_out_columns(headers: Sequence[str]) -> frozenset[str]:
    """The columns an import leaves out when they are not mapped to a field: the bookkeeping columns of a file
    ``leads bulk export`` wrote, as it spells them. Kept as custom fields, they made an unchanged export imported
    back update every lead; another file's "id" or "tags" is still kept in custom. A file is an export when it has
    all of them, or, trimmed in a spreadsheet, when it has nothing but the export's columns (the bookkeeping ones,
    the lead fields, ``custom.`` ones) and at least half of its lead fields: a file of another tool that spells a
    few columns as the export does ("id", "email", "tags") has columns of its own or few of the fields."""
    present = set(headers)
    if set(BOOKKEEPING_COLUMNS) <= present:
        return frozenset(BOOKKEEPING_COLUMNS)
    ours = all(h in _EXPORT_COLUMNS or h.startswith(CUSTOM_PREFIX) for h in present)
    if ours and 2 * len(present & set(SHOWN_FIELDS)) >= len(SHOWN_FIELDS):
        return frozenset(present & set(BOOKKEEPING_COLUMNS))
    return frozenset()


def unmapped_labels(headers: Sequence[str]) -> dict[str, str]:
    """What becomes of each column when it is mapped to no field, as the dry run's table and ``batch_leads``'
    mapping metadata show it: "(left out)" for an export's bookkeeping columns (``left_out_columns``), "(custom)"
    for the others, kept as custom fields. Both showed "(custom)" beside the reason "left out, not imported"."""
    left_out = left_out_columns(headers)
    return {header: "(left out)" if header in left_out else "(custom)" for header in headers}


def suggest_mapping(headers: Sequence[str], sample_rows: Sequence[Sequence[str]]) -> MappingSuggestion:
    """Suggest a canonical field (or ``None`` for ``custom``) for every column of an imported file.

    ``headers`` is the file's header row as read; ``sample_rows`` a few hundred data rows (may be empty;
    ragged rows are fine). The result is deterministic: same input, same suggestion.
    """
    normalized = [_normalize_header(header) for header in headers]
    context = frozenset(normalized)
    left_out = left_out_columns(headers)
    stats_by_column: list[_ValueStats | None] = [
        _sniff(_column_values(sample_rows, index), len(sample_rows)) if sample_rows else None
        for index in range(len(headers))
    ]

    candidates: list[tuple[_Candidate, int]] = []
    fallbacks: dict[int, ColumnSuggestion] = {}
    for index, (header, norm, stats) in enumerate(zip(headers, normalized, stats_by_column, strict=True)):
        synonym = _INDEX.get(norm)
        column_candidates: list[_Candidate]
        if header in left_out:
            fallbacks[index] = ColumnSuggestion(header, None, 1.0, _LEFT_OUT_REASON)
            continue
        if header.startswith(CUSTOM_PREFIX):
            fallbacks[index] = ColumnSuggestion(header, None, 1.0, f"custom field {header[len(CUSTOM_PREFIX) :]!r}")
            continue
        if synonym is not None and norm == "name":
            column_candidates = _name_candidates(header, synonym, stats, context)
        elif synonym is not None and norm in _GENERIC_URL_HEADERS:
            column_candidates = _url_candidates(header, synonym, stats, context)
        elif synonym is not None:
            column_candidates = [_header_candidate(header, synonym, stats)]
            if synonym.field == "website" and stats is not None and stats.has_evidence and stats.linkedin >= 0.5:
                reason = f"{_percent(stats.linkedin)} of sampled values are LinkedIn profiles"
                column_candidates.append(_Candidate("linkedin_url", stats.linkedin * 0.9, _NO_PREFERENCE, reason))
        elif norm in _IGNORED:
            fallbacks[index] = ColumnSuggestion(header, None, 0.9, "known column without a canonical field")
            continue
        elif not norm or _NO_SNIFF_TOKENS.intersection(norm.split()):
            fallbacks[index] = ColumnSuggestion(
                header, None, 0.8, "secondary, owner, id or date column: kept in custom"
            )
            continue
        else:
            column_candidates = _sniff_candidates(stats)
            if not column_candidates:
                sure = 0.5 if stats is None or not stats.has_evidence else 0.7
                fallbacks[index] = ColumnSuggestion(header, None, sure, "no header synonym or recognisable values")
                continue
        candidates.extend((_fill_factor(candidate, stats), index) for candidate in column_candidates)

    return MappingSuggestion(_resolve(headers, candidates, fallbacks))


def _resolve(
    headers: Sequence[str], candidates: list[tuple[_Candidate, int]], fallbacks: dict[int, ColumnSuggestion]
) -> tuple[ColumnSuggestion, ...]:
    """Greedy assignment: best confidence first, then synonym preference, then file order."""
    candidates.sort(key=lambda item: (-round(item[0].confidence, 6), item[0].preference, item[1]))
    won: dict[int, ColumnSuggestion] = {}
    winner_of: dict[str, tuple[int, float]] = {}
    first_loss: dict[int, tuple[_Candidate, int, float]] = {}
    for candidate, index in candidates:
        if index in won:
            continue
        if candidate.field in winner_of:
            winner_index, winner_confidence = winner_of[candidate.field]
            first_loss.setdefault(index, (candidate, winner_index, winner_confidence))
            continue
        confidence = round(min(1.0, max(0.0, candidate.confidence)), 3)
        won[index] = ColumnSuggestion(headers[index], candidate.field, confidence, candidate.reason)
        winner_of[candidate.field] = (index, confidence)

    result: list[ColumnSuggestion] = []
    for index, header in enumerate(headers):
        if index in won:
            result.append(won[index])
        elif index in first_loss:
            lost, winner_index, winner_confidence = first_loss[index]
            reason = (
                f"{lost.field} taken by {headers[winner_index]!r} "
                f"({winner_confidence:.2f} vs {lost.confidence:.2f}); {lost.reason}"
            )
            result.append(ColumnSuggestion(header, None, winner_confidence, reason))
        else:
            result.append(fallbacks[index])
    return tuple(result)


# ----------------------------------------------------------------------------------------------------
# Mapping files and overrides
# ----------------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: PyYAML would silently keep the last one and hide a typo."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _closest(word: str, choices: Sequence[str]) -> str | None:
    by_fold = {choice.casefold(): choice for choice in choices}
    if word.casefold() in by_fold:
        return by_fold[word.casefold()]
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not matches:
        matches = difflib.get_close_matches(word.casefold(), list(by_fold), n=1, cutoff=0.6)
        return by_fold[matches[0]] if matches else None
    return matches[0]


def _validate(source: str, entries: Mapping[Any, Any], headers: Sequence[str]) -> dict[str, str | None]:
    """Check every entry of a mapping file / override set; messages name the source, the key and the fix."""
    result: dict[str, str | None] = {}
    used: dict[str, str] = {}
    for key, value in entries.items():
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise ConfigurationError(
                f'{source}: key {key!r} must be a CSV column name (quote it in YAML, e.g. "{key}": email)'
            )
        column = str(key)
        if column not in headers:
            hint = _closest(column, headers)
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigurationError(
                f"{source}: column {column!r} is not in the file's header.{did_you_mean} "
                f"Expected one of: {', '.join(repr(h) for h in headers)}"
            )
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(
                f"{source}: column {column!r} is mapped to {value!r}; expected a canonical field name "
                "or null (keep the column in custom)"
            )
        if value is not None and value not in MAPPED_FIELDS:
            hint = _closest(value, MAPPED_FIELDS)
            did_you_mean = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigurationError(
                f"{source}: column {column!r} is mapped to unknown field {value!r}.{did_you_mean} "
                f"Expected one of: {', '.join(MAPPED_FIELDS)}, or null to keep the column in custom"
            )
        if value is not None:
            if value in used:
                raise ConfigurationError(
                    f"{source}: columns {used[value]!r} and {column!r} are both mapped to field {value!r}; "
                    "a field takes one column, map the other to null"
                )
            used[value] = column
        result[column] = value
    return result


def load_mapping_file(path: Path, headers: Sequence[str]) -> dict[str, str | None]:
    """Read a YAML mapping file and check it against the file being imported.

    Accepted shapes: ``{csv column: field or null}`` or the same under a top-level ``columns:`` key (room for
    other settings later). Returns only the file's entries, in file order; combine them with a suggestion via
    :func:`apply_overrides`. Raises :class:`ConfigurationError` naming the file and the offending key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read mapping file ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise ConfigurationError(f"{path}: mapping file is not UTF-8 text ({error.reason})") from error
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:  # PyYAML's text spans lines (a snippet and a caret): one line of it
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigurationError(
            f"{path}: invalid YAML in mapping file{at}: {getattr(error, 'problem', error)}"
        ) from error
    if data is None:
        data = {}
    if isinstance(data, dict) and "columns" in data and isinstance(data["columns"], dict | None):
        if len(data) > 1:
            extra = ", ".join(repr(k) for k in data if k != "columns")
            raise ConfigurationError(
                f"{path}: unexpected top-level key(s) {extra} next to 'columns'; expected only 'columns'"
            )
        data = data["columns"] or {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: expected a mapping of CSV column to canonical field (or null), "
            f"or {{columns: {{...}}}}; found {type(data).__name__}"
        )
    return _validate(str(path), data, headers)


def apply_overrides(suggestion: MappingSuggestion, overrides: Mapping[str, str | None]) -> dict[str, str | None]:
    """The suggestion with the user's explicit choices on top, as ``{csv column: field or None}``.

    Overrides are validated like a mapping file (known columns, canonical fields, one column per field). An
    override wins over the suggestion: a suggested column whose field is claimed by an override is moved to
    ``custom`` (``None``) so that the result still maps each field from at most one column.
    """
    headers = [column.column for column in suggestion.columns]
    checked = _validate("mapping overrides", overrides, headers)
    claimed = {field for field in checked.values() if field is not None}
    result: dict[str, str | None] = {}
    for column, field in suggestion.as_dict().items():
        if column in checked:
            result[column] = checked[column]
        else:
            result[column] = None if field in claimed else field
    return result
