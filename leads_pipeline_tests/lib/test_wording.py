"""Counts with their nouns."""

from leads_pipeline.lib.wording import counted, credit_amount, plain_number, written_number


def test_a_count_of_one_takes_the_singular() -> None:
    """A count of one read "1 clusters of duplicates", "1 warnings", "erased x: 1 leads, 1 import files rewritten"."""
    assert [counted(n, "cluster") for n in (0, 1, 2, 1234)] == [
        "0 clusters",
        "1 cluster",
        "2 clusters",
        "1,234 clusters",
    ]
    assert (counted(1, "import file"), counted(3, "match", "matches")) == ("1 import file", "3 matches")


def test_an_amount_of_exactly_one_credit_takes_the_singular() -> None:
    """Decimal amounts of credits read "~1 credits (at most 1)" and "monthly budget of 1 credits"."""
    assert [credit_amount(c) for c in (0, 0.5, 1, 1.0, 1.25, 2, 1234567.5, 0.33333)] == [
        "0 credits",
        "0.5 credits",
        "1 credit",
        "1 credit",
        "1.25 credits",
        "2 credits",
        "1,234,567.5 credits",
        "0.3333 credits",
    ]


def test_an_amount_of_credits_is_never_in_exponent_form() -> None:
    """``:g`` wrote a million credits and a half as "1.23457e+06" in the estimate's and the ledger's tables."""
    assert [plain_number(c) for c in (0, 0.5, 10, 1234567.5, 2_000_000, 0.33333)] == [
        "0",
        "0.5",
        "10",
        "1,234,567.5",
        "2,000,000",
        "0.3333",
    ]


def test_a_number_a_user_gave_is_repeated_as_written() -> None:
    """``:g`` repeated a configuration's weight of -0.00001 as "-1e-05" and a bound of 1,500,000 as "1.5e+06";
    ``plain_number`` would round the weight to "-0"."""
    values = (-0.00001, 1500000.0, 1234567.891, 30.0, 2.5, 0, float("nan"), float("inf"))
    assert [written_number(v) for v in values] == ["-0.00001", "1500000", "1234567.891", "30", "2.5", "0", "nan", "inf"]
