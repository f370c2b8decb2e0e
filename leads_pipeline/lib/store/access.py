"""Who may do what on a lead list. Every access check of the project goes through this module.

A list has members, each with a role: ``owner`` (everything, including sharing, archiving and deleting the list),
``editor`` (import, edit, tag, move, merge and delete leads) and ``viewer`` (read and export only). The creator of
a list is its first owner. An archived list is read-only for everyone until it is unarchived.

The CLI and the pipeline share one service connection (the role owning the tables, which row-level security
does not restrict), so their checks are the functions below. PostgreSQL enforces the same memberships on
everyone else: ``sql/007_security.sql`` puts row-level security on every table keyed by list or lead, and a
database role named like a list member (``grant_database_login``) reads, with plain SQL, only the rows of the
lists it belongs to. Membership changes made here take effect for that role immediately: the policies read
``list_members``.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from leads_pipeline.lib.errors import AccessDeniedError, ConfigurationError
from leads_pipeline.lib.store.db import SCHEMA

Connection = psycopg.Connection[dict[str, Any]]
Role = Literal["owner", "editor", "viewer"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "editor", "owner")
"""From least to most: each role may do everything the ones before it may."""

_RANK: Final[dict[str, int]] = {role: rank for rank, role in enumerate(ROLES)}


def check_role(role: str) -> Role:
    """``role`` if it names a role; otherwise a configuration error listing the roles."""
    if role not in _RANK:
        raise ConfigurationError(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    return role  # type: ignore[return-value]


def role_on(conn: Connection, list_id: int, user: str) -> Role | None:
    """The user's role on the list, or None if the user is not a member.

    A list created outside ``create_list`` (no member rows) still belongs to the user in its ``owner`` column.
    """
    row = conn.execute(
        "SELECT coalesce(m.role, CASE WHEN l.owner = %(user)s THEN 'owner' END) AS role"
        " FROM lists l LEFT JOIN list_members m ON m.list_id = l.id AND m.username = %(user)s"
        " WHERE l.id = %(list)s",
        {"user": user, "list": list_id},
    ).fetchone()
    return None if row is None else row["role"]


def _describe(needed: Role) -> str:
    allowed = ROLES[_RANK[needed] :]
    return " or ".join(allowed)


def not_shared(subject: str, hint: str = "") -> str:
    """The one refusal for something that does not exist and for something on a list the user is no member of,
    so that a stranger learns neither whether it exists nor the list's name or owners. ``subject`` names it as
    the user named it ("lead 12", "list 'Q3 EMEA'", "import 7"); ``hint`` (the same in both cases) says where to
    look for the user's own."""
    return f"{subject}: not found or not shared with you{f' ({hint})' if hint else ''}"


def require(
    conn: Connection,
    list_id: int,
    user: str,
    needed: Role,
    action: str,
    *,
    write: bool = True,
    subject: str | None = None,
    hint: str = "",
) -> Role:
    """The user's role if it is at least ``needed``; otherwise ``AccessDeniedError``. A member with too low a
    role is told the list, the action, the role needed and who can grant it; anyone else gets ``not_shared``
    of ``subject``: what the user named (default: the list by its name, for commands naming the list), never
    the list behind a lead, an import or a run. ``write`` actions are also refused on an archived list."""
    row = conn.execute("SELECT name, owner, archived_at FROM lists WHERE id = %s", (list_id,)).fetchone()
    role = role_on(conn, list_id, user) if row is not None else None
    if row is None or role is None:
        named = subject or (f"list {row['name']!r}" if row is not None else f"list {list_id}")
        raise AccessDeniedError(not_shared(named, hint))
    if _RANK[role] < _RANK[needed]:
        raise AccessDeniedError(
            f"user {user!r} is {_article(role)} {role} of list {row['name']!r}; {action} needs the role "
            f"{_describe(needed)} (an owner such as {row['owner']!r} can grant it: "
            f"`leads lists share {_quote(row['name'])} {user} --role {needed}`)"
        )
    if write and row["archived_at"] is not None:
        raise AccessDeniedError(
            f"list {row['name']!r} is archived and read-only; {action} is refused "
            f"(an owner can run `leads lists unarchive {_quote(row['name'])}` first)"
        )
    return role


def _article(role: Role) -> str:
    """ "an owner", "an editor", "a viewer": the article of a role in a sentence."""
    return "an" if role[0] in "aeiou" else "a"


def require_all(
    conn: Connection,
    list_ids: list[int],
    user: str,
    needed: Role,
    action: str,
    *,
    write: bool = True,
    subject: str | None = None,
    hint: str = "",
) -> None:
    """``require`` on every list, so that a bulk action touching several lists is refused before it writes."""
    for list_id in sorted(set(list_ids)):
        require(conn, list_id, user, needed, action, write=write, subject=subject, hint=hint)


def readable_list_ids(conn: Connection, user: str, *, include_archived: bool = True) -> list[int]:
    """The ids of the live lists the user can read (any role)."""
    rows = conn.execute(
        "SELECT l.id FROM lists l WHERE l.deleted_at IS NULL"
        " AND (%(archived)s OR l.archived_at IS NULL)"
        " AND (l.owner = %(user)s OR EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id"
        " AND m.username = %(user)s)) ORDER BY l.id",
        {"user": user, "archived": include_archived},
    )
    return [int(r["id"]) for r in rows]


def members(conn: Connection, list_id: int) -> list[dict[str, Any]]:
    """The list's members and their roles, owners first."""
    return list(
        conn.execute(
            "SELECT username, role, granted_by, granted_at FROM list_members WHERE list_id = %s"
            " ORDER BY array_position(ARRAY['owner', 'editor', 'viewer'], role), username",
            (list_id,),
        )
    )


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character (a line break, a tab, a terminal escape)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def printable_name(name: str, what: str) -> str:
    """``name`` trimmed, once it holds no control character: a line break, tab or terminal escape
    (``\\x1b[31m``) was stored as typed, and every table showing it then printed it to the terminal of whoever
    read it (a name that recolours or rewrites the screen). ``what`` names it in the refusal ("a list name")."""
    if has_control_characters(name.strip()):
        raise ConfigurationError(f"{what} cannot hold control characters (line breaks, tabs, escapes); got {name!r}")
    return name.strip()


def grant(conn: Connection, list_id: int, user: str, role: Role, *, granted_by: str) -> str:
    """Give ``user`` the role on the list (replacing any role they had); the caller has checked ownership.
    Returns the member's name as stored (trimmed), for the audit entry and the message to name."""
    if not user.strip():
        raise ConfigurationError("a user name cannot be empty")
    user = printable_name(user, "a user name")
    if role != "owner":
        _keep_an_owner(conn, list_id, user)
    conn.execute(
        "INSERT INTO list_members (list_id, username, role, granted_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (list_id, username) DO UPDATE SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by,"
        " granted_at = now()",
        (list_id, user, role, granted_by),
    )
    return user


def revoke(conn: Connection, list_id: int, user: str) -> bool:
    """Remove the user from the list's members; False if they were not one. The last owner cannot leave. The name
    is trimmed as ``grant`` stores it: " José " names the member José, whoever the caller is."""
    user = user.strip()
    _keep_an_owner(conn, list_id, user)
    return conn.execute("DELETE FROM list_members WHERE list_id = %s AND username = %s", (list_id, user)).rowcount > 0


def _keep_an_owner(conn: Connection, list_id: int, user: str) -> None:
    others = conn.execute(
        "SELECT count(*) AS n FROM list_members WHERE list_id = %s AND role = 'owner' AND username <> %s",
        (list_id, user),
    ).fetchone()
    is_owner = conn.execute(
        "SELECT 1 FROM list_members WHERE list_id = %s AND role = 'owner' AND username = %s", (list_id, user)
    ).fetchone()
    if is_owner and others is not None and others["n"] == 0:
        raise ConfigurationError(
            f"{user!r} is the list's only owner; make someone else an owner first (`--role owner`)"
        )


def _quote(name: str) -> str:
    return f'"{name}"' if " " in name else name


READER_ROLE: Final = "leads_reader"
"""The group role of database users reading with plain SQL: SELECT on the list and lead tables, filtered by the
row-level security policies to the lists its member belongs to."""


def grant_database_login(conn: Connection, user: str, password: str | None = None) -> None:
    """Let ``user`` (a list member's name) log in to the database and read with plain SQL what their list
    memberships allow. Creates the role if needed; never gives it BYPASSRLS or any write privilege. An existing
    role is only reused (its password reset) if it is such a login already: a reader with no other role and no
    attribute beyond LOGIN. Any other (the service's own role, an administrator's, one with other grants) would
    be taken over by whoever names it in ``LEADS_USER``."""
    if not user.strip() or user != user.strip():
        raise ConfigurationError(f"a database user name cannot be empty or padded; got {user!r}")
    exists = conn.execute(
        "SELECT r.rolbypassrls OR r.rolsuper AS bypasses, r.rolcreaterole OR r.rolcreatedb OR r.rolreplication"
        " OR r.rolname = current_user OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        " WHERE m.member = r.oid AND g.rolname <> %(reader)s) OR NOT EXISTS (SELECT 1 FROM pg_auth_members m"
        " JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid AND g.rolname = %(reader)s) AS foreign"
        " FROM pg_roles r WHERE r.rolname = %(user)s",
        {"user": user, "reader": READER_ROLE},
    ).fetchone()
    role = sql.Identifier(user)
    if exists is not None and exists["bypasses"]:
        raise ConfigurationError(f"database role {user!r} bypasses row-level security; use another name")
    if exists is not None and exists["foreign"]:
        raise ConfigurationError(
            f"database role {user!r} exists and is not a login made by `leads access sql-login` (it has other "
            f"rights or roles than {READER_ROLE}); its password is left alone: use another name"
        )
    with _role_privileges(conn, user):
        if exists is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        if password is not None:
            # hashed here, as psql's \password does: the statement holding the password in clear reached the
            # server's log whenever it failed (a service role that may not alter roles) or DDL is logged
            verifier = conn.pgconn.encrypt_password(password.encode(), user.encode()).decode()
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(verifier)))
        _grant_reader_tables(conn)
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER_ROLE), role))


@contextmanager
def _role_privileges(conn: Connection, user: str) -> Iterator[None]:
    """A service role that may not make logins (no CREATEROLE, the usual role of a team's own server) is told what
    an administrator grants, rather than shown psycopg's traceback."""
    try:
        yield
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedObject) as exc:
        service = conn.info.user
        raise ConfigurationError(
            f"cannot make the database login {user!r} as role {service!r} ({exc.diag.message_primary}); as an"
            f' administrator run: CREATE ROLE {READER_ROLE} NOLOGIN (if it does not exist); ALTER ROLE "{service}"'
            f' CREATEROLE; GRANT {READER_ROLE} TO "{service}" WITH ADMIN OPTION; then run this command again'
        ) from None


def _grant_reader_tables(conn: Connection) -> None:
    """Give the reader group what the migrations give it: a migration run when the group did not exist yet (the
    service role may not create roles) skipped its grants, so a group an administrator created later read
    nothing. The readable relations are those with a row-level security policy and the views that run with the
    reader's rights (security_invoker), as sql/007 and sql/011 grant them."""
    readable = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND (EXISTS (SELECT 1 FROM"
        " pg_policy p WHERE p.polrelid = c.oid) OR (c.relkind = 'v' AND 'security_invoker=true' = ANY(c.reloptions)))",
        (SCHEMA,),
    ).fetchall()
    reader = sql.Identifier(READER_ROLE)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), reader))
    conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION may_read_list(bigint, text) TO {}").format(reader))
    tables = sql.SQL(", ").join(sql.Identifier(SCHEMA, row["relname"]) for row in readable)
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, reader))


PRIVACY_OFFICERS_ENV: Final = "LEADS_PRIVACY_OFFICERS"
"""Comma-separated users who may act on privacy requests (export, erase, opt out) whatever lists hold the person."""


def is_privacy_officer(user: str) -> bool:
    """Whether ``LEADS_PRIVACY_OFFICERS`` names the user."""
    return user in {name.strip() for name in os.environ.get(PRIVACY_OFFICERS_ENV, "").split(",") if name.strip()}


def require_privacy_request(conn: Connection, user: str, list_ids: list[int], action: str) -> None:
    """A privacy request reveals or erases a person's data in every list: allowed to a privacy officer
    (``LEADS_PRIVACY_OFFICERS``), else only to an owner of every list holding the person's data. A request about
    a person no list holds acts on every list (its suppression or opt-out screens every later import, and what
    it finds is in no list of the user's), so it needs an owner of every list (``require_every_list``)."""
    if is_privacy_officer(user):
        return
    # A person no list holds is refused as one held by lists not shared with the user: a different refusal would
    # tell anyone whether an address is anywhere in the database.
    subject = "a list holding this person"
    try:
        if list_ids:
            require_all(conn, list_ids, user, "owner", action, write=False, subject=subject)
        elif lists_not_owned(conn, user):
            raise AccessDeniedError(not_shared(subject))
    except AccessDeniedError as exc:
        raise AccessDeniedError(f"{exc}; or add {user!r} to {PRIVACY_OFFICERS_ENV} (privacy officers)") from None


def lists_not_owned(conn: Connection, user: str) -> list[tuple[str, bool]]:
    """The live lists the user does not own, by name: each name and whether the user is a member (knows it)."""
    rows = conn.execute(
        "SELECT name, role IS NOT NULL AS member FROM (SELECT l.name, coalesce((SELECT m.role FROM list_members m"
        " WHERE m.list_id = l.id AND m.username = %(user)s), CASE WHEN l.owner = %(user)s THEN 'owner' END) AS role"
        " FROM lists l WHERE l.deleted_at IS NULL) AS r WHERE role IS DISTINCT FROM 'owner' ORDER BY name",
        {"user": user},
    )
    return [(str(r["name"]), bool(r["member"])) for r in rows]


def acts_on_every_list(conn: Connection, user: str) -> bool:
    """Whether the user may act on every list at once: a privacy officer, or an owner of every live list.

    The project has no administrator role; this is the one rule for what reaches every list (a global
    retention policy, applying the policies, the whole audit log)."""
    return is_privacy_officer(user) or not lists_not_owned(conn, user)


def require_every_list(conn: Connection, user: str, action: str) -> None:
    """``AccessDeniedError`` unless the user acts on every list (``acts_on_every_list``), naming a list they do
    not own only if they are a member of it: the names of lists not shared with them are not theirs to learn."""
    if is_privacy_officer(user):
        return
    missing = lists_not_owned(conn, user)
    if missing:
        known = [name for name, member in missing if member]
        which = f"list {known[0]!r}" if known else "every list"
        raise AccessDeniedError(
            f"user {user!r} does not own {which}; {action} reaches every list, so it needs an "
            f"owner of every list or a privacy officer (add {user!r} to {PRIVACY_OFFICERS_ENV})"
        )
