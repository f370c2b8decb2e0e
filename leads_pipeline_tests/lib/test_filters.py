"""The filter language: what parses, and the errors a user gets for what does not."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError, InputFileError
from leads_pipeline.lib.filters import Filter, Selection, Sort, parse_filter, read_ids_file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("country = DE", Filter("country", "=", ("DE",))),
        ("  email   ~ acme  ", Filter("email", "~", ("acme",))),
        ("title != 'Head of Sales'", Filter("title", "!=", ("Head of Sales",))),
        ("employee_count >= 50", Filter("employee_count", ">=", (50,))),
        ("employee_count<10", Filter("employee_count", "<", (10,))),
        ("annual_revenue > 1.5e6", Filter("annual_revenue", ">", (Decimal("1.5e6"),))),
        ("country in DE, FR,ES", Filter("country", "in", ("DE", "FR", "ES"))),
        ("country not in (DE, 'FR')", Filter("country", "not in", ("DE", "FR"))),
        ("phone is empty", Filter("phone", "is empty", ())),
        ("phone IS NOT EMPTY", Filter("phone", "is not empty", ())),
        ("phone not empty", Filter("phone", "is not empty", ())),
        ("custom.Visits > 3", Filter("custom.Visits", ">", ("3",))),
        ('custom."Lead Owner" = Ann Lee', Filter("custom.Lead Owner", "=", ("Ann Lee",))),
        ("created_at >= 2026-03-01", Filter("created_at", ">=", (date(2026, 3, 1),))),
        ("created_at >= 2026-03-01T08:30", Filter("created_at", ">=", (datetime(2026, 3, 1, 8, 30),))),
        ("updated_at < '2026-03-01 08:30'", Filter("updated_at", "<", (datetime(2026, 3, 1, 8, 30),))),
        ("stage in new, mql", Filter("stage", "in", ("new", "mql"))),
        ("company ~ in", Filter("company", "~", ("in",))),
        ("id = 7", Filter("id", "=", (7,))),
        ("id <= 9223372036854775807", Filter("id", "<=", (2**63 - 1,))),  # the largest bigint
        ("score > -9223372036854775808", Filter("score", ">", (-(2**63),))),
        ("annual_revenue > 1e20", Filter("annual_revenue", ">", (Decimal("1e20"),))),  # an amount has no such bound
        ('custom."Lead Owner"!=Ann', Filter("custom.Lead Owner", "!=", ("Ann",))),
        # numbers as the import reads them (they were refused: "employee_count is a whole number; got '1,000'")
        ("employee_count >= 1,000", Filter("employee_count", ">=", (1000,))),
        ("employee_count >= 1.000", Filter("employee_count", ">=", (1000,))),
        ("employee_count < 10k", Filter("employee_count", "<", (10_000,))),
        ("employee_count >= 10,001+", Filter("employee_count", ">=", (10_001,))),
        ("annual_revenue >= 2,000,000.50", Filter("annual_revenue", ">=", (Decimal("2000000.5"),))),
        ("annual_revenue > $3.2M", Filter("annual_revenue", ">", (Decimal("3200000"),))),
        ("annual_revenue > 1,5 Mio", Filter("annual_revenue", ">", (Decimal("1500000"),))),
        ("annual_revenue >= € 2.000", Filter("annual_revenue", ">=", (Decimal("2000"),))),  # as the import reads it
        ("score >= -1", Filter("score", ">=", (-1,))),
        # a list of numbers as the import reads each: a comma before three digits groups thousands, and where an
        # item is followed by a comma and a space, only that separates items (a decimal comma is a decimal comma)
        ("employee_count in 1,000, 2,000", Filter("employee_count", "in", (1000, 2000))),
        ("employee_count in (1,000,000)", Filter("employee_count", "in", (1_000_000,))),
        ("employee_count in 10,20,1,500", Filter("employee_count", "in", (10, 20, 1500))),
        ("employee_count in 0,100,1,100", Filter("employee_count", "in", (0, 100, 1100))),  # was refused
        ("employee_count not in 1.000, 10k", Filter("employee_count", "not in", (1000, 10_000))),
        ("annual_revenue in 1,5 Mio, 2,5", Filter("annual_revenue", "in", (Decimal("1500000"), Decimal("2.5")))),
        ("annual_revenue = 0,500", Filter("annual_revenue", "=", (Decimal("0.5"),))),  # not five hundred
        # a custom field's list as a number field's: its values are kept as the file wrote them ("1,000", "1,5")
        ("custom.Visits in 1,000, 2,000", Filter("custom.Visits", "in", ("1,000", "2,000"))),
        ("custom.Rate in 1,5, 2,5", Filter("custom.Rate", "in", ("1,5", "2,5"))),
        ("custom.Visits in 10,20,1,500", Filter("custom.Visits", "in", ("10", "20", "1,500"))),
        ("custom.Tier in gold,silver", Filter("custom.Tier", "in", ("gold", "silver"))),
    ],
)
def test_parses(text: str, expected: Filter) -> None:
    parsed = parse_filter(text)
    assert (parsed.field, parsed.op, parsed.values) == (expected.field, expected.op, expected.values)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("colour = red", ["unknown field 'colour'", "first_name", "custom.NAME"]),
        ("employee_count ~ 5", ["operator ~ does not apply to employee_count", "allowed operators", ">="]),
        ("country > DE", ["operator > does not apply to country", "=, !=, ~, !~, in, not in, is empty, is not empty"]),
        ("country", ["no operator after country", "allowed operators for country (text)"]),
        ("country == DE", ["unexpected '=' after =", "allowed operators for country"]),
        ("email =", ["= needs a value", "is empty"]),
        ('email = ""', ["= needs a value", "is empty"]),
        ("custom. = x", ["unknown field 'custom.'"]),
        ("id = 9223372036854775808", ["id is a whole number between -9223372036854775808 and 9223372036854775807"]),
        ("score >= -9223372036854775809", ["score is a whole number between -9223372036854775808 and"]),
        ("employee_count > many", ["employee_count is a whole number", "'many'"]),
        ("employee_count > 1.5", ["employee_count is a whole number", "'1.5'"]),
        ("employee_count = 0.500", ["employee_count is a whole number", "'0.500'"]),  # no thousands group is 0
        (
            "employee_count >= 51-200",
            ["employee_count is a whole number", "'51-200' (a range: write two filters", '"employee_count <= 200"'],
        ),
        (
            "annual_revenue < $1M-$10M",
            ["annual_revenue is a number", '--where "annual_revenue >= $1M" --where "annual_revenue <= $10M")'],
        ),
        ("employee_count in 10, 1k to 5k", ['"employee_count >= 1k" --where "employee_count <= 5k"']),
        ("annual_revenue > NaN", ["annual_revenue is a number", "'NaN'"]),
        # beyond PostgreSQL's numeric: the search ended with "value overflows numeric format"
        ("annual_revenue > 1e5000000", ["'1e5000000' is beyond the numbers annual_revenue holds", "3200000"]),
        ("annual_revenue = 1e-5000000", ["'1e-5000000' is beyond the numbers annual_revenue holds"]),
        ("annual_revenue in 2, 1e400", ["'1e400' is beyond"]),
        ("company = a\x00", ["a NUL character is in no lead's value"]),  # the database refused the query
        ("custom.Visits > 1e400", ["'1e400' is not a finite number; compare custom.Visits with one"]),  # as text
        ("custom.Visits <= -inf", ["'-inf' is not a finite number"]),
        ('custom.Visits >= "NaN"', ["'NaN' is not a finite number"]),
        ("created_at > yesterday", ["created_at is a date", "2026-03-31"]),
        ("phone is empty now", ["is empty takes no value"]),
        ("country in ,", ["in needs a comma-separated list"]),
        ('custom."Lead Owner = x', ["no closing quote"]),
        (
            "custom.Lead Source = X",
            ["no operator after custom.Lead", 'spaces goes in quotes, like custom."Lead Source"'],
        ),
        ("custom.Lead Source Name in a, b", ['like custom."Lead Source Name";']),
        ("custom.Lead Source=X", ['like custom."Lead Source";']),
        ("custom.Lead Interest is empty", ['like custom."Lead Interest";']),
        ("", ["FIELD OP VALUE"]),
        ("= DE", ["expected FIELD OP VALUE"]),
    ],
)
def test_bad_filters_name_the_field_and_the_allowed_operators(text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_filter(text)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(("text", "field"), [("country DE", "country"), ("custom.Visits", "custom.Visits")])
def test_only_a_custom_field_followed_by_more_words_is_told_to_quote_its_name(text: str, field: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_filter(text)
    assert f"no operator after {field}; allowed operators for {field}" in str(error.value)
    assert "quotes" not in str(error.value)


def test_a_value_that_is_no_number_is_named_with_nothing_after_it() -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_filter("employee_count > many")
    assert str(error.value) == "--where 'employee_count > many': employee_count is a whole number; got 'many'"


def test_sort_and_selection_options() -> None:
    assert Sort.parse("-score") == Sort("score", True)
    assert Sort.parse(None) == Sort("id", False)
    with pytest.raises(ConfigurationError, match="sort on one of"):
        Sort.parse("custom.Visits")
    with pytest.raises(ConfigurationError, match="--score-min 80 is above --score-max 20"):
        Selection.build(score_min=80, score_max=20)
    with pytest.raises(ConfigurationError, match="between 0 and 100"):
        Selection.build(score_min=-1)
    selection = Selection.build(lists=["a"], where=["country = DE"], query="  acme ", tags=["hot"], ids=[1, 2])
    assert selection.query == "acme"
    assert selection.describe(values=True) == "lists a; country = DE; text 'acme'; tag hot; 2 ids"
    assert selection.describe() == "lists a; country = DE; text <value>; tag hot; 2 ids"


def test_a_recorded_description_leaves_out_the_values_compared_with_a_person() -> None:
    """Batch descriptions and audit entries outlive a person's erasure: a name, address, number or custom value
    the selection compared is left out of them, the fields, operators and other values are kept."""
    where = [
        "last_name = Garcia",
        "email ~ ana.garcia",
        'custom."Met at" in Ana, Jo',
        "notes is empty",
        "city = Madrid",
    ]
    selection = Selection.build(where=where)
    assert selection.describe() == (
        "all readable lists; last_name = <value>; email ~ <value>; custom.Met at in <value>; notes is empty;"
        " city = Madrid"
    )
    assert selection.describe(values=True) == "all readable lists; " + "; ".join(where)


def test_ids_files(tmp_path: Path) -> None:
    plain = tmp_path / "ids.txt"
    plain.write_text("# leads to score\n3\n1\n\n2  # a comment\n")
    assert read_ids_file(plain) == [3, 1, 2]
    export = tmp_path / "export.csv"
    export.write_text('email,id\n"a@x.io",7\nb@x.io,8\n')
    assert read_ids_file(export) == [7, 8]
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n2.5\n")
    with pytest.raises(InputFileError, match=r"bad.txt: line 2: expected a lead id \(a whole number\), found '2.5'"):
        read_ids_file(bad)
    bad.write_text("1\n\u00b2\n")  # a superscript two is a digit to str.isdigit, not to int: it was a traceback
    with pytest.raises(InputFileError, match=r"bad.txt: line 2: expected a lead id \(a whole number\), found '²'"):
        read_ids_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(InputFileError, match="no lead ids"):
        read_ids_file(empty)
