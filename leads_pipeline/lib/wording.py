"""Wording shared by the command output and the notes the stages leave for ``leads jobs show``."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 cluster``, ``2 clusters``: a count with its noun, where "1 clusters of duplicates" read wrong."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
