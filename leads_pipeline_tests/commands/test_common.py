"""``commands/common.py``: the one JSON encoding of every output."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from leads_pipeline.commands.common import json_text


def test_json_text_writes_decimals_as_numbers_and_dates_as_text() -> None:
    document = {
        "revenue": Decimal("2000000.50"),
        "whole": Decimal("3000000.00"),
        "small": Decimal("0.0025"),
        "count": 1200,
        "day": date(2026, 11, 3),
        "at": datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
        "nan": Decimal("NaN"),
    }
    assert json.loads(json_text(document)) == {
        "revenue": 2000000.5,
        "whole": 3000000,
        "small": 0.0025,
        "count": 1200,
        "day": "2026-11-03",
        "at": "2026-11-03T09:30:00+00:00",
        "nan": "NaN",
    }
    assert '"whole": 3000000,' in json_text(document), "a whole amount is an integer"


def test_json_text_writes_whole_floats_as_integers_and_times_in_iso_form() -> None:
    """Credits are summed as floats (``creditsUsed`` came out as ``19.0``, against README's "a whole amount an
    integer"), and times that reached the encoder as datetimes were written ``2026-11-30 01:33:33+00:00``
    beside the ``...T01:33:33+00:00`` of the outputs formatting their own (``leads sync --json``'s
    ``startedAt`` against ``leads imports show --json``'s ``completedAt``)."""
    document = {
        "creditsUsed": 19.0,
        "rows": [{"credits": 2.0, "share": 0.5}],
        "pair": (3.0, 1.25),
        "startedAt": datetime(2026, 11, 30, 1, 33, 33, 119019, tzinfo=UTC),
        "day": date(2026, 11, 3),
        "flag": True,
    }
    text = json_text(document)
    assert '"creditsUsed": 19,' in text
    assert '"credits": 2,' in text
    assert json.loads(text) == {
        "creditsUsed": 19,
        "rows": [{"credits": 2, "share": 0.5}],
        "pair": [3, 1.25],
        "startedAt": "2026-11-30T01:33:33.119019+00:00",
        "day": "2026-11-03",
        "flag": True,
    }
    assert datetime.fromisoformat(json.loads(text)["startedAt"]) == document["startedAt"]
