"""The fit model's feature handling: which stored fields become features, and of which kind."""

from __future__ import annotations

from leads_pipeline.lib.scoring.model import infer_spec, labelled_leads
from leads_pipeline.lib.scoring.rules import LeadInput


def test_identifiers_and_constant_columns_are_not_features() -> None:
    rows = [
        {
            "custom.Prospect ID": f"7927b2df-{i:04d}",  # unique per lead: nothing to learn
            "custom.Lead Number": str(660000 + i),  # numeric: kept (signup order)
            "custom.Tags": ["Ringing", "Will revert after reading the email", "Select"][i % 3],
            "custom.Search": "No",  # one value only
            "source": [None, "Google", "Referral"][i % 3],
        }
        for i in range(40)
    ]
    spec = infer_spec(rows)
    assert spec.numeric == ("custom.Lead Number",)
    assert spec.categorical == ("custom.Tags", "source")


def test_stored_leads_become_labelled_rows_without_identity_or_excluded_fields() -> None:
    leads = [
        LeadInput(
            i,
            {"email": f"lead-{i}@example.com", "source": "Google", "country": "IN"},
            {"Converted": str(i % 2), "Tags": "Ringing", "TotalVisits": "3", "Lead Quality": "High"},
        )
        for i in range(4)
    ]
    leads.append(LeadInput(9, {"source": "Google"}, {"Tags": "Ringing"}))  # no outcome yet: left out
    data = labelled_leads(leads, "custom.Converted", source="list x", exclude=["Tags", "custom.Lead Quality"])
    assert data.labels.tolist() == [0, 1, 0, 1]
    assert data.rows[0] == {"source": "Google", "country": "IN", "custom.TotalVisits": "3"}
