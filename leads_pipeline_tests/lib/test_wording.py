"""Counts with their nouns."""

from leads_pipeline.lib.wording import counted


def test_a_count_of_one_takes_the_singular() -> None:
    """A count of one read "1 clusters of duplicates", "1 warnings", "erased x: 1 leads, 1 import files rewritten"."""
    assert [counted(n, "cluster") for n in (0, 1, 2, 1234)] == [
        "0 clusters",
        "1 cluster",
        "2 clusters",
        "1,234 clusters",
    ]
    assert (counted(1, "import file"), counted(3, "match", "matches")) == ("1 import file", "3 matches")
