"""The ``--where`` parser over generated text: any filter is read or refused with a one-line
``ConfigurationError``, and a list of numbers reads as the import reads each of them."""

from __future__ import annotations

import itertools

from hypothesis import example, given
from hypothesis import strategies as st

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.filters import FIELD_KINDS, Filter, parse_filter

FIELDS = st.sampled_from([*FIELD_KINDS, "custom.Visits", 'custom."Lead Owner"', 'custom."Open', "custom.", "nonsense"])
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "~", "!~", "in", "not in", "is empty", "not empty", "IN", ""])
VALUES = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"-?[0-9,.]{0,10}(e[+-]?[0-9]{1,7})?[kKmMbB]?", fullmatch=True),
    st.sampled_from(["1e400", "-inf", "NaN", "2026-13-01", "2026-03-31T25:00", "9" * 30, "(a, b)", "'x'", '""', "²"]),
)


@given(FIELDS, st.sampled_from(["", " "]), OPS, st.sampled_from(["", " "]), VALUES)
def test_a_filter_is_read_or_refused_in_one_line(field: str, space: str, op: str, after: str, value: str) -> None:
    try:
        parsed = parse_filter(f"{field}{space}{op}{after}{value}")
    except ConfigurationError as error:
        assert "\n" not in str(error).replace("\\n", "") or "\n" in value
        return
    assert isinstance(parsed, Filter)


@given(st.lists(st.tuples(st.integers(0, 10**7), st.booleans()), min_size=1, max_size=5), st.booleans())
@example([(0, False), (100, False)], False)  # "0,100" was refused as one number
def test_a_list_of_counts_reads_as_the_import_reads_each(numbers: list[tuple[int, bool]], spaced: bool) -> None:
    """Narrowed: without spaces after the commas, "1,100" is 1100 (a comma before three digits groups thousands,
    as documented), so a grouped number, or one of three digits after an item other than a lone 0, is written
    with ", "."""
    written = [f"{n:,}" if grouped else str(n) for n, grouped in numbers]
    grouping = [w for previous, w in itertools.pairwise(written) if previous != "0" and len(w) == 3]
    spaced = spaced or bool(grouping) or any("," in w for w in written)
    parsed = parse_filter(f"employee_count in {(', ' if spaced else ',').join(written)}")
    assert list(parsed.values) == [n for n, _ in numbers]
