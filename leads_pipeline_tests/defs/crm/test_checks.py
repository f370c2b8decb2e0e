"""The push check's metadata, which Dagster's event log keeps for ever: the problems of the leads held back, with
no address in clear."""

from __future__ import annotations

import dagster as dg

from leads_pipeline.defs.crm.checks import push_check
from leads_pipeline.lib.crm.connection import parse_connection
from leads_pipeline.lib.crm.sync import Invalid, PushPlan
from leads_pipeline.lib.crm.validation import problems


def test_the_problems_of_leads_held_back_quote_no_address() -> None:
    """A problem quotes the value it is about (``Email 'ann.lee@acme' is not an email address``): the preview masked
    the email column and showed the same address in clear beside it, and so did the check's reason when every lead
    failed."""
    connection = parse_connection(
        "sf", {"crm": "salesforce", "match_key": "email", "mapping": {"email": "Email", "last_name": "LastName"}}
    )
    reasons = problems(connection, {"Email": "ann.lee@acme", "LastName": "Lee"})
    assert reasons == ["Email 'ann.lee@acme' is not an email address"], "what a member reads in `leads sync errors`"
    result = push_check(connection, PushPlan(invalid=[Invalid(7, "ann.lee@acme", tuple(reasons), "h")]), {})

    assert not result.passed, "every lead invalid: the push cannot be right"
    shown = {key: str(value.value) for key, value in result.metadata.items()}
    assert not any("ann.lee" in text for text in shown.values())
    assert "| 7 | <email> | Email '<email>' is not an email address |" in shown["invalid_preview"]
    assert shown["reason"] == (
        "the one lead fails validation, e.g. lead 7: Email '<email>' is not an email address"
        " (`leads show 7` shows its values)"
    ), "masked, the lead it is about is named: `leads sync` prints the reason"
    assert isinstance(result.metadata["invalid_preview"], dg.MarkdownMetadataValue)
