"""Wording shared by the command output and the notes the stages leave for ``leads jobs show``."""

import math
from decimal import Decimal


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 cluster``, ``2 clusters``: a count with its noun, where "1 clusters of duplicates" read wrong."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def credit_amount(credits: float) -> str:
    """``1 credit``, ``0.5 credits``, ``1,200 credits``: an amount of credits, to 4 decimals (the ledger's), where
    ``:g`` read "1 credits" and "1.2e+06 credits"."""
    text = plain_number(credits)
    return f"{text} {'credit' if text == '1' else 'credits'}"


def plain_number(number: float) -> str:
    """``0.5``, ``1,234,567.5``: a number as a person writes it (an amount of credits without its noun, a signal's
    value in a score's reasons), to 4 decimals, where ``:g`` read a million and a half as "1.23457e+06", six
    digits of it."""
    return f"{number:,.4f}".rstrip("0").rstrip(".")


def written_number(number: float) -> str:
    """``0.00001``, ``1500000``, ``-2.5``: a number a user gave (a configuration's, an option's), every digit of
    it and no exponent, for a message that repeats it; ``:g`` wrote "1e-05" and "1.5e+06", and ``plain_number``
    would round a weight of -0.00001 to "-0"; ``nan`` and ``inf`` as typed."""
    if not math.isfinite(number):
        return repr(number)
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
