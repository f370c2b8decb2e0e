"""Privacy requests on the database: export everything held about a person, erase it, record their opt-out,
and keep erased people out of later imports.

A person is named by one email address or phone number, normalized as an import would. Their leads are every
lead (in any list, deleted or merged ones included) with that email or that number as phone or mobile phone, and
every lead a merge joined with one of those (a merge says they are one person: the survivor holds what it took from
the leads merged into it); the other contact data of those leads is searched for too, so that traces of them in
import errors, update snapshots, merge snapshots and facts are found. Which tables are searched, and how, is
``leads_pipeline.lib.privacy.registry.REGISTRY``.

Erasure queues the deletion of the person's records in connected CRMs (``crm_erasures``: connection and remote id,
nothing else about them; ``lib/crm/erasure.py`` sends them) and ends with suppression entries (keyed hashes,
``lib/privacy/keys.py``) of the requested identifier and of every email address and number of the erased leads
but those a lead of someone else holds too (``Person.shared``: a switchboard is removed from the erased leads
only, and a colleague holding it stays importable); ``screen_staged`` drops matching rows from every later import
and reports them. An opt-out sets
``leads.opted_out_at`` on the person's leads and records the hash, so that leads imported for them later are flagged
too; ``sellable`` is the predicate exports and the CRM sync use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from psycopg import sql

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.export import written_whole
from leads_pipeline.lib.filters import HIDDEN, recorded_values_pattern
from leads_pipeline.lib.privacy.crypto import blind_index
from leads_pipeline.lib.privacy.keys import Kind, subject_hash, suppression_key
from leads_pipeline.lib.privacy.registry import REGISTRY, PersonalTable
from leads_pipeline.lib.store import access, audit, crm_erasures
from leads_pipeline.lib.store.db import key_column
from leads_pipeline.lib.store.lists import Connection

if TYPE_CHECKING:  # the import's preparation loads pandas and pyarrow, which only an import's screening needs
    from leads_pipeline.lib.prepare import Problem

SUPPRESSED_REASON: Final = (
    "suppressed: this person's data was erased on request (`leads privacy delete`); the row was not imported"
)
_FILE_SUFFIXES: Final = (".csv", ".tsv", ".txt")
LOG_SUFFIXES: Final = (".log", ".out", ".err")
"""Text logs kept on disk: Dagster's compute logs (stdout/stderr of runs) and detached job logs."""
_PHONE_TOKEN: Final = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def identify(raw: str) -> tuple[Kind, str]:
    """The kind and normalized value of an email address or phone number given on the command line."""
    from leads_pipeline.lib.store.bulk import normalized_value

    text = raw.strip()
    if not text:
        raise ConfigurationError("give an email address or a phone number (with its +country code)")
    kind: Kind = "email" if "@" in text else "phone"
    try:
        value = normalized_value(kind, text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc}; give an email address or a phone number in international form") from None
    assert isinstance(value, str)
    return kind, value


@dataclass
class Person:
    """One person's identifiers and leads, as the registry's queries take them."""

    kind: Kind
    value: str
    lead_ids: list[int] = field(default_factory=list)
    list_ids: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    error_rows: list[str] = field(default_factory=list)
    """Import error rows (``import_id:row_number``) holding a ``shared`` identifier and her name
    (:func:`_shared_rows_named`): the row of a file without her address, hers though its number is not."""
    people: int = 1
    """How many people hold the requested identifier (``_people_holding``): more than one for a switchboard."""
    found: dict[str, Found] = field(default_factory=dict)
    """The rows of each registry table found for the person (``_search``), by table."""
    shared: list[str] = field(default_factory=list)
    """Addresses and numbers of the person's leads that a lead of someone else holds too (a switchboard, a
    desk phone, a team inbox): they name nobody in particular, so a request neither searches by them, nor
    suppresses or opts them out; erasure removes them with the person's leads only."""

    @property
    def subject(self) -> str:
        """The keyed hash naming this request in the audit log and the suppression list."""
        return subject_hash(self.kind, self.value)

    def record_request(self, conn: Connection, actor: str, action: str, **details: Any) -> None:
        """Record a request about this person: named by the subject hash, never by an email or phone."""
        entry = {"subject": self.subject, **details, **audit.lead_ids(self.lead_ids)}
        audit.record(conn, actor, action, f"subject:{self.subject}", entry)

    def require_one(self, everyone: bool) -> None:
        """Refuse a request by a number the leads of several people hold (a switchboard): it names none of them,
        and would export, erase or opt out all of them as one person; ``everyone`` (``--all``) asks for that."""
        if self.people > 1 and not everyone:
            raise ConfigurationError(
                f"the leads of {self.people} people hold this number (a switchboard or a shared line?): a request "
                "by it would act on all of them as one person; give the person's email address, or pass --all to "
                "act on everyone holding it"
            )

    def params(self) -> dict[str, Any]:
        return {
            "lead_ids": self.lead_ids,
            "emails": self.emails,
            "phone_digits": [p.lstrip("+") for p in self.phones],
            "email_patterns": [
                "%" + e.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%" for e in self.emails
            ],
            "subjects": [subject_hash("email", e) for e in self.emails]
            + [subject_hash("phone", p) for p in self.phones],
            "email_hashes": [subject_hash("email", e) for e in self.emails],
            "phone_hashes": [subject_hash("phone", p) for p in self.phones],
            "error_rows": self.error_rows,
            "error_imports": sorted({int(row.partition(":")[0]) for row in self.error_rows}),
        }


@dataclass(frozen=True)
class Found:
    """The rows of one registry table found for the person by its one search: where they are, and what the
    request needs of them (their lists for the access check, their contents for an export, their raw cells for
    an erasure's scrub of Dagster's storage)."""

    at: list[str]
    """``tableoid:ctid`` of each row (a partitioned table's partitions repeat ctids); an erasure's search locks the
    rows, so they stay where they are until it commits."""
    lists: set[int]
    rows: list[dict[str, Any]]
    cells: set[str]


Search = Literal["lists", "export", "erase"]
"""What a request searches the registry for: the lists of the rows found otherwise than through the person's
leads (an opt-out), the rows of every table (an export), or the rows to erase, locked (an erasure)."""


_MERGED_WITH: Final = (
    "WITH RECURSIVE linked(id) AS (SELECT unnest(%(ids)s::bigint[]) UNION SELECT x.id FROM linked k"
    " CROSS JOIN LATERAL (SELECT l.merged_into FROM leads l WHERE l.id = k.id AND l.merged_into IS NOT NULL"
    " UNION ALL SELECT unnest(m.merged_ids) FROM merges m WHERE m.survivor_id = k.id AND m.undone_at IS NULL) x(id))"
    " SELECT id, list_id, email, phone, mobile_phone FROM leads WHERE id IN (SELECT id FROM linked) ORDER BY id"
)
"""The leads and every lead a merge (not undone) joined with them, both ways and in chains: the merge recorded that
they are one person, and the survivor carries what it took from the others (filled fields, moved facts, tags)."""


def find_person(conn: Connection, raw: str, search: Search = "lists") -> Person:
    """The person named by ``raw``: their leads everywhere (found through the blind index: the columns themselves
    are sealed), the leads merged with those, every email and number those leads carry, their rows in the
    registry's tables (``found``, each table searched once, for ``search``), and every list holding any of it
    (``list_ids``: what a privacy request needs the owner role on), and how many people the leads holding a
    requested number are (``people``)."""
    kind, value = identify(raw)
    columns = ["email_bidx"] if kind == "email" else ["phone_bidx", "mobile_phone_bidx"]
    condition = sql.SQL(" OR ").join(sql.SQL("{} = %(v)s").format(key_column(c)) for c in columns)
    named = [
        int(r["id"])
        for r in conn.execute(
            sql.SQL("SELECT id FROM leads WHERE {}").format(condition), {"v": subject_hash(kind, value)}
        )
    ]
    rows = list(conn.execute(_MERGED_WITH, {"ids": named})) if named else []
    person = Person(kind, value, [int(r["id"]) for r in rows])
    person.people = _people_holding(conn, named) if kind == "phone" else 1
    emails = {value} if kind == "email" else set()
    phones = {value} if kind == "phone" else set()
    for row in rows:
        emails.update(e.lower() for e in [row["email"]] if e)
        phones.update(p for p in (row["phone"], row["mobile_phone"]) if p)
    shared = _held_by_others(conn, person.lead_ids, emails, phones)
    person.emails, person.phones, person.shared = sorted(emails - shared), sorted(phones - shared), sorted(shared)
    person.error_rows = _shared_rows_named(conn, person)
    person.found = _search(conn, person, search)
    traced = {list_id for found in person.found.values() for list_id in found.lists}
    person.list_ids = sorted({int(r["list_id"]) for r in rows} | traced)
    return person


def _people_holding(conn: Connection, lead_ids: list[int]) -> int:
    """How many people ``lead_ids`` are: one per email address, and each lead without one on its own (as
    ``identifiers.shared`` counts a lead outside the person's as someone else); a lead merged into another is that
    one's person."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(DISTINCT coalesce({}, 'lead ' || id)) AS people FROM leads"
            " WHERE id = ANY(%s) AND merged_into IS NULL"
        ).format(key_column("email_bidx")),
        (lead_ids,),
    ).fetchone()
    return int(row["people"]) if row else 0


def _held_by_others(conn: Connection, lead_ids: list[int], emails: set[str], phones: set[str]) -> set[str]:
    """The ``emails`` and ``phones`` that a lead outside ``lead_ids`` (any list, deleted ones included) holds too.
    The requested identifier is never among them: every lead holding it is one of the person's."""
    hashes = {subject_hash("email", e): e for e in emails} | {subject_hash("phone", p): p for p in phones}
    if not hashes or not lead_ids:
        return set()
    # One index lookup per key column and identifier, stopping at the first lead found: an EXISTS comparing the
    # three columns with OR read the whole leads table once per identifier, and EXISTS per column may be planned
    # as a scan of the table hashed (the LATERAL with LIMIT cannot).
    held = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT 1 FROM leads l WHERE {} = h.v AND NOT (l.id = ANY(%(ids)s))").format(key_column(c, "l"))
        for c in ("email_bidx", "phone_bidx", "mobile_phone_bidx")
    )
    rows = conn.execute(
        sql.SQL("SELECT h.v FROM unnest(%(h)s::text[]) h(v) CROSS JOIN LATERAL ({} LIMIT 1) x").format(held),
        {"h": list(hashes), "ids": lead_ids},
    )
    return {hashes[r["v"]] for r in rows}


def _shared_rows_named(conn: Connection, person: Person) -> list[str]:
    """The import error rows (``import_id:row_number``) whose raw text holds one of the person's ``shared``
    identifiers and the first and last name of one of her leads, as words: a row of hers in a file without her
    address (rejected, so no lead of hers) is found by neither, and the number alone names nobody. The values are
    sealed, so the rows holding the number (its blind index in ``subjects``) are opened and read here."""
    if not person.shared or not person.lead_ids:
        return []
    names = {
        (str(r["first_name"]).casefold(), str(r["last_name"]).casefold())
        for r in conn.execute(
            "SELECT first_name, last_name FROM leads WHERE id = ANY(%s)"
            " AND coalesce(first_name, '') <> '' AND coalesce(last_name, '') <> ''",
            (person.lead_ids,),
        )
    }
    hashes = [subject_hash("email" if "@" in v else "phone", v) for v in person.shared]
    found: set[str] = set()
    for row in conn.execute(
        "SELECT import_id, row_number, value FROM import_errors WHERE subjects && %s::text[]", (hashes,)
    ):
        words = set(re.findall(r"\w+", str(row["value"] or "").casefold()))
        if any(set(re.findall(r"\w+", first)) | set(re.findall(r"\w+", last)) <= words for first, last in names):
            found.add(f"{row['import_id']}:{row['row_number']}")
    return sorted(found)


def _search(conn: Connection, person: Person, search: Search) -> dict[str, Found]:
    """Each registry table's rows about the person, each table searched once: the lists of the rows found
    otherwise than through the person's leads (``PersonalTable.lists``, which every request checks), and for an
    export every table's rows, for an erasure the rows it erases (locked) and their raw cells."""
    params = person.params()
    found: dict[str, Found] = {}
    for entry in deployed(conn):
        erasing = search == "erase" and entry.erase != "keep"
        if entry.lists is None and not (search == "export" or erasing):
            continue
        columns: list[sql.Composable] = [sql.SQL("concat(t.tableoid::oid, ':', t.ctid) AS at")]
        if entry.lists is not None:
            columns.append(
                sql.SQL("ARRAY(SELECT x.list_id FROM ({}) x(list_id) WHERE x.list_id IS NOT NULL) AS lists").format(
                    sql.SQL(entry.lists)  # type: ignore[arg-type]
                )
            )
        if search == "export":
            columns.append(sql.SQL("to_jsonb(t) AS row"))
        if erasing and entry.erase == "clear":
            columns.append(sql.SQL("ARRAY({}) AS cells").format(_cells(entry)))
        query = sql.SQL("SELECT {} FROM {} t WHERE {}{}").format(
            sql.SQL(", ").join(columns),
            sql.Identifier(entry.table),
            sql.SQL(entry.find),  # type: ignore[arg-type]
            sql.SQL(" FOR UPDATE OF t" if erasing else ""),
        )
        rows = conn.execute(query, params).fetchall()
        found[entry.table] = Found(
            at=[r["at"] for r in rows],
            lists={int(i) for r in rows for i in r.get("lists") or ()},
            rows=[r["row"] for r in rows] if search == "export" else [],
            cells={c for r in rows for c in r.get("cells") or () if c is not None},
        )
    return found


def deployed(conn: Connection) -> list[PersonalTable]:
    """The registry's entries whose table exists in this database, in order."""
    tables = {
        r["table_name"]
        for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'leads'")
    }
    return [entry for entry in REGISTRY if entry.table in tables]


def export_person(conn: Connection, raw: str, actor: str, *, everyone: bool = False) -> dict[str, Any]:
    """Everything held about the person, table by table (``REGISTRY``), plus whether they are suppressed or
    opted out. The request itself is audited (by the person's keyed hash, not their address)."""
    person = find_person(conn, raw, "export")
    access.require_privacy_request(conn, actor, person.list_ids, "exporting a person's data from it")
    person.require_one(everyone)
    tables = {table: found.rows for table, found in person.found.items()}
    hashes = person.params()["subjects"]
    document = {
        "subject": {"kind": person.kind, "value": person.value},
        "identifiers": {"emails": person.emails, "phones": person.phones, "shared": person.shared},
        "leadIds": person.lead_ids,
        "suppressed": _any_hash(conn, "suppressions", hashes),
        "optedOut": _any_hash(conn, "opt_outs", hashes),
        "data": tables,
    }
    person.record_request(conn, actor, "privacy.export")
    return document


def _any_hash(conn: Connection, table: str, hashes: list[str]) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE hash = ANY(%s)) AS found").format(sql.Identifier(table))
    row = conn.execute(query, (hashes,)).fetchone()
    return bool(row and row["found"])


def erasable_person(conn: Connection, raw: str, actor: str, *, everyone: bool = False) -> Person:
    """The person ``raw`` names, once ``actor`` may erase them (``erase_person`` refuses otherwise): checked before
    the command asks for a confirmation too, which a user without the right was asked, and answered, in vain."""
    person = find_person(conn, raw, "erase")
    access.require_privacy_request(conn, actor, person.list_ids, "erasing a person's data from it")
    person.require_one(everyone)
    return person


def erase_person(
    conn: Connection,
    raw: str,
    actor: str,
    *,
    folders: list[Path] | None = None,
    log_folders: list[Path] | None = None,
    everyone: bool = False,
) -> dict[str, Any]:
    """Erase the person everywhere in one transaction (``REGISTRY`` in order), remove the lines mentioning them
    from import files in ``folders`` (the inbox) and from text logs in ``log_folders`` (Dagster's compute logs, job
    logs), delete their stored photos (media), queue the deletion of their CRM records, suppress them and audit
    the request. Returns counts."""
    removed: dict[str, int] = {}
    with conn.transaction():
        person = erasable_person(conn, raw, actor, everyone=everyone)
        queued = crm_erasures.queue(conn, person.lead_ids, person.subject, actor)  # before the links go
        photos = media_files(conn, person.lead_ids)  # before the facts naming them go
        cleared: set[str] = set()
        for entry in deployed(conn):
            if entry.erase == "keep":
                continue
            found = person.found[entry.table]
            cleared.update(found.cells)  # the raw cells about to be cleared may sit in Dagster's previews too
            target = sql.SQL("{} t").format(sql.Identifier(entry.table))
            if entry.erase == "delete":
                statement = sql.SQL("DELETE FROM {}").format(target)
            else:
                assignments = sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(c), sql.SQL(entry.cleared_to))  # type: ignore[arg-type]
                    for c in entry.clear
                )
                statement = sql.SQL("UPDATE {} SET {}").format(target, assignments)
            where = sql.SQL(
                " WHERE t.ctid = ANY(%(tids)s::tid[]) AND concat(t.tableoid::oid, ':', t.ctid) = ANY(%(at)s)"
            )
            tids = [at.partition(":")[2] for at in found.at]
            removed[entry.table] = conn.execute(statement + where, {"tids": tids, "at": found.at}).rowcount
        suppressed: list[tuple[Kind, str]] = [("email", e) for e in person.emails]
        suppressed += [("phone", p) for p in person.phones]
        key = suppression_key()
        for kind, value in suppressed:
            conn.execute(
                "INSERT INTO suppressions (hash, kind, reason, created_by) VALUES (%s, %s, 'erasure request', %s)"
                " ON CONFLICT (hash) DO NOTHING",
                (subject_hash(kind, value, key), kind, actor),
            )
        removed["dagster_storage"] = scrub_dagster_storage(conn, person, tuple(cleared))
        # Rewriting a file reads it whole and renames a copy over it: two erasures at once each wrote back the
        # lines the other had just removed. One at a time, until this one commits (or rolls back).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('leads.erase_from_files'))")
        files = erase_from_files(folders or [], person)
        logs = erase_from_files(log_folders or [], person, LOG_SUFFIXES)
        for photo in photos:
            photo.unlink(missing_ok=True)
        person.record_request(
            conn,
            actor,
            "privacy.delete",
            removed=removed,
            files=len(files),
            media=len(photos),
            logs=len(logs),
            suppressed=len(suppressed),
            crmErasures=queued,
        )
    return {
        "leads": len(person.lead_ids),
        "removed": removed,
        "files": [str(f) for f in files],
        "media": len(photos),
        "logs": [str(f) for f in logs],
        "suppressed": len(suppressed),
        "crmErasures": queued,
    }


def _cells(entry: PersonalTable) -> sql.Composable:
    """SQL: the raw texts of a found row ``t`` of a ``clear`` entry: its ``cells``, else its cleared columns as
    text."""
    if entry.cells:
        return sql.SQL(entry.cells)  # type: ignore[arg-type]
    return sql.SQL(" UNION ALL ").join(sql.SQL("SELECT t.{}::text").format(sql.Identifier(c)) for c in entry.clear)


def scrub_dagster_storage(conn: Connection, person: Person, cells: tuple[str, ...] = ()) -> int:
    """Replace the person's emails, numbers and the raw ``cells`` that mentioned them with ``<erased>`` in every
    text column of Dagster's storage in this database (schema ``public``: event logs, asset and check metadata
    such as import error previews, run records), and leave out the values of filters on a person's details that
    a run's config holds (``leads sync --where "last_name = Garcia"``: the run needs them, Dagster keeps its config
    as launched, and a name cannot be told from another person's), as recorded selections leave them out
    (``filters.recorded_values_pattern``). Returns how many values changed."""
    texts = sorted({*cells, *person.emails, *person.phones}, key=len, reverse=True)  # longest first
    needles = [re.escape(v) for v in texts if len(v) >= 6]
    replacements = [(recorded_values_pattern(), rf"\1{HIDDEN}")]
    if needles:
        replacements.append(("|".join(needles), "<erased>"))
    columns = list(
        conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            " AND c.data_type IN ('text', 'character varying', 'json', 'jsonb') ORDER BY 1, 2"
        )
    )
    changed = 0
    for column in columns:
        target = sql.SQL("public.{}").format(sql.Identifier(column["table_name"]))
        name = sql.Identifier(column["column_name"])
        for pattern, replacement in replacements:
            changed += conn.execute(
                sql.SQL(
                    "UPDATE {t} SET {c} = regexp_replace({c}::text, %(p)s, %(r)s, 'gi')::{type}"
                    " WHERE {c}::text ~* %(p)s"
                ).format(t=target, c=name, type=sql.SQL(_SQL_TYPES[column["data_type"]])),
                {"p": pattern, "r": replacement},
            ).rowcount
    return changed


_SQL_TYPES: Final = {"text": "text", "character varying": "varchar", "json": "json", "jsonb": "jsonb"}


def _mentions(line: str, person: Person) -> bool:
    lowered = line.lower()
    if any(email in lowered for email in person.emails):
        return True
    digits = [p.lstrip("+") for p in person.phones]
    for token in _PHONE_TOKEN.findall(line):
        number = re.sub(r"\D", "", token).lstrip("0")
        if len(number) >= 7 and any(d in number or d.endswith(number) for d in digits):
            return True
    return False


_MEDIA_NAME: Final = re.compile(r"^[0-9a-f]{64}\.[a-z]{3,4}$")


def media_files(conn: Connection, lead_ids: list[int]) -> list[Path]:
    """The stored profile photos (``linkedin_photo`` facts, files named by their SHA-256 in the media folder)
    of these leads that no other lead's fact names: the same picture kept for someone else stays. Only files
    named like the media store names them are returned, whatever a fact's value says."""
    rows = conn.execute(
        "SELECT DISTINCT f.value FROM lead_facts f WHERE f.field = 'linkedin_photo' AND f.value IS NOT NULL"
        " AND f.lead_id = ANY(%(ids)s) AND NOT EXISTS (SELECT 1 FROM lead_facts o WHERE o.field = 'linkedin_photo'"
        " AND o.value = f.value AND NOT (o.lead_id = ANY(%(ids)s)))",
        {"ids": lead_ids},
    )
    paths = [Path(r["value"]) for r in rows]
    return [path for path in paths if _MEDIA_NAME.match(path.name) and path.is_file()]


def erase_from_files(folders: list[Path], person: Person, suffixes: tuple[str, ...] = _FILE_SUFFIXES) -> list[Path]:
    """Rewrite the files with these ``suffixes`` under ``folders`` (import files by default; logs with
    ``LOG_SUFFIXES``) without the lines mentioning the person; returns the files changed. Each file is replaced
    atomically (``export.written_whole``: written beside it, synced, then renamed)."""
    changed: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes):
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
            lines = text.splitlines(keepends=True)
            kept = [line for line in lines if not _mentions(line, person)]
            if len(kept) == len(lines):
                continue
            # on disk before it replaces the file: a power cut must not empty it
            with written_whole(path, encoding="utf-8", newline="", errors="surrogateescape") as handle:
                handle.write("".join(kept))
            changed.append(path)
    return changed


def opt_out(conn: Connection, raw: str, actor: str, *, everyone: bool = False) -> int:
    """Record the person's do-not-sell opt-out and flag their leads; returns how many leads were flagged. Every
    address and number of their leads is recorded (but the ``shared`` ones, as an erasure suppresses them): a
    later import of them under another of their identifiers is flagged too."""
    with conn.transaction():
        person = find_person(conn, raw)
        access.require_privacy_request(conn, actor, person.list_ids, "recording a person's opt-out in it")
        person.require_one(everyone)
        identifiers: list[tuple[Kind, str]] = [("email", e) for e in person.emails]
        identifiers += [("phone", p) for p in person.phones]
        conn.cursor().executemany(
            "INSERT INTO opt_outs (hash, kind, created_by) VALUES (%s, %s, %s) ON CONFLICT (hash) DO NOTHING",
            [(subject_hash(kind, value), kind, actor) for kind, value in identifiers],
        )
        flagged = conn.execute(
            "UPDATE leads SET opted_out_at = now() WHERE id = ANY(%s) AND opted_out_at IS NULL", (person.lead_ids,)
        ).rowcount
        person.record_request(conn, actor, "privacy.opt-out")
    return flagged


def suppressed_values(conn: Connection, field: str, values: Iterable[str | None]) -> set[str]:
    """The values of ``field`` (an email or phone field) that belong to an erased person: enrichment neither looks
    them up nor stores them again (a lead known by name and company would otherwise get the address back)."""
    hashes: dict[str, str] = {}
    for value in values:
        digest = blind_index(field, value)  # the suppression hash (the blind-index key is the suppression key)
        if digest is not None and value is not None:
            hashes[digest] = value
    if not hashes:
        return set()
    rows = conn.execute("SELECT hash FROM suppressions WHERE hash = ANY(%s)", (list(hashes),))
    return {hashes[r["hash"]] for r in rows}


def sellable(alias: str = "l") -> sql.Composable:
    """The SQL condition "this lead may be sold or shared" (no do-not-sell opt-out), for exports and the CRM
    sync: ``WHERE {sellable("l")}`` on a query over ``leads l``."""
    return sql.SQL("{}.opted_out_at IS NULL").format(sql.Identifier(alias))


@dataclass(frozen=True)
class Screening:
    """What ``screen_staged`` found in an import chunk: rows dropped as suppressed, opted-out identifiers (their
    keyed hashes, which are also the blind indexes of the staged rows)."""

    suppressed: list[Problem]
    opted_out: list[str]


_NOTHING: Final = Screening([], [])
_STAGED_HASHES: Final = (("email", "email_bidx"), ("phone", "phone_bidx"), ("mobile_phone", "mobile_phone_bidx"))


def screen_staged(conn: Connection, table: str = "stg") -> Screening:
    """Drop the staged rows of suppressed people (reported as errors of the row, without the value) and note
    the opted-out ones. The staged rows carry blind indexes, which are the suppression hashes: the screening is
    a join. Costs one query when nobody was ever suppressed or opted out."""
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM suppressions) AS suppressed, (SELECT count(*) FROM opt_outs) AS opted_out"
    ).fetchone()
    if counts is None or counts["suppressed"] + counts["opted_out"] == 0:
        return _NOTHING
    from leads_pipeline.lib.prepare import Problem

    dropped: dict[int, Problem] = {}
    opted: set[str] = set()
    staged = sql.Identifier(table)
    for column, hashed in _STAGED_HASHES:
        index = sql.Identifier(hashed)
        for row in conn.execute(
            sql.SQL("SELECT s.row_number FROM {} s JOIN suppressions x ON x.hash = s.{} ORDER BY 1").format(
                staged, index
            )
        ):
            dropped.setdefault(row["row_number"], Problem(row["row_number"], column, None, SUPPRESSED_REASON, "error"))
        opted.update(
            r["hash"]
            for r in conn.execute(
                sql.SQL("SELECT DISTINCT x.hash FROM {} s JOIN opt_outs x ON x.hash = s.{}").format(staged, index)
            )
        )
    if dropped:
        conn.execute(
            sql.SQL("DELETE FROM {} s USING unnest(%s::integer[]) d(n) WHERE s.row_number = d.n").format(staged),
            (list(dropped),),
        )
    return Screening(sorted(dropped.values(), key=lambda p: p.row_number), sorted(opted))


def flag_opted_out(
    conn: Connection, screening: Screening, list_ids: Iterable[int], lead_ids: Iterable[int] = ()
) -> int:
    """Flag the leads carrying an opted-out identifier found while screening: those of ``list_ids`` whose blind
    indexes carry one, and ``lead_ids``, in whose written values it was found outside their blind indexes (a raw
    value kept under ``custom.<field>``). Returns how many were not flagged yet."""
    if not screening.opted_out:
        return 0
    carried = sql.SQL(" OR ").join(
        sql.SQL("{} = ANY(%(h)s)").format(key_column(c)) for c in ("email_bidx", "phone_bidx", "mobile_phone_bidx")
    )
    return conn.execute(
        sql.SQL(
            "UPDATE leads SET opted_out_at = now() WHERE opted_out_at IS NULL"
            " AND (id = ANY(%(ids)s) OR (list_id = ANY(%(lists)s) AND ({})))"
        ).format(carried),
        {"lists": list(list_ids), "ids": list(lead_ids), "h": screening.opted_out},
    ).rowcount
