"""Duplicate detection: a generic vectorized record matcher (``matcher``) and its configuration for leads
(``leads``). Merging and undo live in ``lib/store/merges.py``."""
