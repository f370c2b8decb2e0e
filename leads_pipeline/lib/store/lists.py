"""Lead lists: the containers leads are imported into. Every read and write of lists goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from leads_pipeline.lib.errors import ConfigurationError, NotFoundError
from leads_pipeline.lib.prepare import DedupeKey

Connection = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class LeadList:
    id: int
    name: str
    dedupe: DedupeKey
    owner: str
    created_at: datetime
    description: str | None = None
    folder: str | None = None
    tags: tuple[str, ...] = ()
    archived: bool = False

    def as_json(self, lead_count: int) -> dict[str, object]:
        """The PRD's "Create Lead List" response shape, plus the list's settings."""
        return {
            "listId": str(self.id),
            "name": self.name,
            "leadCount": lead_count,
            "createdAt": self.created_at.isoformat(),
            "description": self.description,
            "folder": self.folder,
            "tags": list(self.tags),
            "settings": {"deduplication": self.dedupe},
            "owner": self.owner,
            "archived": self.archived,
        }


def _from_row(row: dict[str, Any]) -> LeadList:
    return LeadList(
        id=row["id"],
        name=row["name"],
        dedupe=row["dedupe"],
        owner=row["owner"],
        created_at=row["created_at"],
        description=row["description"],
        folder=row["folder"],
        tags=tuple(row["tags"]),
        archived=row["archived_at"] is not None,
    )


def create_list(
    conn: Connection, name: str, *, owner: str, dedupe: DedupeKey = "email", description: str | None = None
) -> LeadList:
    if not name.strip():
        raise ConfigurationError("a list needs a name; got an empty one")
    if dedupe not in ("email", "phone", "both"):
        raise ConfigurationError(f"--dedupe must be email, phone or both; got {dedupe!r}")
    try:
        row = conn.execute(
            "INSERT INTO lists (name, owner, dedupe, description) VALUES (%s, %s, %s, %s) RETURNING *",
            (name.strip(), owner, dedupe, description),
        ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise ConfigurationError(f"a list named {name!r} already exists; pick another name") from exc
    assert row is not None
    return _from_row(row)


def get_list(conn: Connection, name: str) -> LeadList:
    row = conn.execute(
        "SELECT * FROM lists WHERE lower(name) = lower(%s) AND deleted_at IS NULL", (name.strip(),)
    ).fetchone()
    if row is None:
        known = [r["name"] for r in conn.execute("SELECT name FROM lists WHERE deleted_at IS NULL ORDER BY name")]
        hint = f"; existing lists: {', '.join(known)}" if known else "; there are no lists yet"
        raise NotFoundError(f"no list named {name!r} (create it with `leads lists create {name}`{hint})")
    return _from_row(row)


def get_list_by_id(conn: Connection, list_id: int) -> LeadList:
    row = conn.execute("SELECT * FROM lists WHERE id = %s", (list_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no list with id {list_id}")
    return _from_row(row)


def ensure_list(conn: Connection, name: str, *, owner: str, dedupe: DedupeKey = "email") -> LeadList:
    """The list named ``name``, created if missing (a drop-folder named after a new list creates it)."""
    try:
        return get_list(conn, name)
    except NotFoundError:
        return create_list(conn, name, owner=owner, dedupe=dedupe)


def lead_count(conn: Connection, list_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM leads WHERE list_id = %s AND deleted_at IS NULL", (list_id,)
    ).fetchone()
    assert row is not None
    return int(row["n"])
