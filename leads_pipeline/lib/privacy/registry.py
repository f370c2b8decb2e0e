"""Every table that holds personal data, and how to find and erase one person's rows in it: the one registry
that ``leads privacy export`` and ``leads privacy delete`` walk.

A stage that adds a table holding data about a person adds ONE ``PersonalTable`` entry to ``REGISTRY`` (before
``leads``, whose row deletion cascades), e.g. for the stages being built elsewhere::

    PersonalTable("contact_cache", "emails/phones found for a lead",
                  "t.lead_id = ANY(%(lead_ids)s) OR lower(t.email) = ANY(%(emails)s)", "delete"),
    PersonalTable("enrichment_jobs", "raw provider payloads",
                  "t.lead_id = ANY(%(lead_ids)s) OR lower(t.payload::text) LIKE ANY(%(email_patterns)s)", "delete"),
    PersonalTable("lead_scores", "scores and their reasons", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    PersonalTable("crm_links", "the person's ids in a CRM", "t.lead_id = ANY(%(lead_ids)s)", "delete"),

``find`` is a SQL condition on the table aliased ``t``, with these parameters (see ``Person.params``):

- ``lead_ids`` (bigint[]): the person's leads in every list (deleted and merged ones included);
- ``emails`` (text[]): their normalized (lower-case) email addresses;
- ``phone_digits`` (text[]): their phone numbers (E.164) as digits only, for free text holding a number as typed;
- ``email_patterns`` (text[]): ``%address%`` LIKE patterns, for free text and JSON holding an address;
- ``email_hashes``, ``phone_hashes`` (text[]): their blind indexes (``lib/privacy/crypto.py``), for the columns
  stored sealed, which only a blind index finds;
- ``error_rows`` (text[]): ``import_id:row_number`` of import errors holding a shared number and her name, and
  ``error_imports`` (bigint[]) their imports.

``lists``, for a table whose rows are found otherwise than through the person's leads (by their identifiers in
an import error, a snapshot, a payload), is a query on the found row ``t`` giving the lists it belongs to: a privacy
request needs the owner role on those lists as on the lists of the person's leads, so that nobody reads or erases
what another user's list holds about someone (``None``: found through the person's leads only, or service-only).

``erase`` says what ``leads privacy delete`` does with the rows found: ``delete`` them, ``clear`` the listed
columns (set them to NULL, or to ``cleared_to``, keeping a row that other records count, such as an import
error), or ``keep`` them
(the table holds no contact data, e.g. the audit log, which masks it; it is still part of the export).
Entries are exported in order and erased in order, so tables whose rows are found through ``lead_ids`` come
before ``leads`` itself. An entry whose table does not exist in the database (a stage not deployed there) is
skipped, so the registry can list every stage's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


def _phone_text(text: str) -> str:
    """The condition "free text ``text`` (an imported file's column name) holds one of the person's
    numbers": its digits contain the full number, or (written nationally, without the country code) its digits
    after leading zeros end the number."""
    return (
        "EXISTS (SELECT 1 FROM unnest(%(phone_digits)s::text[]) p(d), "
        f"LATERAL (SELECT ltrim(regexp_replace({text}, '[^0-9]', '', 'g'), '0') AS v) x "
        "WHERE length(x.v) >= 7 AND (strpos(x.v, p.d) > 0 OR right(p.d, length(x.v)) = x.v))"
    )


_IMPORT_LIST: Final = "SELECT i.list_id FROM imports i WHERE i.id = t.import_id"


@dataclass(frozen=True)
class PersonalTable:
    """One table holding personal data: how to find a person's rows and what erasing them means."""

    table: str
    holds: str
    find: str
    erase: Literal["delete", "clear", "keep"]
    clear: tuple[str, ...] = ()
    lists: str | None = None
    cleared_to: str = "NULL"
    """What ``clear`` sets the columns to (SQL): NULL, or for a column that cannot be NULL its empty value."""
    cells: str | None = None
    """For a ``clear`` entry whose cleared column is not itself the raw text (a JSON document): a query on the
    found row ``t`` giving the raw texts that erasure also replaces in Dagster's storage (run metadata)."""


REGISTRY: Final[tuple[PersonalTable, ...]] = (
    PersonalTable(
        "imports",
        "column names of an imported file: a person's cells when a data row was read as the header (before the "
        "header check of csvfile.py refused such files)",
        "lower(t.mapping::text) LIKE ANY(%(email_patterns)s)"
        " OR EXISTS (SELECT 1 FROM json_object_keys(t.mapping) k(name) WHERE " + _phone_text("k.name") + ")",
        "clear",
        ("mapping",),
        cleared_to="'{}'",
        lists="SELECT t.list_id",
        cells="SELECT k.name FROM json_object_keys(t.mapping) k(name)",
    ),
    PersonalTable(
        "import_errors",
        "values of rejected or corrected cells as they were in the file",
        # values are sealed (sql/010; those written in clear before, by sql/093): a value is found by the blind
        # indexes of the identifiers written in it (each arm of the OR can use an index: sql/081)
        "t.subjects && %(subjects)s::text[] OR (t.import_id = ANY(%(error_imports)s::bigint[])"
        " AND t.import_id || ':' || t.row_number = ANY(%(error_rows)s::text[]))",
        "clear",
        ("value", "subjects"),
        lists=_IMPORT_LIST,
    ),
    PersonalTable(
        "import_updates",
        "a lead's row as it was before an import updated it",
        "t.lead_id = ANY(%(lead_ids)s) OR t.previous ->> 'email_bidx' = ANY(%(email_hashes)s)"
        " OR t.previous ->> 'phone_bidx' = ANY(%(phone_hashes)s)"
        " OR t.previous ->> 'mobile_phone_bidx' = ANY(%(phone_hashes)s)",
        "delete",
        lists=_IMPORT_LIST,
    ),
    PersonalTable(
        "merges",
        "the survivor's row before a duplicate merge, and the ids merged into it",
        "t.survivor_id = ANY(%(lead_ids)s) OR t.merged_ids && %(lead_ids)s::bigint[]"
        " OR t.survivor_before ->> 'email_bidx' = ANY(%(email_hashes)s)"
        " OR t.survivor_before ->> 'phone_bidx' = ANY(%(phone_hashes)s)"
        " OR t.survivor_before ->> 'mobile_phone_bidx' = ANY(%(phone_hashes)s)",
        "delete",
        lists="SELECT l.list_id FROM leads l WHERE l.id = t.survivor_id",
    ),
    PersonalTable(
        "lead_facts",
        "every value a source produced about a lead, with its raw details",
        "t.lead_id = ANY(%(lead_ids)s) OR t.details ->> 'email_bidx' = ANY(%(email_hashes)s)"
        " OR t.details ->> 'phone_bidx' = ANY(%(phone_hashes)s) OR t.details ->> 'number_bidx' = ANY(%(phone_hashes)s)",
        "delete",
        lists="SELECT l.list_id FROM leads l WHERE l.id = t.lead_id",
    ),
    PersonalTable("lead_tags", "tags on the person's leads", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    # Contacts stage (sql/003_contacts.sql).
    PersonalTable(
        "email_verifications",
        "verification verdicts of the person's addresses, with provider payloads",
        "t.email_bidx = ANY(%(email_hashes)s)",
        "delete",
    ),
    PersonalTable(
        "email_pattern_evidence",
        "the person's address as evidence of their company's email pattern",
        "t.address_bidx = ANY(%(email_hashes)s)",
        "delete",
    ),
    # Enrichment stage (sql/004_enrichment.sql).
    PersonalTable(
        "enrichment_failures", "why enriching the person's leads failed", "t.lead_id = ANY(%(lead_ids)s)", "delete"
    ),
    PersonalTable(
        "webhook_deliveries",
        "webhook payloads that carried the person's data",
        "lower(t.payload::text) LIKE ANY(%(email_patterns)s)",
        "delete",
        lists="SELECT DISTINCT l.list_id FROM batch_leads b JOIN leads l ON l.id = b.lead_id"
        " WHERE b.batch_id = t.job_id",
    ),
    # Scoring stage (sql/005_scoring.sql).
    PersonalTable("lead_scores", "the person's scores and reasons", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    PersonalTable("score_history", "earlier scores of the person's leads", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    PersonalTable("stage_changes", "stage changes of the person's leads", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    # CRM sync (sql/006_crm.sql).
    PersonalTable(
        "crm_links", "the person's records in CRMs and the values sent", "t.lead_id = ANY(%(lead_ids)s)", "delete"
    ),
    PersonalTable("crm_rejects", "CRM refusals of the person's leads", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    PersonalTable(
        "crm_conflicts", "local and CRM values of the person's fields", "t.lead_id = ANY(%(lead_ids)s)", "delete"
    ),
    PersonalTable(
        "crm_creates_sent",
        "hashes of the person's match keys, marked before a CRM create (left by a push killed before its link)",
        "t.lead_id = ANY(%(lead_ids)s)",
        "delete",
    ),
    PersonalTable(
        "crm_sync_log",
        "sync messages naming the person",
        "t.lead_id = ANY(%(lead_ids)s)",
        "clear",
        ("message",),
        lists="SELECT r.list_id FROM crm_sync_runs r WHERE r.id = t.sync_id",
    ),
    PersonalTable("batch_leads", "batches that touched the person's leads", "t.lead_id = ANY(%(lead_ids)s)", "delete"),
    # Kept: money spent stays spent. A charge holds no value; deleting the leads (last) clears its lead and fact ids,
    # deleting a fact of another lead (above) its fact id (sql/230).
    PersonalTable(
        "credit_charges",
        "credits charged for lookups on the person's leads (source, field, job, time; no values)",
        "t.lead_id = ANY(%(lead_ids)s)",
        "keep",
    ),
    # Search rows (sql/009_search_table.sql), one partition per import: the entry covers every partition.
    PersonalTable(
        "lead_search",
        "the search text of the person's leads (names, email, company, title)",
        "t.lead_id = ANY(%(lead_ids)s)",
        "delete",
    ),
    PersonalTable(
        "audit_log",
        "actions on the person's leads (contact data masked when written)",
        "EXISTS (SELECT 1 FROM unnest(%(lead_ids)s::bigint[]) i WHERE t.details -> 'leadIds' @> to_jsonb(i))"
        " OR t.object = ANY(%(subjects)s) OR t.details ->> 'subject' = ANY(%(subjects)s)",
        "keep",
    ),
    PersonalTable(
        "crm_erasures",
        "deletions of the person's CRM records owed by an erasure request (connection and remote id only)",
        "t.subject = ANY(%(subjects)s)",
        "keep",
    ),
    PersonalTable(
        "leads",
        "the person's leads in every list: name, contact data, company, address, custom fields",
        "t.id = ANY(%(lead_ids)s)",
        "delete",
    ),
)
