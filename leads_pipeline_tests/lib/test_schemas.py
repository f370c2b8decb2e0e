"""The stored-lead schema: its patterns judge a value the same whichever engine pandas runs them in (Python's
``re`` for object columns, pyarrow's RE2 for Arrow-backed ones, as the stored-lead check reads them)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from leads_pipeline.lib.schemas import WHITESPACE, validate_leads

TRICKY_EMAILS = [
    "ann@example.com",
    "zoë.brontë@exämple.de",
    "ann\u00a0lee@example.com",  # no-break space
    "ann@exa\u3000mple.com",  # ideographic space
    "ann\x1f@example.com",  # unit separator: whitespace to Python
    "ann@@example.com",
    "ann@example",
    "ann@例え.jp",
]
TRICKY_DOMAINS = ["example.com", "exämple.de", "exa mple.com", "example.com/path", "ex\u2009ample.com", "localhost"]
TRICKY_LINKEDIN = [
    "https://www.linkedin.com/in/ann-lee",
    "https://www.linkedin.com/in/ann\u200alee",  # hair space
    "https://www.linkedin.com/in/zoë",
    "https://www.linkedin.com/feed/ann",
]


def test_whitespace_is_exactly_what_python_calls_whitespace() -> None:
    every = [chr(code) for code in range(0x110000)]
    spelled_out = re.compile(f"[{WHITESPACE}]")
    assert [c for c in every if spelled_out.fullmatch(c)] == [c for c in every if re.fullmatch(r"\s", c)]


@pytest.mark.parametrize("dtype", ["object", "string[pyarrow]"])
def test_the_schema_finds_the_same_failures_in_object_and_arrow_columns(dtype: str) -> None:
    size = max(len(TRICKY_EMAILS), len(TRICKY_DOMAINS), len(TRICKY_LINKEDIN))

    def column(values: list[str]) -> pd.Series:
        return pd.Series(values + [None] * (size - len(values)), dtype=dtype)

    frame = pd.DataFrame(
        {"email": column(TRICKY_EMAILS), "website": column(TRICKY_DOMAINS), "linkedin_url": column(TRICKY_LINKEDIN)}
    )
    failing = {(f.column, f.value) for f in validate_leads(frame)}
    assert failing == {
        ("email", "ann\u00a0lee@example.com"),
        ("email", "ann@exa\u3000mple.com"),
        ("email", "ann\x1f@example.com"),
        ("email", "ann@@example.com"),
        ("email", "ann@example"),
        ("website", "exa mple.com"),
        ("website", "example.com/path"),
        ("website", "ex\u2009ample.com"),
        ("website", "localhost"),
        ("linkedin_url", "https://www.linkedin.com/in/ann\u200alee"),
        ("linkedin_url", "https://www.linkedin.com/feed/ann"),
    }
