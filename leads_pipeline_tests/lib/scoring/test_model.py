"""The fit model's feature handling: which stored fields become features, and of which kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.scoring.model import (
    LabelledData,
    feature_frame,
    infer_spec,
    labelled_leads,
    train,
)
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


def test_the_model_averages_its_two_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    visits, sources = rng.integers(0, 20, 300), rng.choice(["a", "b"], 300)
    rows = [{"custom.Visits": str(v), "source": str(s)} for v, s in zip(visits, sources, strict=True)]
    labels = np.array([int(int(r["custom.Visits"]) > 9) for r in rows])
    model = train(LabelledData(rows, labels, "sample"))
    parts = model.estimator.named_estimators_
    assert list(parts) == ["depth-6", "catboost-500"]
    frame = feature_frame(rows, model.spec)
    each = [part.predict_proba(frame)[:, 1] for part in parts.values()]
    assert np.allclose(model.predict(rows), np.mean(each, axis=0))
    assert not np.allclose(each[0], each[1])  # two different models, not one twice
    assert list(tmp_path.iterdir()) == []  # CatBoost wrote no training logs into the working directory


def test_training_measures_on_the_held_out_part() -> None:
    rng = np.random.default_rng(4)
    rows = [{"custom.Visits": str(v)} for v in rng.integers(0, 20, 200)]
    labels = np.array([int(int(r["custom.Visits"]) > 9) for r in rows])
    model = train(LabelledData(rows, labels, "sample"), seed=1)
    assert model.metrics["settings"] == ["depth-6", "catboost-500"] and model.metrics["rows"] == 60
    assert model.metrics["accuracy"] > 0.95 and model.version.startswith("fit-")
    assert model.predict([{"custom.Visits": "15"}, {"custom.Visits": "2"}]).round().tolist() == [1.0, 0.0]


@pytest.mark.parametrize(("rows", "said"), [(1, "1 labelled row;"), (49, "49 labelled rows;")])
def test_too_few_labelled_rows_are_counted_in_words(rows: int, said: str) -> None:
    """A labelled file of one row was refused as "1 labelled rows"."""
    data = LabelledData([{"custom.Visits": str(i)} for i in range(rows)], np.arange(rows) % 2, "sample.csv")
    with pytest.raises(ConfigurationError, match=f"^sample.csv: {said} training needs at least 50$"):
        train(data)
