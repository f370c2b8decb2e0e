"""Tests for automatic column detection (``leads_pipeline.lib.mapping``).

The expectations are checked against real export headers (Apollo, HubSpot, LinkedIn, Salesforce) and the
datablist sample files in ``shared/data`` next to the repository, both from the header alone and with sampled
values, because the importer calls ``suggest_mapping`` both ways (header-only preview, then with a sample).
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.fields import CANONICAL_FIELDS, SHOWN_FIELDS
from leads_pipeline.lib.mapping import (
    ColumnSuggestion,
    MappingSuggestion,
    apply_overrides,
    left_out_columns,
    load_mapping_file,
    suggest_mapping,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SAMPLE_ROWS = 200


def read_sample(path: Path, limit: int = SAMPLE_ROWS) -> tuple[list[str], list[list[str]]]:
    """Header and first rows of a CSV (gzip or not); skips preambles such as LinkedIn's ``Notes:`` block."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header: list[str] = []
        for row in reader:
            if sum(bool(cell.strip()) for cell in row) > 1:
                header = row
                break
        rows = [row for _, row in zip(range(limit), reader, strict=False)]
    assert header, f"no header row found in {path}"
    return header, rows


_APOLLO_CONTACTS = {
    "First Name": "first_name",
    "Last Name": "last_name",
    "Title": "title",
    "Company": "company",
    "Company Name for Emails": None,
    "Email": "email",
    "Email Status": None,
    "Seniority": "seniority",
    "Departments": "department",
    "Contact Owner": None,
    "Work Direct Phone": "phone",
    "Home Phone": None,
    "Mobile Phone": "mobile_phone",
    "Corporate Phone": None,
    "Other Phone": None,
    "Account Owner": None,
    "# Employees": "employee_count",
    "Industry": "industry",
    "Person Linkedin Url": "linkedin_url",
    "Website": "website",
    "Company Linkedin Url": None,
    "Facebook Url": None,
    "Twitter Url": None,
    "City": "city",
    "State": "state",
    "Country": "country",
    "Company Address": None,
    "Company City": None,
    "Company State": None,
    "Company Country": None,
    "Company Phone": None,
    "Annual Revenue": "annual_revenue",
    "Apollo Contact Id": None,
    "Apollo Account Id": None,
}
_SALESFORCE_LEADS = {
    "Id": None,
    "FirstName": "first_name",
    "LastName": "last_name",
    "Salutation": None,
    "Title": "title",
    "Company": "company",
    "Street": "street",
    "City": "city",
    "State": "state",
    "PostalCode": "postal_code",
    "Country": "country",
    "StateCode": None,
    "CountryCode": None,
    "Phone": "phone",
    "MobilePhone": "mobile_phone",
    "Fax": None,
    "Email": "email",
    "HasOptedOutOfEmail": None,
    "Website": "website",
    "Description": "notes",
    "LeadSource": "source",
    "Status": None,
    "Industry": "industry",
    "AnnualRevenue": "annual_revenue",
    "NumberOfEmployees": "employee_count",
    "OwnerId": None,
}

# file name -> {column: expected field}; every file in exports/ and datablist/ must be listed.
EXPECTED: dict[str, dict[str, str | None]] = {
    "apollo_accounts_export_no_owner.csv": {
        "Company": "company",
        "Company Name for Emails": None,
        "# Employees": "employee_count",
        "Industry": "industry",
        "Website": "website",
        "Company Linkedin Url": None,
        "Facebook Url": None,
        "Twitter Url": None,
        "Company Street": "street",
        "Company City": "city",
        "Company State": "state",
        "Company Country": "country",
        "Company Postal Code": "postal_code",
        "Company Phone": "phone",
        "Annual Revenue": "annual_revenue",
        "Total Funding": None,
        "Apollo Account Id": None,
        "Logo Url": None,
    },
    "apollo_contacts_export_header_a.csv": {**_APOLLO_CONTACTS, "First Phone": None},
    "apollo_contacts_export_header_b.csv": {**_APOLLO_CONTACTS, "First Phone": None},
    "apollo_contacts_export_header_c.csv": {
        **_APOLLO_CONTACTS,
        "Secondary Email": None,
        "Tertiary Email": None,
        "Primary Email Source": None,
    },
    "hubspot_contacts_export_header.csv": {
        "Record ID": None,
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "email",
        "Phone Number": "phone",
        "Contact owner": None,
        "Primary Associated Company ID": None,
        "Additional email addresses": None,
        "Associated Company": "company",
    },
    "linkedin_Connections_header.csv": {
        "First Name": "first_name",
        "Last Name": "last_name",
        "URL": "linkedin_url",
        "Email Address": "email",
        "Company": "company",
        "Position": "title",
        "Connected On": None,
    },
    "salesforce_Lead_data_export_header_a.csv": {
        **_SALESFORCE_LEADS,
        "Department__c": "department",
        "LinkedIn__c": "linkedin_url",
        "Region__c": None,
    },
    "salesforce_Lead_data_export_header_b.csv": _SALESFORCE_LEADS,
    "salesforce_leads_sample_jp.csv": {
        "Id": None,
        "Company": "company",
        "CorporateNumber__c": None,
        "Status": None,
        "Owner.Name": None,
    },
    "customers-100.csv": {
        "Index": None,
        "Customer Id": None,
        "First Name": "first_name",
        "Last Name": "last_name",
        "Company": "company",
        "City": "city",
        "Country": "country",
        "Phone 1": "phone",
        "Phone 2": None,
        "Email": "email",
        "Subscription Date": None,
        "Website": "website",
    },
    "leads-10000.csv.gz": {
        "Index": None,
        "Account Id": None,
        "Lead Owner": None,
        "First Name": "first_name",
        "Last Name": "last_name",
        "Company": "company",
        "Phone 1": "phone",
        "Phone 2": None,
        "Email 1": "email",
        "Email 2": None,
        "Website": "website",
        "Source": "source",
        "Deal Stage": None,
        "Notes": "notes",
    },
    "people-10000.csv.gz": {
        "Index": None,
        "User Id": None,
        "First Name": "first_name",
        "Last Name": "last_name",
        "Sex": None,
        "Email": "email",
        "Phone": "phone",
        "Date of birth": None,
        "Job Title": "title",
    },
    "organizations-10000.csv.gz": {
        "Index": None,
        "Organization Id": None,
        "Name": "company",
        "Website": "website",
        "Country": "country",
        "Description": "notes",
        "Founded": None,
        "Industry": "industry",
        "Number of employees": "employee_count",
    },
}
EXPECTED["customers-1000.csv"] = EXPECTED["customers-100.csv"]
EXPECTED["customers-10000.csv.gz"] = EXPECTED["customers-100.csv"]


def data_files() -> list[Path]:
    return sorted([*(SHARED_DATA / "exports").glob("*.csv"), *(SHARED_DATA / "datablist").glob("*.csv*")])


def test_every_shared_data_file_has_expectations() -> None:
    names = {path.name for path in data_files()}
    assert names, f"no data files found under {SHARED_DATA}"
    assert names == set(EXPECTED)


@pytest.mark.parametrize("with_values", [False, True], ids=["header-only", "with-values"])
@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_real_exports_map_important_columns(file_name: str, with_values: bool) -> None:
    path = next(p for p in data_files() if p.name == file_name)
    header, rows = read_sample(path)
    suggestion = suggest_mapping(header, rows if with_values else [])
    mapping = suggestion.as_dict()

    assert [c.column for c in suggestion.columns] == header
    missing = set(EXPECTED[file_name]) - set(header)
    assert not missing, f"expected columns not in {file_name}: {missing}"
    actual = {column: mapping[column] for column in EXPECTED[file_name]}
    assert actual == EXPECTED[file_name]

    fields = [c.field for c in suggestion.columns if c.field is not None]
    assert len(fields) == len(set(fields)), Counter(fields).most_common(3)
    for column in suggestion.columns:
        assert 0.0 <= column.confidence <= 1.0
        assert column.reason
        # every header of the real exports is covered by the tables: either mapped, a known custom-only
        # column, or a named loser of a conflict; nothing is left to chance
        if column.field is None:
            assert column.reason.startswith("known column") or " taken by " in column.reason, column


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email", "email"),
        ("Email 1", "email"),
        ("Email Address", "email"),
        ("E-mail", "email"),
        ("EMAIL_ADDRESS", "email"),
        ("Phone 1", "phone"),
        ("Phone", "phone"),
        ("Phone Number", "phone"),
        ("Work Direct Phone", "phone"),
        ("First Phone", "phone"),
        ("phone_number", "phone"),
        ("Mobile Phone", "mobile_phone"),
        ("MobilePhone", "mobile_phone"),
        ("Title", "title"),
        ("Job Title", "title"),
        ("Position", "title"),
        ("Company", "company"),
        ("Company Name", "company"),
        ("Account Name", "company"),
        ("Associated Company", "company"),
        ("Website", "website"),
        ("Company Website", "website"),
        ("URL", "website"),
        ("Person Linkedin Url", "linkedin_url"),
        ("LinkedIn__c", "linkedin_url"),
        ("LinkedIn", "linkedin_url"),
        ("# Employees", "employee_count"),
        ("NumberOfEmployees", "employee_count"),
        ("Number of employees", "employee_count"),
        ("Employees", "employee_count"),
        ("Annual Revenue", "annual_revenue"),
        ("AnnualRevenue", "annual_revenue"),
        ("Street", "street"),
        ("Address", "street"),
        ("City", "city"),
        ("State", "state"),
        ("PostalCode", "postal_code"),
        ("Zip", "postal_code"),
        ("Postal Code", "postal_code"),
        ("Country", "country"),
        ("CountryCode", "country"),
        ("Lead Source", "source"),
        ("LeadSource", "source"),
        ("Source", "source"),
        ("Notes", "notes"),
        ('"Notes:"', "notes"),
        ("Description", "notes"),
        ("Seniority", "seniority"),
        ("Departments", "department"),
        ("Department__c", "department"),
        ("Industry", "industry"),
        ("Full Name", "full_name"),
        ("Name", "full_name"),
        ("Contact Name", "full_name"),
        ("FirstName", "first_name"),
        ("  first_name ", "first_name"),
        ("first-name", "first_name"),
        ("Last.Name", "last_name"),
        ("Email 2", None),
        ("Secondary Email", None),
        ("Additional email addresses", None),
        ("Phone 2", None),
        ("Home Phone", None),
        ("Other Phone", None),
        ("Fax", None),
        ("Company Linkedin Url", None),
        ("Facebook Url", None),
        ("Twitter Url", None),
        ("Index", None),
        ("Customer Id", None),
        ("Record ID", None),
        ("Id", None),
        ("Lead Owner", None),
        ("Contact owner", None),
        ("Subscription Date", None),
        ("Something Else", None),
        ("Mailing State/Province", "state"),  # a Salesforce contact report's labels
        ("Mailing Zip/Postal Code", "postal_code"),
        ("姓名", "full_name"),  # Chinese, Korean and Russian exports: their columns were custom fields
        ("公司名称", "company"),
        ("职位", "title"),
        ("邮箱", "email"),
        ("手机", "mobile_phone"),
        ("회사명", "company"),
        ("이메일", "email"),
        ("전화번호", "phone"),
        ("Фамилия", "last_name"),
        ("ФИО", "full_name"),
        ("Должность", "title"),
        ("Эл. почта", "email"),
    ],
)
def test_single_header_synonyms(header: str, field: str | None) -> None:
    (column,) = suggest_mapping([header], []).columns
    assert column == ColumnSuggestion(header, field, column.confidence, column.reason)
    if field is not None:
        assert column.confidence >= 0.6
        assert "header" in column.reason


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        (
            ["Vorname", "Nachname", "Firma", "E-Mail", "Telefon", "Straße", "PLZ", "Ort", "Land"],
            ["first_name", "last_name", "company", "email", "phone", "street", "postal_code", "city", "country"],
        ),
        (
            ["Prénom", "Nom", "Société", "Courriel", "Téléphone", "Adresse", "Code postal", "Ville", "Pays"],
            ["first_name", "last_name", "company", "email", "phone", "street", "postal_code", "city", "country"],
        ),
        (
            ["Nombre", "Apellidos", "Empresa", "Correo electrónico", "Móvil", "Cargo", "Ciudad", "País"],
            ["first_name", "last_name", "company", "email", "mobile_phone", "title", "city", "country"],
        ),
    ],
    ids=["German", "French", "Spanish"],
)
def test_german_french_and_spanish_exports_map_by_header(headers: list[str], fields: list[str]) -> None:
    """A German export (semicolons, Vorname/Nachname/Firma/Land) left names, company and country as custom."""
    assert [c.field for c in suggest_mapping(headers, []).columns] == fields


def test_headers_upper_cased_the_turkish_way_map_as_written_in_ascii() -> None:
    """Turkish Excel upper-cases "i" as "İ" (UPPER(), Caps Lock on a Turkish keyboard): "EMAİL", "FİRST NAME",
    "LİNKEDİN URL" were folded to "emai l" (the İ's dot split the word) and left as custom fields."""
    headers = ["FİRST NAME", "LAST NAME", "EMAİL", "COMPANY", "LİNKEDİN URL", "ŞİRKET"]
    fields = ["first_name", "last_name", "email", "company", "linkedin_url", None]
    assert [c.field for c in suggest_mapping(headers, []).columns] == fields


# ----------------------------------------------------------------------------------------------------
# Conflicts
# ----------------------------------------------------------------------------------------------------


def test_person_phone_beats_company_phone_and_loser_names_winner() -> None:
    suggestion = suggest_mapping(["Company Phone", "Corporate Phone", "Phone"], [])
    assert suggestion.as_dict() == {"Company Phone": None, "Corporate Phone": None, "Phone": "phone"}
    assert "'Phone'" in suggestion.columns[0].reason
    assert "taken by" in suggestion.columns[0].reason


def test_company_name_for_emails_does_not_beat_company() -> None:
    mapping = suggest_mapping(["Company Name for Emails", "Company"], []).as_dict()
    assert mapping == {"Company Name for Emails": None, "Company": "company"}


def test_company_location_used_only_without_person_location() -> None:
    both = suggest_mapping(["Company City", "City", "Company Country", "Country"], []).as_dict()
    assert both == {"Company City": None, "City": "city", "Company Country": None, "Country": "country"}
    alone = suggest_mapping(["Company City", "Company Country"], []).as_dict()
    assert alone == {"Company City": "city", "Company Country": "country"}


def test_full_country_beats_country_code() -> None:
    mapping = suggest_mapping(["CountryCode", "Country"], []).as_dict()
    assert mapping == {"CountryCode": None, "Country": "country"}


def test_an_exact_header_beats_a_loose_one_whatever_the_file_order() -> None:
    headers = ["First", "Name", "First Name", "Full Name"]
    suggestion = suggest_mapping(headers, [])
    assert suggestion.as_dict() == {"First": None, "Name": None, "First Name": "first_name", "Full Name": "full_name"}
    assert suggestion.columns[0].reason.startswith("first_name taken by 'First Name' (0.95 vs 0.85)")


def test_tie_broken_by_synonym_preference_then_file_order() -> None:
    # same confidence: "Phone" precedes "Phone Number" in the synonym table, even when later in the file
    by_preference = suggest_mapping(["Phone Number", "Phone"], []).as_dict()
    assert by_preference == {"Phone Number": None, "Phone": "phone"}
    by_order = suggest_mapping(["First Name", "first_name"], []).as_dict()
    assert by_order == {"First Name": "first_name", "first_name": None}


def test_values_break_header_ties_for_empty_columns() -> None:
    headers = ["Work Direct Phone", "First Phone"]
    rows = [["", "+1 415 555 0100"], ["", "+44 20 7946 0000"], ["", "(212) 555-0199"]]
    mapping = suggest_mapping(headers, rows).as_dict()
    assert mapping == {"Work Direct Phone": None, "First Phone": "phone"}


def test_header_email_with_non_email_values_gets_low_confidence_and_loses() -> None:
    headers = ["Email", "Contact"]
    rows = [["yes", f"person{i}@example.com"] for i in range(10)]
    suggestion = suggest_mapping(headers, rows)
    assert suggestion.as_dict() == {"Email": None, "Contact": "email"}
    alone = suggest_mapping(["Email"], [["yes"], ["no"], ["yes"], ["unknown"]]).columns[0]
    assert alone.field == "email"
    assert alone.confidence < 0.3
    assert "0% of sampled values look like emails" in alone.reason


# ----------------------------------------------------------------------------------------------------
# Value sniffing
# ----------------------------------------------------------------------------------------------------


def test_unlabeled_column_of_emails_maps_with_share_as_confidence() -> None:
    rows = [
        ["a@example.com"],
        ["b@example.org"],
        ["c@example.net"],
        ["d@example.com"],
        ["not an email"],
        [""],
    ]
    (column,) = suggest_mapping(["Contact"], rows).columns
    assert column.field == "email"
    # 4 of the 5 non-empty values; the empty cell is ignored for the share, not for the fill rate
    assert column.confidence == pytest.approx(0.8 * (0.9 + 0.1 * 5 / 6), abs=1e-3)
    assert "80% of sampled values look like emails" in column.reason


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (
            ["https://www.linkedin.com/in/jane-doe", "linkedin.com/in/bob", "http://uk.linkedin.com/in/x-y"],
            "linkedin_url",
        ),
        (["https://acme.com", "http://www.example.org/", "www.initech.io"], "website"),
        (["+1 415 555 0100", "(212) 555-0199", "020 7946 0000", "+49 30 123456"], "phone"),
        (["Germany", "France", "United States", "Japan", "Netherlands"], "country"),
        (["Michael", "Jennifer", "David", "Sarah", "Robert"], "first_name"),
        (["2020-08-24", "2021-04-23", "2020-03-25"], None),
        (["1", "2", "3", "4"], None),
        (["52.3676", "-122.419416", "48.8566"], None),
        (["3200000000", "1250000000", "9800000000"], None),  # bare digits: half a phone each, below threshold
    ],
)
def test_unlabeled_column_sniffing(values: list[str], field: str | None) -> None:
    (column,) = suggest_mapping(["Column X"], [[value] for value in values]).columns
    assert column.field == field, column


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("555-0100", "phone"),  # 7 digits: a local number
        ("55-0100", None),  # 6: a code
        ("+44 20 7946 0958 123", "phone"),  # 15 digits, the most E.164 holds
        ("+44 20 7946 0958 1234", None),
        ("+1 (415) 555-0100 x 12345", "phone"),  # the extension's digits are not the number's
        ("2024-01-15", None),
        ("37.7749295", None),  # a decimal
        ("1600 Amphitheatre Pkwy 94043", None),
    ],
)
def test_an_unlabeled_column_is_phones_by_the_digits_of_its_numbers(value: str, field: str | None) -> None:
    (column,) = suggest_mapping(["Column X"], [[value]] * 3).columns
    assert column.field == field, column
    if field is not None:
        assert (column.confidence, column.reason) == (0.9, "100% of sampled values look like phone numbers")


@pytest.mark.parametrize(
    ("value", "share"),
    [("1234567", "50%"), ("4155550123", "50%"), ("123456789012345", "50%"), ("123456", "only 0%")],
)
def test_bare_digits_of_a_phone_s_length_are_half_a_phone(value: str, share: str) -> None:
    """A bare digit string of 7 to 15 digits may as well be an id or an amount: it neither confirms a Phone header
    fully nor maps an unlabeled column (above), and a shorter or longer one is no phone at all."""
    (column,) = suggest_mapping(["Phone"], [[value]] * 3).columns
    assert column.field == "phone"
    assert f"{share} of sampled values look like phone numbers" in column.reason
    (longer,) = suggest_mapping(["Phone"], [["1234567890123456"]] * 3).columns
    assert "only 0% of sampled values look like phone numbers" in longer.reason


def test_two_values_prove_nothing_about_a_column_three_do() -> None:
    (two,) = suggest_mapping(["Email"], [["yes"], ["no"]]).columns
    assert (two.field, two.confidence, two.reason) == ("email", 0.95, "header synonym 'Email'")
    (three,) = suggest_mapping(["Email"], [["yes"], ["no"], ["yes"]]).columns
    assert three.confidence < 0.3 and "only 0% of sampled values look like emails" in three.reason
    assert suggest_mapping(["Column X"], [["a@example.com"]] * 2).columns[0].field is None
    assert suggest_mapping(["Column X"], [["a@example.com"]] * 3).columns[0].field == "email"


def test_a_country_written_as_the_first_part_of_its_iso_name_is_a_country() -> None:
    """ISO names such as "Virgin Islands, British" and "Bonaire, Sint Eustatius and Saba" are written by their
    first part."""
    (column,) = suggest_mapping(["Column X"], [["Virgin Islands"], ["Bonaire"], ["Virgin Islands"]]).columns
    assert column.field == "country"


def test_sniffing_does_not_pull_known_custom_columns_into_fields() -> None:
    headers = ["Email 2", "Lead Owner", "Phone 2"]
    rows = [["x@example.com", "Selena Doyle", "+1 415 555 0100"]] * 5
    assert suggest_mapping(headers, rows).as_dict() == {"Email 2": None, "Lead Owner": None, "Phone 2": None}


def test_a_file_written_by_bulk_export_maps_back_to_its_fields() -> None:
    """Each shown field's column to that field (extensions included), custom.NAME columns to custom: never to a
    field their values look like (a second phone, an email)."""
    headers = [*SHOWN_FIELDS, "custom.Phone 2", "custom.Email 2"]
    rows = [["" for _ in SHOWN_FIELDS] + ["+1 415 555 0100", "x@example.com"]] * 5
    mapping = suggest_mapping(headers, rows).as_dict()
    assert mapping == {**{field: field for field in SHOWN_FIELDS}, "custom.Phone 2": None, "custom.Email 2": None}


def test_linkedin_url_column_detected_from_values() -> None:
    headers = ["Profile", "URL", "Website"]
    rows = [["Engineer", f"https://www.linkedin.com/in/person-{i}", f"https://company{i}.com"] for i in range(5)]
    mapping = suggest_mapping(headers, rows).as_dict()
    assert mapping == {"Profile": None, "URL": "linkedin_url", "Website": "website"}


def test_url_with_website_values_is_website() -> None:
    rows = [[f"https://company{i}.com"] for i in range(5)]
    assert suggest_mapping(["URL"], rows).as_dict() == {"URL": "website"}


def test_linkedin_connections_url_from_header_context_and_from_values() -> None:
    header, rows = read_sample(SHARED_DATA / "exports" / "linkedin_Connections_header.csv")
    assert rows == []  # header-only export: the decision must come from the 'Connected On' context
    assert suggest_mapping(header, []).as_dict()["URL"] == "linkedin_url"
    filled = [["Jane", "Doe", "https://www.linkedin.com/in/janedoe", "", "Acme", "CTO", "01 Jan 2024"]] * 3
    assert suggest_mapping(header, filled).as_dict()["URL"] == "linkedin_url"


def test_website_column_full_of_linkedin_profiles_goes_to_linkedin_url() -> None:
    rows = [[f"https://www.linkedin.com/in/p{i}"] for i in range(5)]
    (column,) = suggest_mapping(["Website"], rows).columns
    assert column.field == "linkedin_url"


def test_name_in_organizations_file_is_company_by_values_and_by_context() -> None:
    header, rows = read_sample(SHARED_DATA / "datablist" / "organizations-10000.csv.gz")
    by_values = suggest_mapping(header, rows).columns[header.index("Name")]
    assert by_values.field == "company"
    assert "person names" in by_values.reason
    by_context = suggest_mapping(header, []).columns[header.index("Name")]
    assert by_context.field == "company"
    assert "company columns" in by_context.reason


def test_name_with_person_values_or_person_context_is_full_name() -> None:
    rows = [["Sheryl Baxter", "Sri Lanka"], ["Preston Lozano", "Chile"], ["Roy Berry", "Nepal"]]
    assert suggest_mapping(["Name", "Industry"], rows).as_dict()["Name"] == "full_name"
    assert suggest_mapping(["Name", "Email", "Industry"], []).as_dict()["Name"] == "full_name"


def test_name_with_chinese_japanese_or_korean_person_values_is_full_name() -> None:
    """A Name column of 王伟, 김민준 or 山田 花子 read 0% person names (the test asked for capitals, which their scripts
    do not have): it became the company, or nothing beside a Company column, and the people had no name. Brands as
    short (华为, 삼성, 日立) still make a company column."""
    people = [["王伟", "华为"], ["李娜", "腾讯"], ["欧阳娜娜", "百度"], ["김민준", "삼성"], ["山田 花子", "日立"]]
    assert suggest_mapping(["Name", "Company"], people).as_dict() == {"Name": "full_name", "Company": "company"}
    assert suggest_mapping(["Name"], [[person] for person, _ in people]).as_dict() == {"Name": "full_name"}
    brands = [["华为"], ["腾讯"], ["百度"], ["小米"], ["京东"], ["삼성"], ["카카오"], ["日立"], ["任天堂"], ["富士通"]]
    assert suggest_mapping(["Name"], brands).as_dict() == {"Name": "company"}


def test_unspaced_japanese_names_beside_a_person_s_columns_are_the_full_name() -> None:
    """A Name column of 山田太郎, 佐藤花子, 鈴木一郎 (family names nameparser's Chinese list does not
    know) read 0% person names: beside Email and Company it lost the company to Company and was imported as
    nothing, the people without a name. Beside a person's columns, in any language, it is the full name, less
    sure than names the values tell; alone they are as much short company names (富士通), and names with a
    company's legal form or trade stay the company (株式会社山田商事, 腾讯控股有限公司, 주식회사카카오), also
    after a family name (高橋電機, 李宁公司), which read as person names."""
    people = ["山田太郎", "佐藤花子", "鈴木一郎", "中村さくら", "佐々木希"]
    rows = [[name, f"p{i}@example.jp", "株式会社山田商事"] for i, name in enumerate(people)]
    suggestion = suggest_mapping(["Name", "Email", "Company"], rows)
    assert suggestion.as_dict() == {"Name": "full_name", "Email": "email", "Company": "company"}
    latin = suggest_mapping(["Name", "Email"], [["Jane Doe", "j@example.com"]] * 5).columns[0]
    assert 0.7 < suggestion.columns[0].confidence < latin.confidence
    assert "Japanese" in suggestion.columns[0].reason
    assert suggest_mapping(["Name", "メールアドレス"], [row[:2] for row in rows]).as_dict()["Name"] == "full_name"
    assert suggest_mapping(["Name", "会社名"], [row[::2] for row in rows]).as_dict()["Name"] == "full_name"
    companies = ["株式会社山田商事", "佐藤工業株式会社", "腾讯控股有限公司", "주식회사카카오"]
    companies += ["高橋電機", "田中商事", "李宁公司", "张氏集团", "金星电子", "吴氏科技"]  # a family name first
    rows = [[company, f"info{i}@example.jp"] for i, company in enumerate(companies)]
    assert suggest_mapping(["Name", "Email"], rows).as_dict()["Name"] == "company"


def test_ragged_rows_and_empty_sample_are_accepted() -> None:
    rows = [["a@example.com"], ["b@example.com", "extra", "cells"], [], ["c@example.com", "x"]]
    mapping = suggest_mapping(["Email", "City"], rows).as_dict()
    assert mapping == {"Email": "email", "City": "city"}
    assert suggest_mapping([], []).columns == ()


def test_as_dict_keeps_file_order_and_first_duplicate() -> None:
    suggestion = suggest_mapping(["Email", "Notes", "Email"], [])
    assert list(suggestion.as_dict().items()) == [("Email", "email"), ("Notes", "notes")]
    assert [c.field for c in suggestion.columns] == ["email", "notes", None]


# ----------------------------------------------------------------------------------------------------
# Mapping files and overrides
# ----------------------------------------------------------------------------------------------------

HEADERS = ["First Name", "Last Name", "Email 1", "Email 2", "Phone 1", "Notes"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_mapping_file_flat_and_nested(tmp_path: Path) -> None:
    flat = write(tmp_path, '"Email 2": email\n"Email 1": null\n')
    assert load_mapping_file(flat, HEADERS) == {"Email 2": "email", "Email 1": None}
    nested = write(tmp_path, "columns:\n  Phone 1: mobile_phone\n  Notes: ~\n")
    assert load_mapping_file(nested, HEADERS) == {"Phone 1": "mobile_phone", "Notes": None}
    assert load_mapping_file(write(tmp_path, ""), HEADERS) == {}


def test_load_mapping_file_unknown_field_suggests_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "Email 1: emial\n")
    with pytest.raises(ConfigurationError) as raised:
        load_mapping_file(path, HEADERS)
    message = str(raised.value)
    assert str(path) in message
    assert "'Email 1'" in message
    assert "unknown field 'emial'" in message
    assert "Did you mean 'email'?" in message
    assert ", ".join(CANONICAL_FIELDS) in message


def test_load_mapping_file_unknown_column_lists_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "E-mail: email\n")
    with pytest.raises(ConfigurationError) as raised:
        load_mapping_file(path, HEADERS)
    message = str(raised.value)
    assert str(path) in message
    assert "'E-mail' is not in the file's header" in message
    assert all(repr(h) in message for h in HEADERS)


def test_load_mapping_file_duplicate_target(tmp_path: Path) -> None:
    path = write(tmp_path, "columns:\n  Email 1: email\n  Email 2: email\n")
    with pytest.raises(ConfigurationError) as raised:
        load_mapping_file(path, HEADERS)
    message = str(raised.value)
    assert str(path) in message
    assert "'Email 1' and 'Email 2' are both mapped to field 'email'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Email 1: email\nEmail 1: phone\n", "duplicate key 'Email 1'"),
        ("- Email 1\n- email\n", "found list"),
        ("Email 1: [email, phone]\n", "expected a canonical field name"),
        ("Email 1: email\n  bad: : indent\n", "invalid YAML"),
        ("columns: {Email 1: email}\nstrict: true\n", "unexpected top-level key(s) 'strict'"),
    ],
)
def test_load_mapping_file_malformed(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as raised:
        load_mapping_file(path, HEADERS)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_load_mapping_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read mapping file"):
        load_mapping_file(tmp_path / "nope.yaml", HEADERS)


def test_apply_overrides_replaces_suggestions_and_frees_claimed_fields() -> None:
    suggestion = suggest_mapping(HEADERS, [])
    assert suggestion.as_dict()["Email 1"] == "email"
    result = apply_overrides(suggestion, {"Email 2": "email", "Notes": None})
    assert result == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email 1": None,  # its field was claimed by an explicit override
        "Email 2": "email",
        "Phone 1": "phone",
        "Notes": None,
    }
    assert list(result) == HEADERS


def test_apply_overrides_with_loaded_file(tmp_path: Path) -> None:
    overrides = load_mapping_file(write(tmp_path, "columns:\n  Phone 1: mobile_phone\n"), HEADERS)
    result = apply_overrides(suggest_mapping(HEADERS, []), overrides)
    assert result["Phone 1"] == "mobile_phone"
    assert "phone" not in result.values()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"Email 1": "e-mail"}, "Did you mean 'email'?"),
        ({"Fax": None}, "'Fax' is not in the file's header"),
        ({"Email 1": "phone", "Phone 1": "phone"}, "both mapped to field 'phone'"),
    ],
)
def test_apply_overrides_validates(overrides: dict[str, str | None], expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        apply_overrides(suggest_mapping(HEADERS, []), overrides)
    assert expected in str(raised.value)
    assert "overrides" in str(raised.value)


def test_the_bookkeeping_columns_left_in_a_trimmed_export_are_left_out() -> None:
    """A user deleted some bookkeeping columns of an export in a spreadsheet: those left are still the export's.
    A file is an export by its own spelling of most lead fields, and nothing but them, the bookkeeping columns and
    custom fields; one with a column of its own, or with few of the fields, keeps its "id" and "tags"."""
    trimmed = ["id", *SHOWN_FIELDS, "score", "tags", "custom.Owner"]
    assert left_out_columns(trimmed) == {"id", "score", "tags"}
    assert left_out_columns([*SHOWN_FIELDS[: (len(SHOWN_FIELDS) + 1) // 2], "list"]) == {"list"}
    left_out = [c.column for c in suggest_mapping(trimmed, []).columns if "bookkeeping" in c.reason]
    assert left_out == ["id", "score", "tags"]
    assert left_out_columns(["id", *SHOWN_FIELDS, "tags", "Owner"]) == frozenset()
    assert left_out_columns(["id", "email", "first_name", "tags"]) == frozenset()


def test_mapping_suggestion_is_immutable() -> None:
    suggestion = MappingSuggestion((ColumnSuggestion("Email", "email", 1.0, "test"),))
    with pytest.raises(AttributeError):
        suggestion.columns = ()  # type: ignore[misc]


def test_the_bookkeeping_columns_of_an_export_are_left_out_only_in_an_export() -> None:
    export = ["id", "email", "stage", "score", "created_at", "list", "tags", "custom.Owner"]
    assert left_out_columns(export) == {"id", "stage", "score", "created_at", "list", "tags"}
    suggestion = suggest_mapping(export, [])
    assert [(c.column, c.field) for c in suggestion.columns if "bookkeeping" in c.reason] == [
        (c, None) for c in export if c in left_out_columns(export)
    ]
    crm = ["Id", "Email", "tags", "stage"]  # another tool's ids and tags stay custom fields
    assert left_out_columns(crm) == frozenset()
    assert not [c for c in suggest_mapping(crm, []).columns if "bookkeeping" in c.reason]


def test_a_japanese_crm_export_s_headers_map_to_their_fields() -> None:
    """名前 (name), 企業名 and 勤務先 (company, employer), メール and 携帯番号 are how Japanese CRM and form exports
    head these columns; they were kept as custom fields, so the people had no name or company."""
    headers = ["名前", "企業名", "メール", "携帯番号", "役職"]
    rows = [["山田太郎", "株式会社山田商事", "taro@example.jp", "090-1234-5678", "営業部長"]] * 3
    assert suggest_mapping(headers, rows).as_dict() == {
        "名前": "full_name",
        "企業名": "company",
        "メール": "email",
        "携帯番号": "mobile_phone",
        "役職": "title",
    }
    employer = suggest_mapping(["お名前", "勤務先"], [["佐藤花子", "トヨタ自動車株式会社"]] * 3).as_dict()
    assert employer == {"お名前": "full_name", "勤務先": "company"}
