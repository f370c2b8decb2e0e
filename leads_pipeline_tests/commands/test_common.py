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
        "at": "2026-11-03 09:30:00+00:00",
        "nan": "NaN",
    }
    assert '"whole": 3000000,' in json_text(document), "a whole amount is an integer"
