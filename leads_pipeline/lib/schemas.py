"""The pandera schema of a stored lead, used twice: on every import chunk before it is written, and by the asset
checks on what was stored. One definition, so the import and the checks can never disagree about a valid lead."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

WHITESPACE = "\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""The characters Python's ``\\s`` matches in text, spelled out (as the characters, not escapes): with ``\\s`` in
a pattern pandas runs the check in Python row by row, since RE2's ``\\s`` (pyarrow) knows only ASCII whitespace;
spelled out, the same check runs in pyarrow (1M stored leads: ~1.9 s less per check)."""
EMAIL_PATTERN = f"^[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\\.[^@{WHITESPACE}]+$"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
DOMAIN_PATTERN = f"^[^{WHITESPACE}/:@]+\\.[^{WHITESPACE}/:@]+$"
LINKEDIN_PATTERN = f"^https://www\\.linkedin\\.com/(in|company|pub)/[^{WHITESPACE}]+$"

IDENTITY_COLUMNS = ("email", "phone", "mobile_phone", "linkedin_url", "full_name", "first_name", "last_name", "company")
"""The columns :func:`has_identity` reads."""
IDENTITY_RULE = "a way to reach or identify the lead: an email, a phone, a LinkedIn URL, or a name and a company"


def has_identity(frame: pd.DataFrame) -> pd.Series:
    """True where the lead can be reached or identified (the minimum for a row to be worth keeping)."""

    def present(column: str) -> pd.Series:
        if column not in frame.columns:
            return pd.Series(False, index=frame.index)
        return frame[column].notna()

    named = present("full_name") | present("first_name") | present("last_name")
    return (
        present("email")
        | present("phone")
        | present("mobile_phone")
        | present("linkedin_url")
        | (named & present("company"))
    )


def _text(pattern: str | None = None, description: str | None = None) -> pa.Column:
    checks = [pa.Check.str_matches(pattern, error=description)] if pattern else []
    return pa.Column(str, checks=checks, nullable=True, required=False)


LEAD_SCHEMA = pa.DataFrameSchema(
    {
        "email": _text(EMAIL_PATTERN, "expected an email address like name@example.com"),
        "phone": _text(E164_PATTERN, "expected a phone number in E.164 form like +14155550123"),
        "mobile_phone": _text(E164_PATTERN, "expected a phone number in E.164 form like +14155550123"),
        "website": _text(DOMAIN_PATTERN, "expected a bare domain like example.com"),
        "company_domain": _text(DOMAIN_PATTERN, "expected a bare domain like example.com"),
        "linkedin_url": _text(LINKEDIN_PATTERN, "expected a LinkedIn URL like https://www.linkedin.com/in/name"),
        "country": _text(r"^[A-Z]{2}$", "expected an ISO 3166 alpha-2 country code like US"),
        "employee_count": pa.Column(
            "Int64",
            pa.Check.ge(0, error="expected a number of employees >= 0"),
            nullable=True,
            required=False,
        ),
        "annual_revenue": pa.Column(
            "Float64", pa.Check.ge(0, error="expected an annual revenue >= 0"), nullable=True, required=False
        ),
    },
    checks=[pa.Check(has_identity, ignore_na=False, error=f"expected {IDENTITY_RULE}")],
    strict=False,
    coerce=False,
)


SCHEMA_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys([*LEAD_SCHEMA.columns, *IDENTITY_COLUMNS]))
"""Every column :data:`LEAD_SCHEMA` reads: a check on stored leads needs to fetch (and open) no other."""


@dataclass(frozen=True)
class SchemaFailure:
    """One failing cell (or row, when ``column`` is None) of a validated frame."""

    index: object
    column: str | None
    value: object
    reason: str


def validate_leads(frame: pd.DataFrame) -> list[SchemaFailure]:
    """Every failure of :data:`LEAD_SCHEMA` in ``frame`` (lazy: all of them, not the first)."""
    try:
        LEAD_SCHEMA.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _failures(exc.failure_cases)
    return []


def _failures(cases: pd.DataFrame) -> list[SchemaFailure]:
    failures: list[SchemaFailure] = []
    structural = cases[cases["index"].isna()]
    if len(structural):
        # A wrong dtype or missing column is a bug in the caller, not bad input: say so loudly.
        raise TypeError(f"frame does not fit the lead schema: {structural.to_dict('records')}")
    frame_checks = {str(check) for check in LEAD_SCHEMA.checks} | {c.name for c in LEAD_SCHEMA.checks}
    reported_rows: set[object] = set()
    for case in cases.itertuples(index=False):
        if case.schema_context == "DataFrameSchema" or case.check in frame_checks:
            # A row-level rule: pandera lists it once per column; report it once per row, without a value.
            if case.index in reported_rows:
                continue
            reported_rows.add(case.index)
            failures.append(SchemaFailure(case.index, None, None, _reason(str(case.check))))
            continue
        failures.append(SchemaFailure(case.index, str(case.column), case.failure_case, _reason(str(case.check))))
    return failures


def _reason(check_name: str) -> str:
    """The user-facing ``error`` text of the schema check that pandera names ``check_name``."""
    for check in (*LEAD_SCHEMA.checks, *(c for col in LEAD_SCHEMA.columns.values() for c in col.checks)):
        if check_name in (check.name, str(check)) or check_name == check.error:
            return check.error or check_name
    return check_name
