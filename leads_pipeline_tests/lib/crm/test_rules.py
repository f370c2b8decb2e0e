"""Pure rules of the CRM sync: conflict resolution, connection files, mapping and hashing, the token bucket."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leads_pipeline.lib.crm.conflicts import Merge, merge
from leads_pipeline.lib.crm.connection import load_connection_file, parse_connection
from leads_pipeline.lib.crm.inbound import as_sent, lead_values
from leads_pipeline.lib.crm.mapping import FieldMap, map_lead, values_hash
from leads_pipeline.lib.crm.sync import push_filters
from leads_pipeline.lib.crm.validation import problems
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.ratelimit import TokenBucket
from leads_pipeline.lib.runtime import PROJECT_ROOT

EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATE = EARLY + timedelta(hours=1)
RULES = {"title": "most_recent", "company": "crm_wins", "phone": "local_wins"}


def test_only_one_side_changed_is_no_conflict() -> None:
    base = {"title": "CTO", "company": "Acme", "phone": "1"}
    result = merge(base, {**base, "phone": "2"}, {**base, "title": "CEO"}, RULES, EARLY, LATE)  # type: ignore[arg-type]
    assert result.take == {"title": "CEO"}
    assert result.conflicts == []


@pytest.mark.parametrize(
    ("field", "local_time", "remote_time", "winner"),
    [
        ("company", LATE, EARLY, "crm"),  # crm_wins whatever the times
        ("phone", EARLY, LATE, "local"),  # local_wins whatever the times
        ("title", EARLY, LATE, "crm"),  # most_recent: the CRM changed later
        ("title", LATE, EARLY, "local"),  # most_recent: the pipeline changed later
    ],
)
def test_both_sides_changed_the_rule_decides_and_the_conflict_is_recorded(
    field: str, local_time: datetime, remote_time: datetime, winner: str
) -> None:
    base = {field: "base"}
    result = merge(base, {field: "ours"}, {field: "theirs"}, RULES, local_time, remote_time)  # type: ignore[arg-type]
    assert [(c.field, c.local, c.remote, c.winner) for c in result.conflicts] == [(field, "ours", "theirs", winner)]
    assert result.take == ({field: "theirs"} if winner == "crm" else {})


def test_never_synced_fills_empty_fields_and_counts_differences_as_conflicts() -> None:
    result = merge(None, {"title": None, "company": "Ours"}, {"title": "CEO", "company": "Theirs"},
                   RULES, EARLY, LATE)  # type: ignore[arg-type]  # fmt: skip
    assert result.take == {"title": "CEO", "company": "Theirs"}
    assert [c.field for c in result.conflicts] == ["company"]


def test_numbers_and_empty_values_compare_as_the_crm_stores_them() -> None:
    assert merge({"n": "50"}, {"n": 50}, {"n": "50"}, {"n": "crm_wins"}, EARLY, LATE).take == {}  # type: ignore[dict-item]
    assert values_hash({"a": 50, "b": ""}) == values_hash({"b": None, "a": "50"})


@pytest.mark.parametrize(
    ("field", "ours", "theirs", "edited"),
    [
        ("phone", "+14155550100", "(415) 555-0100", "(415) 555-0199"),
        ("email", "ann@example.com", "Ann@Example.com", "ann@example.org"),
        ("website", "acme.com", "https://www.acme.com/", "https://www.acme.org/"),
        ("linkedin_url", "https://www.linkedin.com/in/ann", "linkedin.com/in/Ann/", "linkedin.com/in/ann-lee/"),
        ("company", "Acme Analytics", "Acme  Analytics", "Acme Analytics Ltd"),
        ("company", "Acme Analytics", " Acme\r\nAnalytics ", "Acme\nAnalytica"),
        ("country", "US", "United States", "Canada"),
    ],
)
def test_the_crms_writing_of_the_leads_value_is_no_change_and_another_value_is(
    field: str, ours: str, theirs: str, edited: str
) -> None:
    """A CRM holding the lead's value written its own way ("(415) 555-0100" for +14155550100) was an edit of the
    CRM's to a sync: pulled, or a conflict, and the lead's form sent back. Compared as it would be sent once
    normalized as an import normalizes, it is the lead's value; another value is still the CRM's edit."""
    mapping = (FieldMap(field, "f"),)

    def merged(value: str, local: str = ours) -> Merge:
        normal = as_sent(mapping, {"f": value}, lead_values([{field: value}])[0])
        return merge({"f": ours}, {"f": local}, {"f": value}, {"f": "crm_wins"}, EARLY, LATE, normal)

    assert merged(theirs) == Merge({}, [])
    assert merged(theirs, local="changed") == Merge({}, []), "the lead's edit is no conflict: sent"
    assert merged(edited).take == {"f": edited} and merged(edited).conflicts == []
    assert [c.remote for c in merged(edited, local="changed").conflicts] == [edited]


def test_a_value_that_fits_no_field_or_holds_an_extension_is_compared_as_the_crm_writes_it() -> None:
    """What the lead cannot hold as the CRM writes it (kept under custom.<field>, a phone's extension kept apart)
    is never the lead's value however it normalizes: a change the lead takes as before."""
    mapping = (FieldMap("phone", "Phone"), FieldMap("email", "Email", ("upper",)), FieldMap("title", "Title"))
    remote = {"Phone": "415 555 0100 ext. 7", "Email": "Ann@Example.com", "Title": None}
    assert as_sent(mapping, remote, lead_values([{"phone": remote["Phone"], "email": remote["Email"]}])[0]) == {
        "Phone": "415 555 0100 ext. 7", "Email": "ANN@EXAMPLE.COM", "Title": None
    }  # fmt: skip
    assert as_sent(mapping, {"Phone": "call me"}, lead_values([{"phone": "call me"}])[0]) == {"Phone": "call me"}


def test_records_normalized_together_are_each_as_alone() -> None:
    """A pull normalizes a chunk's records a field at a time: each record's lead values are those it has alone
    (its phone read in its own country, its misfits and extensions its own)."""
    records = [
        {"phone": "030 1234567 ext. 12", "country": "Germany", "email": "Pia@Example.NET", "company": "Acme  GmbH"},
        {"phone": "(415) 555-0100", "country": None, "email": "nope", "employee_count": "51-200"},
        {"phone": "call me", "country": "Narnia", "website": "https://www.acme.com/", "id": "7"},
        {"phone": "+44 20 7946 0958", "country": "US", "linkedin_url": "linkedin.com/in/Ann/", "title": "\u200b"},
        {},
    ]
    assert lead_values(records) == [lead_values([record])[0] for record in records]
    assert lead_values(records)[0]["phone"] == "+49301234567" and lead_values(records)[1]["custom.email"] == "nope"


def test_a_number_with_no_country_of_its_own_is_read_in_the_leads_then_in_the_default_region() -> None:
    """A record with no country (none mapped, or the CRM's empty or no country) has its numbers read in the country
    its lead holds, then in the default region, as ``leads bulk set`` reads them; its own country comes first. Read
    in the default region alone, a UK lead's "01632 960000" was a misfit that cleared the lead's phone."""
    records = [
        {"phone": "01632 960000"},
        {"phone": "01632 960000", "country": ""},
        {"phone": "01632 960000", "country": "Narnia"},
        {"phone": "(415) 555-0100"},
        {"phone": "030 1234567", "country": "DE"},
        {"phone": "01632 960000"},
    ]
    found = lead_values(records, ["GB", "GB", "GB", "GB", "GB", None])
    assert [(v["phone"], v.get("custom.phone")) for v in found] == [
        ("+441632960000", None),
        ("+441632960000", None),
        ("+441632960000", None),
        ("+14155550100", None),
        ("+49301234567", None),
        (None, "01632 960000"),
    ]
    assert found == [
        lead_values([r], [c])[0] for r, c in zip(records, ["GB", "GB", "GB", "GB", "GB", None], strict=True)
    ]


def test_mapping_applies_transforms_and_reads_custom_fields() -> None:
    mapping = (
        FieldMap("email", "Email", ("strip", "lower")),
        FieldMap("custom.Lead Owner", "Owner__c", ("upper",)),
        FieldMap("company", "Company", ("default:Unknown", "truncate:5")),
    )
    lead = {"email": "  Ann@X.COM ", "custom": {"Lead Owner": "bo"}, "company": None}
    assert map_lead(lead, mapping) == {"Email": "ann@x.com", "Owner__c": "BO", "Company": "Unkno"}


@pytest.mark.parametrize(
    ("value", "units", "expected"),
    [
        ("\U0001f680" * 100, 128, "\U0001f680" * 64),
        ("a\U0001f680", 2, "a"),  # an emoji is never cut in two
        ("a\U0001f680b", 3, "a\U0001f680"),
        ("\U00020b9f" * 3, 5, "\U00020b9f" * 2),  # an ideograph outside the Basic Multilingual Plane
        ("Müller & Söhne", 6, "Müller"),
        ("short", 128, "short"),
    ],
)
def test_truncate_counts_utf16_code_units_as_salesforce_does(value: str, units: int, expected: str) -> None:
    """truncate:N cut at N code points, so a value with emoji was longer than N as Salesforce counts it."""
    mapping = (FieldMap("title", "Title", (f"truncate:{units}",)),)
    assert map_lead({"title": value}, mapping) == {"Title": expected}
    assert len(expected.encode("utf-16-le")) // 2 <= units


def test_connection_file_errors_name_the_file_the_key_and_the_expectation(tmp_path: Path) -> None:
    path = tmp_path / "main.yaml"
    path.write_text("crm: hubspot\nmapping: {email: email, shoe_size: shoe}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"main.yaml: mapping: 'shoe_size' is not a lead field"):
        load_connection_file(path)
    cases = {
        "crm": ({"crm": "zoho"}, "crm: expected one of"),
        "object": ({"crm": "salesforce", "object": "Account"}, "object: expected one of Lead, Contact"),
        "conflict": ({"crm": "hubspot", "conflict": "newest"}, "conflict: expected one of"),
        "transform": ({"crm": "hubspot", "mapping": {"email": {"crm_field": "email", "transforms": ["rot13"]}}},
                      "unknown transform 'rot13'"),
        "match": ({"crm": "hubspot", "match_key": "phone"}, "match_key: 'phone' must name a mapped lead field"),
        "unknown": ({"crm": "hubspot", "shedule": "@daily"}, "unknown setting"),
        "cron": ({"crm": "hubspot", "schedule": "every day"},
                 r"^c: schedule: expected a cron expression of 5 fields .* found 'every day'$"),
        "seconds": ({"crm": "hubspot", "schedule": "0 0 * * * *"}, "schedule: expected a cron expression"),
        # refused when the file is read, as the file's where (it failed the run, named "--where")
        "where": ({"crm": "hubspot", "where": "employee_count >= 51-200"},
                  r"^c: where 'employee_count >= 51-200': employee_count is a whole number; got '51-200' \(a range:"
                  r' write two filters, "employee_count >= 51" and "employee_count <= 200"\)$'),
        "where operator": ({"crm": "hubspot", "where": "country DE"}, r"^c: where 'country DE': no operator after"),
    }  # fmt: skip
    for data, message in cases.values():
        with pytest.raises(ConfigurationError, match=message):
            parse_connection("c", {"mapping": {"email": "email"}, **data})
    for cron in ("0 * * * *", "@daily", "*/15 6-18 * * 1-5"):
        parsed = parse_connection("c", {"crm": "hubspot", "mapping": {"email": "email"}, "schedule": cron})
        assert parsed.schedule == cron


def test_a_runs_filter_is_refused_as_the_runs_where_not_as_an_option() -> None:
    """A run launched from the UI with a bad ``where`` was refused as "--where", an option of ``leads sync``."""
    connection = parse_connection("c", {"crm": "hubspot", "mapping": {"email": "email"}})
    with pytest.raises(ConfigurationError, match=r"^where 'colour = red': unknown field 'colour'"):
        push_filters(connection, ["colour = red"])


def test_the_readme_connection_file_loads_as_written(tmp_path: Path) -> None:
    """README's example connection file, pasted as it stands, is what a newcomer starts from: it was refused
    (``conflict_fields: jobtitle are not mapped CRM fields``) because its field rule named a CRM field the
    example did not map."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(# \$LEADS_HOME/crm/hubspot-main\.yaml\n.*?)```", readme, re.DOTALL)
    assert example is not None, "README's example connection file"
    path = tmp_path / "hubspot-main.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    connection = load_connection_file(path)
    assert connection.rule_for("jobtitle") == "crm_wins"
    assert connection.remote_fields == ["email", "firstname", "jobtitle", "company"]
    assert (connection.direction, connection.list_name) == ("bidirectional", "Q3 EMEA")


def test_validation_holds_back_bad_emails_and_missing_required_fields() -> None:
    connection = parse_connection(
        "sf", {"crm": "salesforce", "match_key": "email",
               "mapping": {"email": "Email", "last_name": "LastName", "company": "Company"}},
    )  # fmt: skip
    assert problems(connection, {"Email": "a@b.co", "LastName": "Lee", "Company": "Acme"}) == []
    found = problems(connection, {"Email": "nope", "LastName": None, "Company": "Acme"})
    assert found == ["Email 'nope' is not an email address", "LastName is required by salesforce Lead"]
    assert problems(connection, {"Email": "a@b.c", "LastName": "Lee", "Company": "Acme"}) != []


@pytest.mark.parametrize("email", ["info@пример.рф", "info@xn--e1afmkfd.xn--p1ai", "用户@例子.广告", "r@बिक्री.भारत"])
def test_an_address_at_an_internationalized_top_level_domain_is_pushed(email: str) -> None:
    """The import stores these (email-validator takes them), but the check before a push held every address at
    .рф, .中国 or .भारत back as "not an email address", in Unicode or in its A-label alike: never sent."""
    connection = parse_connection("hs", {"crm": "hubspot", "match_key": "email", "mapping": {"email": "email"}})
    assert problems(connection, {"email": email}) == []


def test_token_bucket_paces_and_pauses() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10, 1.0, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        bucket.acquire()
    assert now[0] == pytest.approx(1.0)  # one token of burst, then one every 0.1 s
    bucket.pause(5.0)
    bucket.acquire()
    assert now[0] >= 6.0
