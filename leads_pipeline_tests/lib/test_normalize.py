"""Tests for leads_pipeline.lib.normalize: the values a user imports, and the fast paths' equivalence."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import phonenumbers
import pytest
from nameparser import HumanName

from leads_pipeline.lib import fields
from leads_pipeline.lib.countries import COUNTRY_PROBLEM, FORMER_COUNTRY_PROBLEM
from leads_pipeline.lib.normalize import (
    EMAIL_PROBLEM,
    INT_PROBLEM,
    LINKEDIN_PROBLEM,
    NUMBER_PROBLEM,
    PHONE_SCIENTIFIC_PROBLEM,
    STRING,
    WEBSITE_PROBLEM,
    clean_text,
    company_key,
    complete_names,
    country_codes,
    email_domains,
    linkedin_urls,
    name_key,
    normalize_emails,
    normalize_phones,
    one_value,
    to_int,
    to_number,
    website_to_domain,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DATABLIST = DATA / "datablist"

NA = None  # expected-value spelling of "missing"


def one(value: str | None) -> pd.Series:
    return pd.Series([value], dtype="str")


def py(value: Any) -> Any:
    """A Series element as a plain Python value, with every kind of missing as None."""
    return None if value is None or value is pd.NA or value != value else value


def values(s: pd.Series) -> list[object]:
    return [py(v) for v in s]


# --------------------------------------------------------------------------------------------------------
# Shape: every function keeps the index and uses pd.NA
# --------------------------------------------------------------------------------------------------------


def test_results_keep_the_index_and_use_pandas_na() -> None:
    s = pd.Series(["  Acme ", None, ""], index=[10, 7, 3], dtype="str")
    for result in (
        clean_text(s),
        company_key(s),
        normalize_emails(s).values,
        normalize_emails(s).problems,
        website_to_domain(s).values,
        normalize_phones(s, None).e164,
    ):
        assert list(result.index) == [10, 7, 3]
        assert result.dtype == STRING
        assert result.iloc[1] is pd.NA
    assert to_int(s).values.dtype == "Int64"
    assert to_number(s).values.dtype == "Float64"


def test_missing_values_are_not_problems() -> None:
    s = pd.Series([None, "", "   "], dtype="str")
    for normalized in (
        normalize_emails(s),
        website_to_domain(s),
        linkedin_urls(s),
        country_codes(s),
        to_int(s),
        to_number(s),
    ):
        assert normalized.values.isna().all()
        assert normalized.problems.isna().all()
    assert normalize_phones(s, None).problems.isna().all()


def test_object_and_numeric_input_columns_are_accepted() -> None:
    assert values(clean_text(pd.Series([" a ", None, 3], dtype=object))) == ["a", NA, "3"]
    # read_csv turns a phone column with gaps into float64: no ".0" may leak into the number.
    phones = normalize_phones(pd.Series([4155550123.0, float("nan")]), None)
    assert values(phones.e164) == ["+14155550123", NA]
    # a column with fractions keeps them
    assert values(to_number(pd.Series([2.5, float("nan"), 3.0])).values) == [2.5, NA, 3.0]


# --------------------------------------------------------------------------------------------------------
# clean_text
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Acme   Corp  ", "Acme Corp"),
        ("Acme\u00a0\u00a0Corp", "Acme Corp"),  # Excel's non-breaking spaces
        ("Acme\tCorp\n", "Acme Corp"),
        ("Ac\u200bme", "Acme"),  # zero-width space from copy-paste
        ("'+31 88 659 9111", "+31 88 659 9111"),  # Apollo's text-forcing apostrophe
        ("'0049 30 901820", "0049 30 901820"),
        ("'Ohana Cafe", "'Ohana Cafe"),  # an apostrophe before a letter may be part of the name
        ("", NA),
        ("  \u00a0 ", NA),
        (NA, NA),
    ],
)
def test_clean_text(raw: str | None, expected: str | None) -> None:
    assert py(clean_text(one(raw)).iloc[0]) == expected


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("first_name", "Ann\r\nMarie ", "Ann Marie"),  # a cell typed with Alt+Enter, a CRM's text area
        ("company", "Acme\u2028 Iberia", "Acme Iberia"),
        ("stage", "mql\n", "mql"),
        ("notes", " Call back \r\n\r\n - pricing\r- seats\n", "Call back\n\n- pricing\n- seats"),
        ("custom.About", "\n Founded  1999\r\n'=HQ Madrid ", "Founded 1999\n=HQ Madrid"),
        ("custom.About", "Plain text", "Plain text"),
        ("custom.About", " \r\n ", None),
    ],
)
def test_one_value_keeps_line_breaks_in_notes_and_custom_fields_only(field: str, raw: str, expected: str) -> None:
    """``leads bulk set`` and CRM pulls stored a name with its line break (and any custom text as given): every
    way in now cleans a value as the import cleans its column, line breaks kept where ``keeps_lines`` says."""
    assert one_value(field, raw) == (expected, None)


# --------------------------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Smith@Example.COM", "john.smith@example.com"),
        (" mailto:Sales@Acme.io ", "sales@acme.io"),
        ("MAILTO:sales@acme.io", "sales@acme.io"),
        ("Jane Doe <jane@example.com>", "jane@example.com"),
        ("o'brien+leads@example.co.uk", "o'brien+leads@example.co.uk"),
        ("user@Bücher.de", "user@bücher.de"),  # IDN domain, kept in Unicode
        ("user@xn--bcher-kva.de", "user@bücher.de"),  # its punycode spelling gives the same address
        ("Jörg@Bücher.DE", "jörg@bücher.de"),  # Unicode local part
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_valid_emails(raw: str, expected: str) -> None:
    result = normalize_emails(one(raw))
    assert py(result.values.iloc[0]) == expected
    assert py(result.problems.iloc[0]) is None


@pytest.mark.parametrize(
    "raw",
    [
        "john.smith",
        "john@",
        "@example.com",
        "john@example",  # no dot in the domain
        "john@@example.com",
        "john..smith@example.com",
        ".john@example.com",
        "john smith@example.com",
        "john@exa_mple.com",
        "john@example.test",  # special-use domain
        "a@b.com, c@d.com",  # two addresses in one cell
        "jörg@bücher",
        "n/a",
    ],
)
def test_invalid_emails(raw: str) -> None:
    result = normalize_emails(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == EMAIL_PROBLEM


def _full_width(text: str) -> str:
    """``text`` as an input method in full-width mode types it: each printable ASCII character's full-width form."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_full_width_forms_typed_by_an_input_method_are_read_as_ascii() -> None:
    """A Japanese, Chinese or Korean input method left in full-width mode types ASCII as its full-width forms: the
    address with a full-width at sign was refused, one with full-width letters stored as another address (another
    mailbox and blind index: no duplicate of hanako@toyota.jp), the website kept as it was typed, the counts and
    amounts refused."""
    wide = _full_width
    emails = normalize_emails(pd.Series([wide("hanako@toyota.jp"), wide("hanako") + "@toyota.jp", "用户@例子.广告"]))
    assert values(emails.values) == ["hanako@toyota.jp", "hanako@toyota.jp", "用户@例子.广告"]
    sites = website_to_domain(pd.Series([wide("www") + ".toyota.jp", wide("https://www.toyota.jp/"), "トヨタ.jp"]))
    assert values(sites.values) == ["toyota.jp", "toyota.jp", "トヨタ.jp"]
    assert values(to_int(pd.Series([wide("1,200"), wide("50")])).values) == [1200, 50]
    assert values(to_number(pd.Series([wide("$3.2B")])).values) == [3.2e9]


def test_an_email_address_has_at_most_254_characters() -> None:
    """The limit of an address in SMTP (and email-validator's): one longer is no address a mail could reach."""
    longest, too_long = (f"{'x' * 64}@{'a' * 63}.{'b' * 63}.{'c' * n}.com" for n in (57, 58))
    assert (len(longest), len(too_long)) == (254, 255)
    result = normalize_emails(pd.Series([longest, too_long]))
    assert values(result.values) == [longest, NA]
    assert values(result.problems) == [NA, EMAIL_PROBLEM]


def test_a_punycode_label_that_is_no_internationalized_name_is_not_decoded() -> None:
    """ "xn--abc-" decodes to "abc" and "xn--a" to U+0080: they were stored as abc.com and a control character."""
    result = website_to_domain(pd.Series(["xn--abc-.com", "www.xn--a.com", "xn--zz.de", "xn--mnchen-3ya.de"]))
    assert values(result.values) == [NA, "xn--a.com", "xn--zz.de", "münchen.de"]
    assert values(result.problems) == [WEBSITE_PROBLEM, NA, NA, NA]


def test_a_host_name_has_at_most_253_characters() -> None:
    longest, too_long = (f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * n}.com" for n in (57, 58))
    assert (len(longest), len(too_long)) == (253, 254)
    result = website_to_domain(pd.Series([f"https://{longest}/", too_long]))
    assert values(result.values) == [longest, NA]
    assert values(result.problems) == [NA, WEBSITE_PROBLEM]


def test_an_email_domain_is_what_follows_the_last_at_sign() -> None:
    """As stored beside a sealed address (``email_domain``): pandas' extract of the same pattern, row for row."""
    given = pd.Series(["ann@example.com", None, "x@y@z.org", "no at sign", "a@", "zoë@bücher.de"], dtype=STRING)
    given.index = pd.Index([3, 5, 8, 13, 21, 34])
    domains = email_domains(given)
    assert domains.index.equals(given.index) and domains.dtype == STRING
    assert values(domains) == ["example.com", NA, "z.org", NA, "", "bücher.de"]
    assert domains.equals(given.str.extract(r"@([^@]*)$", expand=False))
    assert values(email_domains(pd.Series([None, None], dtype="str"))) == [NA, NA]


def test_email_regex_agrees_with_email_validator_on_datablist() -> None:
    """The ASCII fast path must accept what email_validator accepts (checked on real sample data)."""
    from email_validator import EmailNotValidError, validate_email

    emails = pd.read_csv(DATABLIST / "customers-1000.csv", usecols=["Email"], dtype="str")["Email"]
    result = normalize_emails(emails)
    for raw, got in zip(emails, result.values, strict=True):
        try:
            expected: str | None = validate_email(raw, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            expected = None
        assert py(got) == expected, raw


# --------------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "default", "e164", "extension"),
    [
        # UK
        ("020 7946 0958", "GB", "US", "+442079460958", NA),
        ("07911 123456", "GB", "US", "+447911123456", NA),
        ("+44 20 7946 0958", NA, "US", "+442079460958", NA),
        ("+44 (0)20 7946 0958", "US", "US", "+442079460958", NA),
        ("0044 20 7946 0958", NA, "US", "+442079460958", NA),
        ("020 7946 0958", NA, "GB", "+442079460958", NA),  # national form with the default region
        # Germany
        ("030 901820", "DE", "US", "+4930901820", NA),
        ("+49 30 901820", NA, "US", "+4930901820", NA),
        ("030 901820", "de", "US", "+4930901820", NA),  # lower-case country code
        # France
        ("01 23 45 67 89", "FR", "US", "+33123456789", NA),
        ("+33 1 23 45 67 89", "US", "US", "+33123456789", NA),
        # India
        ("98765 43210", "IN", "US", "+919876543210", NA),
        ("+91 98765 43210", NA, "US", "+919876543210", NA),
        # Japan
        ("03-1234-5678", "JP", "US", "+81312345678", NA),
        ("+81 3-1234-5678", NA, "US", "+81312345678", NA),
        ("03-1234-5678", NA, "JP", "+81312345678", NA),
        # Brazil
        ("(11) 91234-5678", "BR", "US", "+5511912345678", NA),
        ("+55 11 91234-5678", NA, "US", "+5511912345678", NA),
        # Netherlands, with the apostrophe Apollo exports put in front
        ("'+31 88 659 9111", "NL", "US", "+31886599111", NA),
        # US, including datablist's extensions and "001-" international prefix
        ("(415) 555-0123", NA, "US", "+14155550123", NA),
        ("415.555.0123", "US", "US", "+14155550123", NA),
        ("1-415-555-0123", NA, "US", "+14155550123", NA),
        ("397.884.0519x718", NA, "US", "+13978840519", "718"),
        ("001-599-042-7428x143", NA, "US", "+15990427428", "143"),
        ("+1-114-355-1841x78347", NA, "US", "+11143551841", "78347"),
        ("(971)643-6089x9160", NA, "US", "+19716436089", "9160"),
        ("+1 (415) 555-0123 ext. 12", NA, "US", "+14155550123", "12"),
        ("415-555-0123 #12", NA, "US", "+14155550123", "12"),
        ("415 555 0123 extension 7", NA, "US", "+14155550123", "7"),
        ("+1 415 555 0123 extn. 45", NA, "US", "+14155550123", "45"),  # a word only phonenumbers reads
        # A US number on a row whose country is GB is not valid there: the default region is tried next.
        ("(415) 555-0123", "GB", "US", "+14155550123", NA),
        # A country that is not an ISO code counts as missing: the default region is used.
        ("(415) 555-0123", "Germany", "US", "+14155550123", NA),
    ],
)
def test_valid_phones(raw: str, country: str | None, default: str, e164: str, extension: str | None) -> None:
    result = normalize_phones(one(raw), one(country), default_region=default)
    assert py(result.problems.iloc[0]) is None
    assert result.e164.iloc[0] == e164
    assert py(result.extension.iloc[0]) == extension


@pytest.mark.parametrize(
    ("raw", "country", "stored"),
    [
        ("027-060-5731", "JE", "+44270605731"),
        ("054.420.9064", "IM", "+44544209064"),
        ("06 1234 5678", "IT", "+390612345678"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_a_stored_phone_normalizes_to_itself(raw: str, country: str, stored: str) -> None:
    """An exported number imported again is the same number: a leading zero Jersey keeps but the United Kingdom
    reads as a trunk prefix gave +440270605731 the first time and +44270605731 the second."""
    e164 = normalize_phones(one(raw), one(country)).e164.iloc[0]
    assert e164 == stored
    assert normalize_phones(one(e164), one(country)).e164.iloc[0] == e164
    assert normalize_phones(one(e164), one(NA)).e164.iloc[0] == e164


@pytest.mark.parametrize(
    ("raw", "country", "problem"),
    [
        ("12345", NA, "expected a phone number valid for US"),
        ("n/a", "DE", "expected a phone number valid for DE"),  # DE accepts very short numbers
        ("call me", "GB", "expected a phone number valid for GB"),
        ("+99 123 4567", NA, "expected a phone number valid for US"),
        ("020 7946 0958", NA, "expected a phone number valid for US"),  # a UK number without its country
        ("x123", NA, "expected a phone number valid for US"),
        ("415-555-01234567890", NA, "expected a phone number valid for US"),
        # what Excel saves of a long number in a General cell: said so, since the number looks fine in the sheet
        ("4.15555E+11", NA, PHONE_SCIENTIFIC_PROBLEM),
        ("4,91512E+12", "DE", PHONE_SCIENTIFIC_PROBLEM),
        ("6.51234e11", "SG", PHONE_SCIENTIFIC_PROBLEM),
    ],
)
def test_invalid_phones(raw: str, country: str | None, problem: str) -> None:
    result = normalize_phones(one(raw), one(country))
    assert py(result.e164.iloc[0]) is None
    assert py(result.extension.iloc[0]) is None
    assert result.problems.iloc[0] == problem


def test_phone_countries_are_optional_and_default_region_is_checked() -> None:
    result = normalize_phones(pd.Series(["(415) 555-0123", None]), None)
    assert values(result.e164) == ["+14155550123", NA]
    with pytest.raises(ValueError, match="default_region"):
        normalize_phones(one("1"), None, default_region="XX")


def _reference_e164(raw: str, region: str | None, default: str) -> str | None:
    """The documented rule, spelled out with phonenumbers alone (no fast path, no shortcuts)."""
    number = raw.removeprefix("'")
    if number.startswith("00"):
        number = "+" + number[2:]

    def parse(parse_region: str | None) -> phonenumbers.PhoneNumber | None:
        try:
            return phonenumbers.parse(number, parse_region)
        except phonenumbers.NumberParseException:
            return None

    if number.startswith("+"):
        candidates = [parse(None)]
    elif region is None or region == default:
        candidates = [parse(default)]
    else:
        candidates = [parse(region), parse(default)]
        for parsed in candidates:
            if parsed is not None and phonenumbers.is_valid_number(parsed):
                return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    for parsed in candidates:
        if parsed is not None and (
            phonenumbers.is_valid_number(parsed)
            or phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE
        ):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


@pytest.mark.parametrize(
    "raw",
    [
        "008-690-4698",  # datablist: read as +86 904698, a number cut short
        "001.606.4556x1970",  # +1 6064556: a US number without its area code
        "555-0100",  # local only: the area code is missing
        "1234567",
    ],
)
def test_a_number_without_a_full_length_is_a_problem_not_an_e164(raw: str) -> None:
    """A parse only possible locally (no area code) or cut short is not stored as if it were a number: it is a
    warning and the row keeps what was written in custom."""
    result = normalize_phones(pd.Series([raw], dtype="string"), None)
    assert py(result.e164.iloc[0]) is None
    assert result.problems.iloc[0] == "expected a phone number valid for US"


def test_phone_fast_path_matches_phonenumbers() -> None:
    """North American numbers skip phonenumbers; the result must be what phonenumbers would give."""
    rng = random.Random(7)
    formats = ["{}", "+{}", "1-{}", "({}) ", "00{}", "+1 {}", "'{}", "{}-", "+1{}", "1 ({})"]
    regions = [None, "US", "CA", "PR", "GB", "DE", "MX"]
    raws, countries = [], []
    for _ in range(1500):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([7, 9, 10, 10, 10, 11, 12])))
        raws.append(rng.choice(formats).format(digits))
        countries.append(rng.choice(regions))
    for default in ("US", "CA"):
        result = normalize_phones(pd.Series(raws), pd.Series(countries), default_region=default)
        for raw, country, got in zip(raws, countries, result.e164, strict=True):
            assert py(got) == _reference_e164(raw, country, default), (raw, country, default)


# --------------------------------------------------------------------------------------------------------
# Websites and LinkedIn
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://www.Stephenson.com/about?x=1", "stephenson.com"),
        ("https://tyler-pugh.info/", "tyler-pugh.info"),
        ("www.ah.nl", "ah.nl"),
        ("stephenson.com", "stephenson.com"),
        ("HTTPS://WWW.EXAMPLE.COM.", "example.com"),  # trailing root dot
        ("https://user:secret@shop.example.co.uk:8443/cart#top", "shop.example.co.uk"),
        ("//cdn.example.com/x.js", "cdn.example.com"),
        ("www2.example.com", "example.com"),
        ("https://münchen.de", "münchen.de"),  # IDN: Unicode kept
        ("https://MÜNCHEN.de/", "münchen.de"),
        ("https://mu\u0308nchen.de", "münchen.de"),  # decomposed ü is NFC-normalized
        ("http://xn--mnchen-3ya.de", "münchen.de"),  # punycode decoded to the same domain
        ("https://例え.jp/パス", "例え.jp"),
        ("bücher。de", "bücher.de"),  # ideographic full stop is a label separator
    ],
)
def test_website_to_domain(raw: str, expected: str) -> None:
    result = website_to_domain(one(raw))
    assert result.values.iloc[0] == expected
    assert py(result.problems.iloc[0]) is None


@pytest.mark.parametrize(
    "raw", ["Acme Corp", "n/a", "localhost", "http://192.168.0.1/", "https://", "-acme.com", "acme..com"]
)
def test_invalid_websites(raw: str) -> None:
    result = website_to_domain(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == WEBSITE_PROBLEM


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("linkedin.com/in/JaneDoe", "https://www.linkedin.com/in/janedoe"),
        ("http://uk.linkedin.com/in/jane-doe-12345/", "https://www.linkedin.com/in/jane-doe-12345"),
        ("www.linkedin.com/in/jane?trk=public_profile", "https://www.linkedin.com/in/jane"),
        ("https://www.linkedin.com/in/jane/details/experience/", "https://www.linkedin.com/in/jane"),
        ("http://www.linkedin.com/company/albert-heijn", "https://www.linkedin.com/company/albert-heijn"),
        ("linkedin.com/company/Acme/", "https://www.linkedin.com/company/acme"),
        # one profile whether the export percent-encoded its accents (LinkedIn's own does) or not
        ("https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller-1a/", "https://www.linkedin.com/in/jürgen-müller-1a"),
        ("https://de.linkedin.com/in/Jürgen-Müller-1a", "https://www.linkedin.com/in/jürgen-müller-1a"),
        ("https://www.linkedin.com/in/ju%CC%88rgen", "https://www.linkedin.com/in/jürgen"),  # decomposed: NFC
        ("https://www.linkedin.com/in/ann%20lee", "https://www.linkedin.com/in/ann%20lee"),  # a space: as written
        ("https://www.linkedin.com/in/bad%FF", "https://www.linkedin.com/in/bad%ff"),  # not UTF-8: as written
        ("https://www.linkedin.com/in/a%00b", "https://www.linkedin.com/in/a%00b"),  # a NUL: as written
        ("https://www.linkedin.com/in/a%1Fb", "https://www.linkedin.com/in/a%1fb"),  # a control character
        # lower-cased as Python does (the final sigma, the dotted I), written in Unicode or percent-encoded
        ("linkedin.com/company/ΟΔΟΣ-İz", "https://www.linkedin.com/company/οδος-i\u0307z"),
        ("linkedin.com/company/%CE%9F%CE%94%CE%9F%CE%A3-%C4%B0z", "https://www.linkedin.com/company/οδος-i\u0307z"),
        ("LinkedIn.com/IN/Ann", "https://www.linkedin.com/in/ann"),
        # the mobile sites: a profile opened on a phone and copied from there
        ("https://m.linkedin.com/in/jane-doe", "https://www.linkedin.com/in/jane-doe"),
        ("https://www.linkedin.com/mwlite/in/jane-doe", "https://www.linkedin.com/in/jane-doe"),
        ("https://www.linkedin.com/mwlite/company/acme", "https://www.linkedin.com/company/acme"),
        # a member id (API, Sales Navigator) is case-sensitive: it keeps its case
        ("https://www.linkedin.com/in/ACoAAB12345/", "https://www.linkedin.com/in/ACoAAB12345"),
        ("linkedin.com/IN/ACwAAAbC_d-9?trk=x", "https://www.linkedin.com/in/ACwAAAbC_d-9"),
        ("https://www.linkedin.com/company/ACoAAB12345", "https://www.linkedin.com/company/acoaab12345"),
    ],
)
def test_linkedin_urls(raw: str, expected: str) -> None:
    result = linkedin_urls(one(raw))
    assert result.values.iloc[0] == expected
    assert py(result.problems.iloc[0]) is None


def test_linkedin_member_ids_differing_in_case_stay_two_profiles() -> None:
    result = linkedin_urls(pd.Series(["linkedin.com/in/ACoAAbc1", "linkedin.com/in/ACoAABC1", "linkedin.com/in/Ann"]))
    assert result.values.tolist() == [
        "https://www.linkedin.com/in/ACoAAbc1",
        "https://www.linkedin.com/in/ACoAABC1",
        "https://www.linkedin.com/in/ann",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/pub/jane-doe/1/2/3",
        "https://www.linkedin.com/in/",
        "https://notlinkedin.org/in/jane",
        "jane-doe",
        "https://twitter.com/jane",
    ],
)
def test_invalid_linkedin_urls(raw: str) -> None:
    result = linkedin_urls(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == LINKEDIN_PROBLEM


# --------------------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------------------


def test_every_datablist_country_is_known_except_netherlands_antilles() -> None:
    countries = pd.read_csv(DATABLIST / "customers-10000.csv.gz", usecols=["Country"], dtype="str")["Country"]
    distinct = pd.Series(countries.dropna().unique(), dtype="str")
    result = country_codes(distinct)
    unknown = dict(zip(distinct[result.values.isna()], result.problems[result.values.isna()], strict=True))
    assert unknown == {"Netherlands Antilles": FORMER_COUNTRY_PROBLEM}
    codes = dict(zip(distinct, result.values, strict=True))
    assert len(set(codes.values()) - {pd.NA}) == len(distinct) - 1  # no two names share a code
    assert codes["United States of America"] == "US"
    assert codes["Korea"] == "KR"
    assert codes["Libyan Arab Jamahiriya"] == "LY"
    assert codes["Holy See (Vatican City State)"] == "VA"
    assert codes["Saint Barthelemy"] == "BL"
    assert codes["Saint Martin"] == "MF"
    assert codes["Cote d'Ivoire"] == "CI"
    assert codes["Antarctica (the territory South of 60 deg S)"] == "AQ"
    assert codes["Svalbard & Jan Mayen Islands"] == "SJ"
    assert codes["British Virgin Islands"] == "VG"
    assert codes["United States Virgin Islands"] == "VI"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States", "US"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("Wales", "GB"),
        ("Northern Ireland", "GB"),
        ("Republic of Ireland", "IE"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("North Korea", "KP"),
        ("Russia", "RU"),
        ("Iran", "IR"),
        ("Vietnam", "VN"),
        ("Bolivia", "BO"),
        ("Venezuela", "VE"),
        ("Tanzania", "TZ"),
        ("Syria", "SY"),
        ("Laos", "LA"),
        ("Moldova", "MD"),
        ("Czech Republic", "CZ"),
        ("Ivory Coast", "CI"),
        ("Côte d\u2019Ivoire", "CI"),  # typographic apostrophe
        ("Palestine", "PS"),
        ("Macedonia", "MK"),
        ("DEU", "DE"),
        ("Deutschland", "DE"),
        ("the Netherlands", "NL"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("St. Lucia", "LC"),
        ("Democratic Republic of the Congo", "CD"),
        ("Congo", "CG"),
        ("日本", "JP"),
        ("السّعوديّة", "SA"),  # with its shadda, as pycountry's Arabic writes it
        ("السعودية", "SA"),
        ("ישראל", "IL"),
        ("ΕΛΛΆΔΑ", "GR"),
        ("Україна", "UA"),
        ("ประเทศไทย", "TH"),
        ("भारत", "IN"),
        ("臺灣", "TW"),
    ],
)
def test_country_codes(raw: str, expected: str) -> None:
    result = country_codes(one(raw))
    assert result.values.iloc[0] == expected
    assert py(result.problems.iloc[0]) is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("Narnia", COUNTRY_PROBLEM),
        ("840", COUNTRY_PROBLEM),
        ("Virgin Islands", COUNTRY_PROBLEM),  # British or U.S.: not guessed
        ("Netherlands Antilles", FORMER_COUNTRY_PROBLEM),
        ("Yugoslavia", FORMER_COUNTRY_PROBLEM),
    ],
)
def test_unknown_countries(raw: str, problem: str) -> None:
    result = country_codes(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == problem


# --------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
        ("John von Neumann", "John", "von Neumann"),
        ("Ursula von der Leyen", "Ursula", "von der Leyen"),
        ("Juan de la Cruz", "Juan", "de la Cruz"),
        ("Leonardo di Caprio", "Leonardo", "di Caprio"),
        ("María José García-López", "María José", "García-López"),  # middle names stay with the first
        ("Zoë Saldaña", "Zoë", "Saldaña"),
        ("Björn Ångström", "Björn", "Ångström"),
        ("Smith, John", "John", "Smith"),
        ("Beethoven, Ludwig van", "Ludwig", "van Beethoven"),
        ("O'Neil, Shaquille", "Shaquille", "O'Neil"),
        ("Dr. Jane Smith", "Jane", "Smith"),
        ("Prof. Dr. Hans Müller", "Hans", "Müller"),
        ("Martin Luther King Jr.", "Martin Luther", "King"),
        ("Madonna", "Madonna", NA),
        ("  Jane   Smith ", "Jane", "Smith"),
    ],
)
def test_full_names_are_split(full: str, first: str, last: str | None) -> None:
    names = complete_names(None, None, one(full), pd.RangeIndex(1))
    assert (py(names.first_name.iloc[0]), py(names.last_name.iloc[0])) == (first, last)
    assert names.full_name.iloc[0] == " ".join(full.split())  # the full name is kept as written


@pytest.mark.parametrize(
    ("full", "country", "first", "last"),
    [
        ("Nagy Zoltán", "HU", "Zoltán", "Nagy"),  # the fast path
        ("Kovács Anna Mária", "HU", "Anna Mária", "Kovács"),  # given names after the family name
        ("Dr. Szabó Péter", "HU", "Péter", "Szabó"),
        ("Nagy, Zoltán", "HU", "Zoltán", "Nagy"),  # the comma marks the family name
        ("Zsuzsa", "HU", "Zsuzsa", NA),
        ("Nagy Zoltán", "AT", "Nagy", "Zoltán"),
        ("Nagy Zoltán", None, "Nagy", "Zoltán"),
        ("Wang Wei", "CN", "Wang", "Wei"),  # Latin letters say nothing of the order
    ],
)
def test_full_names_of_family_first_countries_are_split_family_first(
    full: str, country: str | None, first: str, last: str | None
) -> None:
    names = complete_names(None, None, one(full), pd.RangeIndex(1), pd.Series([country], dtype="str"))
    assert (py(names.first_name.iloc[0]), py(names.last_name.iloc[0])) == (first, last)
    assert names.full_name.iloc[0] == full  # kept as written


@pytest.mark.parametrize(
    ("full", "country", "first", "last"),
    [
        ("王伟", None, "伟", "王"),
        ("王小明", "CN", "小明", "王"),
        ("張偉", "TW", "偉", "張"),  # traditional characters
        ("金民俊", "KR", "民俊", "金"),  # a Korean name in hanja
        ("欧阳娜娜", None, "娜娜", "欧阳"),  # compound family names
        ("司马懿", None, "懿", "司马"),
        ("歐陽修", None, "修", "歐陽"),
        ("김민준", "KR", "민준", "김"),
        ("빈민준", None, "민준", "빈"),  # a family name nameparser does not know
        ("남궁민수", None, "민수", "남궁"),
        ("제갈량", None, "량", "제갈"),
        ("황보민수", None, "민수", "황보"),
        ("황보람", None, "보람", "황"),  # Hwang Boram: 황보 only before a given name of two syllables
        ("山田花子", None, NA, "山田花子"),  # four Han characters: Japanese, left whole
        ("田中実", "JP", NA, "田中実"),  # in a row of Japan, whatever its length
        ("山田はなこ", None, NA, "山田はなこ"),  # kana: Japanese
        ("佐々木希", None, NA, "佐々木希"),
    ],
)
def test_chinese_and_korean_full_names_are_split_family_name_first(
    full: str, country: str | None, first: str | None, last: str
) -> None:
    """王伟 in a full-name column was not split (the whole in the last name, no first name), where 王 and 伟 in two
    columns were; the split one's full name and search text are those of the two columns."""
    names = complete_names(None, None, one(full), pd.RangeIndex(1), pd.Series([country], dtype="str"))
    assert (py(names.first_name.iloc[0]), py(names.last_name.iloc[0])) == (first, last)
    assert names.full_name.iloc[0] == full
    if first is not None:
        assert fields.full_name(first, last) == full, "as sql/165 joins the two columns"
        company = one("acme")
        two_columns = name_key(one(first), one(last), company).iloc[0]
        assert name_key(names.first_name, names.last_name, company).iloc[0] == two_columns, "one person to dedupe"


def test_complete_names_fills_only_what_is_missing() -> None:
    index = pd.Index(["a", "b", "c", "d", "e", "f"])
    first = pd.Series(["Jane", None, "Ludwig", None, "Ann", None], index=index, dtype="str")
    last = pd.Series(["Smith", "Curie", None, None, None, None], index=index, dtype="str")
    full = pd.Series([None, None, "Ludwig van Beethoven", "Marie Curie", "Ann Lee", None], index=index, dtype="str")
    names = complete_names(first, last, full, index)
    assert values(names.first_name) == ["Jane", NA, "Ludwig", "Marie", "Ann", NA]
    assert values(names.last_name) == ["Smith", "Curie", "van Beethoven", "Curie", "Lee", NA]
    assert values(names.full_name) == [
        "Jane Smith",
        "Curie",
        "Ludwig van Beethoven",
        "Marie Curie",
        "Ann Lee",
        NA,
    ]
    assert list(names.full_name.index) == list(index)


def test_complete_names_with_only_first_and_last() -> None:
    names = complete_names(pd.Series(["Zoë", None]), pd.Series(["Saldaña", None]), None, pd.RangeIndex(2))
    assert values(names.full_name) == ["Zoë Saldaña", NA]


def test_name_fast_path_matches_nameparser() -> None:
    """Plain two-word names are split without nameparser; the answer must be the one nameparser gives."""
    people = pd.read_csv(DATABLIST / "people-10000.csv.gz", usecols=["First Name", "Last Name"], dtype="str")
    full = (people["First Name"] + " " + people["Last Name"]).drop_duplicates().head(1500)
    tricky = [
        "Dean Martin",
        "Sir Elton",
        "John E",
        "Ben Y",
        "Mary Ann",
        "Van Damme",
        "Abu Bakr",
        "Bob Jr",
        "Mr Bean",
    ]
    full = pd.concat([full, pd.Series(tricky)], ignore_index=True)
    names = complete_names(None, None, full, full.index)
    for raw, first, last in zip(full, names.first_name, names.last_name, strict=True):
        parsed = HumanName(raw)
        expected_first = " ".join(p for p in (parsed.first, parsed.middle) if p) or None
        assert (py(first), py(last)) == (expected_first, parsed.last or None), raw


# --------------------------------------------------------------------------------------------------------
# Matching keys
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Rasmussen Group", "rasmussen group"),
        ("Vega-Gentry", "vega gentry"),
        ("Acme, Inc.", "acme"),
        ("ACME INC", "acme"),
        ("Acme Incorporated", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Acme Co., Ltd.", "acme"),
        ("Acme Pty Ltd", "acme"),
        # German umlauts as German spells them without: "Müller" is "Mueller" (it was "Muller")
        ("Müller GmbH & Co. KG", "mueller"),
        ("Mueller GmbH", "mueller"),
        ("Mu\u0308ller GmbH", "mueller"),  # decomposed
        ("SCHÖNE ÄPFEL AG", "schoene aepfel"),
        ("Großhandel Süd", "grosshandel sued"),
        ("Citroën", "citroen"),  # another diaeresis is an accent
        ("Nestlé S.A.", "nestle"),
        ("Philips N.V.", "philips"),
        ("ING B.V.", "ing"),
        ("Procter & Gamble", "procter and gamble"),
        ("The Coca-Cola Company", "coca cola"),
        ("Horn, Shepard and Watson", "horn shepard and watson"),
        ("Mckinney PLC", "mckinney"),
        ("Ørsted A/S", "orsted"),  # a legal form written with a slash (it was "orsted a s")
        ("Natura Cosméticos S/A", "natura cosmeticos"),
        ("S/S Partners", "s s partners"),
        ("\uff34\uff4f\uff59\uff4f\uff54\uff41", "toyota"),  # full-width letters
        ("日産化学㈱", "日産化学"),
        ("ガス株式会社", "ガス"),  # the voicing mark is not an accent: ガ does not become カ
        ("Inc.", "inc"),  # a name that is only a legal form keeps it
        ("", NA),
    ],
)
def test_company_key(raw: str, expected: str | None) -> None:
    assert py(company_key(one(raw)).iloc[0]) == expected


def test_company_key_on_japanese_salesforce_export() -> None:
    companies = pd.read_csv(DATA / "exports" / "salesforce_leads_sample_jp.csv", dtype="str")["Company"]
    assert values(company_key(companies)) == ["五洋建設", "アイ アイ エム", "日産化学", "どこにもない商事"]


def test_name_key() -> None:
    first = pd.Series(["Zoë", "ZOE", None, "Jane", None], dtype="str")
    last = pd.Series(["Saldaña", "saldana", "Smith", "Doe", None], dtype="str")
    companies = company_key(pd.Series(["Acme, Inc.", "ACME", "Acme", None, "Acme"], dtype="str"))
    assert values(name_key(first, last, companies)) == [
        "zoe saldana|acme",
        "zoe saldana|acme",
        "smith|acme",
        NA,
        NA,
    ]


@pytest.mark.parametrize(
    ("first", "last", "full"),
    [
        ("花子", "山田", "山田花子"),
        ("伟", "王", "王伟"),
        ("민준", "김", "김민준"),
        ("Hanako", "Yamada", "Hanako Yamada"),
    ],
)
def test_a_name_in_two_columns_and_kept_whole_has_one_name_key(first: str, last: str, full: str) -> None:
    """山田 and 花子 in two columns were keyed "花子 山田", the full name 山田花子 (a Japanese name, kept whole in
    the last name) "山田花子": the same person at the same company, imported once each way, made two leads. A
    Chinese, Japanese or Korean name is keyed as its full name is written, so the two forms and a full-name column
    meet; a Latin name keeps its key."""
    company = company_key(one("Toyota"))
    two_columns = name_key(one(first), one(last), company).iloc[0]
    assert name_key(one(None), one(full), company).iloc[0] == two_columns
    names = complete_names(None, None, one(full), pd.RangeIndex(1))
    assert name_key(names.first_name, names.last_name, company).iloc[0] == two_columns


# --------------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1200", 1200),
        ("1,200", 1200),
        ("1 200", 1200),
        ("1.200.000", 1200000),
        ("1.000", 1000),  # a German file's thousand employees: no count has three decimals
        ("1.200", 1200),
        ("10.000+", 10000),
        ("1.2k", 1200),
        ("4.35K", 4350),
        ("51-200", 51),  # a size band becomes its lower bound
        ("51 - 200", 51),
        ("10,001+", 10001),
        ("1200.0", 1200),
        ("-3", -3),
        ("2147483647", 2_147_483_647),  # the largest integer column value
        ("-2,147,483,647", -2_147_483_647),
    ],
)
def test_to_int(raw: str, expected: int) -> None:
    result = to_int(one(raw))
    assert result.values.iloc[0] == expected
    assert py(result.problems.iloc[0]) is None


@pytest.mark.parametrize(
    "raw", ["1.5", "1.20", "1.200,5", "many", "1,2,3", "12%", "1.2x", "0.500", "0,500", "2147483648", "-2,147,483,648"]
)
def test_to_int_problems(raw: str) -> None:
    result = to_int(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == INT_PROBLEM


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$3.2B", 3_200_000_000.0),
        ("3200000000", 3_200_000_000.0),
        ("$3,200,000.50", 3_200_000.5),
        ("3.2 million", 3_200_000.0),
        ("USD 12M", 12_000_000.0),
        ("1,5 Mio", 1_500_000.0),
        ("€ 1.200.000,50", 1_200_000.5),
        ("2,5 Mrd. €", 2_500_000_000.0),
        ("12,50", 12.5),
        ("$1M-$10M", 1_000_000.0),
        ("1-10M", 1_000_000.0),  # the band's unit applies to its lower bound
        ("0.1", 0.1),
        # a "." before three digits groups thousands as in a count, where nothing else can be meant: no amount
        # of money has three decimals ("€ 2.000" was stored as 2.0)
        ("€ 2.000", 2000.0),
        ("2.000 €", 2000.0),
        ("EUR 450.000", 450_000.0),
        ("€1.000-€2.000", 1000.0),
        ("$2.125B", 2_125_000_000.0),  # with a magnitude, three decimals are the US way of writing it
        ("1.500 Mio", 1_500_000.0),
        ("0.125", 0.125),  # no thousands group starts with 0
        ("0,125", 0.125),
        ("1.5", 1.5),
        ("1.20", 1.2),
        ("1.2000", 1.2),
        # every magnitude word exports write
        ("2 thousand", 2000.0),
        ("3mm", 3_000_000.0),
        ("1.5 mn", 1_500_000.0),
        ("4 mil", 4_000_000.0),
        ("2 millions", 2_000_000.0),
        ("7bn", 7_000_000_000.0),
        ("2 bil", 2_000_000_000.0),
        ("1.2 billion", 1_200_000_000.0),
        ("3 billions", 3_000_000_000.0),
        ("2 Md", 2_000_000_000.0),
        ("2 Milliard", 2_000_000_000.0),
        ("3 Milliarden", 3_000_000_000.0),
        ("1T", 1e12),
        ("2 tn", 2e12),
        ("1.1 trillion", 1.1e12),
    ],
)
def test_to_number(raw: str, expected: float) -> None:
    result = to_number(one(raw))
    assert result.values.iloc[0] == expected
    assert py(result.problems.iloc[0]) is None


@pytest.mark.parametrize("raw", ["n/a", "3.2 zillion", "1..2", "$", "ten"])
def test_to_number_problems(raw: str) -> None:
    result = to_number(one(raw))
    assert py(result.values.iloc[0]) is None
    assert result.problems.iloc[0] == NUMBER_PROBLEM
