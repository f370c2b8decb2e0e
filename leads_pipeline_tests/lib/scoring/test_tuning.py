"""Tuning rules on labelled rows: learned points rank values by conversion, and the threshold separates them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from leads_pipeline.lib.scoring.model import infer_spec
from leads_pipeline.lib.scoring.rules import score_lead
from leads_pipeline.lib.scoring.tuning import lead_input, tune_rules


def test_tuned_points_follow_conversion_and_threshold_separates() -> None:
    rng = np.random.default_rng(0)
    rows = []
    labels = []
    for _ in range(600):
        source = rng.choice(["referral", "ads", "cold"])
        visits = int(rng.integers(0, 20))
        converts = (source == "referral" and visits > 3) or (source == "ads" and visits > 15)
        rows.append({"source": source, "custom.Visits": str(visits) if visits else None})
        labels.append(int(converts))
    y = np.array(labels)
    config = tune_rules(rows, y, infer_spec(rows))
    [visits, source] = config.engagement.signals
    assert source.values is not None and source.values["referral"] > source.values["ads"] > source.values["cold"]
    assert visits.steps is not None and visits.missing < max(s.points for s in visits.steps)
    scores = np.array(
        [score_lead(lead_input(i, r), config, now=datetime(2026, 1, 1, tzinfo=UTC)).score for i, r in enumerate(rows)]
    )
    assert ((scores >= config.thresholds.mql) == y.astype(bool)).mean() > 0.9
    assert config.thresholds.mql <= config.thresholds.sql
