"""``leads lists``: create, organise (folders, tags), share, archive and delete lead lists.

Every command checks the acting user's role on the list (``LEADS_USER``, else the OS user) through
``lib/store/access``: viewers read, editors change leads and list details, owners share, archive and delete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    confirmed,
    environment,
    fail,
    field_text,
    print_fields,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.lib.wording import counted

app = typer.Typer(help="Create, organise, share, archive and delete lead lists.", no_args_is_help=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _in_transaction(action: Callable[[Any], T]) -> T:
    """Run ``action(conn)`` in one transaction on the prepared database, errors as one line."""
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def run() -> T:
        with connect(env.database_url) as conn:
            return action(conn)

    return run_or_fail(run)


def _document(conn: Any, lead_list: Any) -> dict[str, Any]:
    """The PRD's list shape plus folder, tags, settings, members and counts by stage and enrichment state."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.lists import list_breakdown

    total, breakdown = list_breakdown(conn, lead_list.id)
    document = lead_list.as_json(total)
    document.update(breakdown)
    document["members"] = [{"user": m["username"], "role": m["role"]} for m in access.members(conn, lead_list.id)]
    return document


@app.command("create")
def lists_create(
    name: str,
    dedupe: Annotated[str, typer.Option(help="Duplicate key within the list: email, phone or both.")] = "email",
    description: Annotated[str | None, typer.Option(help="What the list is for.")] = None,
    folder: Annotated[str | None, typer.Option(help="Folder path, nested with '/': Sales/EMEA/Q3.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag for the list (repeatable).")] = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing",
            help="A list of that name you are a member of is left as it is (exit 0), not refused; for scripts that "
            "run again.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PRD's JSON shape.")] = False,
) -> None:
    """Create a lead list; you become its owner."""
    from leads_pipeline.lib.store.lists import create_list, create_list_if_missing, lead_count

    def create(conn: Any) -> tuple[dict[str, object], bool]:
        make = create_list_if_missing if if_missing else lambda *args, **kwargs: (create_list(*args, **kwargs), True)
        lead_list, created = make(
            conn,
            name,
            owner=acting_user(),
            dedupe=dedupe,  # type: ignore[arg-type]
            description=description,
            folder=folder,
            tags=tag or [],
        )
        return {**lead_list.as_json(0 if created else lead_count(conn, lead_list.id)), "created": created}, created

    document, created = _in_transaction(create)
    if as_json:
        print_json(document)
    elif not created:
        print_line(f"list {document['name']} exists (id {document['listId']}, dedupe by {dedupe}): left as it is")
    else:
        where = f" in {document['folder']}" if document["folder"] else ""
        print_line(
            "created list ", (str(document["name"]), "bold"), f"{where} (id {document['listId']}, dedupe by {dedupe})"
        )


@app.command("show")
def lists_show(name: str, as_json: JsonOption = False) -> None:
    """Show a list: lead count, folder, tags, settings, members, counts by stage and enrichment state."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.lists import get_list

    def show(conn: Any) -> dict[str, Any]:
        lead_list = get_list(conn, name, acting_user())
        access.require(conn, lead_list.id, acting_user(), "viewer", "viewing it", write=False)
        return _document(conn, lead_list)

    document = _in_transaction(show)
    if as_json:
        print_json(document)
        return
    fields = []
    for key, value in document.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(f"{m['user']} ({m['role']})" if isinstance(m, dict) else str(m) for m in value) or "-"
        fields.append((key, field_text(value)))
    print_fields(fields)


@app.command("list", hidden=True)  # as `imports list` and `merges list` name it
@app.command("ls")
def lists_ls(
    folder: Annotated[str | None, typer.Option(help="Only lists in this folder or folders nested in it.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only lists with this tag.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived lists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The lists you can see (as owner, editor or viewer), by folder."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.lists import find_lists

    def ls(conn: Any) -> list[dict[str, Any]]:
        user = acting_user()
        found = find_lists(conn, access.readable_list_ids(conn, user), folder=folder, tag=tag, archived=archived)
        return [
            {**lead_list.as_json(count), "role": access.role_on(conn, lead_list.id, user)} for lead_list, count in found
        ]

    rows = _in_transaction(ls)
    if as_json:
        print_json(rows)
        return
    table = Table("folder", "list", "leads", "tags", "role", "dedupe", "created")
    lines = []
    for row in rows:
        name = row["name"] + (" (archived)" if row["archived"] else "")
        tags = ", ".join(row["tags"])
        leads, dedupe = f"{row['leadCount']:,}", row["settings"]["deduplication"]
        table.add_row(row["folder"] or "/", name, leads, tags, row["role"], dedupe, row["createdAt"][:10])
        # narrower than the table (80 columns: a pipe, a log) a long name was split over two rows, and a script
        # grepping for it found neither: each list takes two lines, every value whole
        tagged = f", tags {tags}" if tags else ""
        lines.append((
            name + (f" in folder {row['folder']}" if row["folder"] else ""),
            f"{counted(row['leadCount'], 'lead')}{tagged}, {row['role']}, dedupe by {dedupe},"
            f" created {row['createdAt'][:10]}",
        ))  # fmt: skip
    print_table(table, lines)


def _audit(conn: Any, action: str, lead_list: Any, details: dict[str, Any]) -> None:
    """The audit entry of a list action, in the action's transaction."""
    from leads_pipeline.lib.store import audit

    audit.record(conn, acting_user(), action, f"list:{lead_list.id}", details, lists=[lead_list.name])


def _change(name: str, needed: str, action: str, change: Callable[[Any, Any], T], *, write: bool = True) -> T:
    """Find the list, check the acting user's role for ``action``, apply ``change(conn, list)``."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.lists import get_list

    def run(conn: Any) -> T:
        lead_list = get_list(conn, name, acting_user())
        access.require(conn, lead_list.id, acting_user(), access.check_role(needed), action, write=write)
        return change(conn, lead_list)

    return _in_transaction(run)


@app.command("rename")
def lists_rename(name: str, new_name: str) -> None:
    """Rename a list (editor or owner)."""
    from leads_pipeline.lib.store.lists import rename_list

    renamed = _change(name, "editor", "renaming it", lambda conn, lst: rename_list(conn, lst, new_name))
    print_line(f"renamed list {name!r} to {renamed.name!r}")


@app.command("move")
def lists_move(
    name: str,
    folder: Annotated[str, typer.Option(help="The folder to move the list to ('/' for the top level).")],
) -> None:
    """Move a list into a folder (editor or owner); folders nest with '/'."""
    from leads_pipeline.lib.store.lists import move_list

    moved = _change(name, "editor", "moving it", lambda conn, lst: move_list(conn, lst, folder))
    print_line(f"moved list {moved.name!r} to {moved.folder or 'the top level'}")


@app.command("tag")
def lists_tag(name: str, tags: Annotated[list[str], typer.Argument(help="Tags to add.")]) -> None:
    """Add tags to a list (editor or owner)."""
    from leads_pipeline.lib.store.lists import tag_list

    tagged = _change(name, "editor", "tagging it", lambda conn, lst: tag_list(conn, lst, tags))
    print_line(f"list {tagged.name!r} tags: {', '.join(tagged.tags) or '-'}")


@app.command("untag")
def lists_untag(name: str, tags: Annotated[list[str], typer.Argument(help="Tags to remove.")]) -> None:
    """Remove tags from a list (editor or owner)."""
    from leads_pipeline.lib.store.lists import tag_list

    tagged = _change(name, "editor", "untagging it", lambda conn, lst: tag_list(conn, lst, tags, remove=True))
    print_line(f"list {tagged.name!r} tags: {', '.join(tagged.tags) or '-'}")


@app.command("archive")
def lists_archive(name: str) -> None:
    """Archive a list (owner): read-only and hidden from `lists ls` unless --archived."""
    from leads_pipeline.lib.store.lists import set_archived

    done = _change(name, "owner", "archiving it", lambda conn, lst: set_archived(conn, lst, True), write=False)
    print_line(f"archived list {done.name!r} (read-only until `leads lists unarchive`)")


@app.command("unarchive")
def lists_unarchive(name: str) -> None:
    """Make an archived list writable and visible again (owner)."""
    from leads_pipeline.lib.store.lists import set_archived

    done = _change(name, "owner", "unarchiving it", lambda conn, lst: set_archived(conn, lst, False), write=False)
    print_line(f"unarchived list {done.name!r}")


@app.command("delete")
def lists_delete(
    name: str,
    purge: Annotated[
        bool, typer.Option("--purge", help="Remove the list's leads for good (cannot be undone).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a list (owner). Its leads are soft-deleted with it (`leads lists restore` brings both back); --purge
    removes them for good."""
    from leads_pipeline.lib.store.lists import delete_list, lead_counts

    if purge and not yes:
        live, every = _change(name, "owner", "deleting it", lambda conn, lst: lead_counts(conn, lst.id), write=False)
        deleted = f" ({every:,} with the deleted ones)" if every != live else ""
        if not confirmed(f"remove list {name!r} and its {counted(live, 'lead')}{deleted} for good?"):
            fail("nothing deleted (confirm, or pass --yes)")

    def delete(conn: Any, lst: Any) -> int:
        removed = delete_list(conn, lst, purge=purge)
        _audit(conn, "list.purge" if purge else "list.delete", lst, {"name": lst.name, "leadCount": removed})
        return removed

    removed = _change(name, "owner", "deleting it", delete, write=False)
    if purge:
        print_line(f"deleted list {name!r} and purged {counted(removed, 'lead')} for good")
    else:
        print_line(f"deleted list {name!r} ({counted(removed, 'lead')} soft-deleted with it)")


@app.command("restore")
def lists_restore(name: str) -> None:
    """Bring back a deleted list (owner) with the leads deleted with it."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.lists import deleted_list, restore_list

    def restore(conn: Any) -> int:
        lead_list = deleted_list(conn, name, acting_user())
        access.require(conn, lead_list.id, acting_user(), "owner", "restoring it", write=False)
        restored = restore_list(conn, lead_list)
        _audit(conn, "list.restore", lead_list, {"name": lead_list.name, "leadCount": restored})
        return restored

    restored = _in_transaction(restore)
    print_line(f"restored list {name!r} with {counted(restored, 'lead')}")


@app.command("share")
def lists_share(
    name: str,
    user: str,
    role: Annotated[str, typer.Option(help="owner, editor or viewer.")] = "viewer",
) -> None:
    """Give a user a role on a list (owner)."""
    from leads_pipeline.lib.store import access

    checked = run_or_fail(lambda: access.check_role(role))

    def share(conn: Any, lst: Any) -> str:
        member = access.grant(conn, lst.id, user, checked, granted_by=acting_user())
        _audit(conn, "list.share", lst, {"user": member, "role": checked})
        return member

    member = _change(name, "owner", "sharing it", share, write=False)
    print_line(f"{member} is now {checked} of list {name!r}")


@app.command("unshare")
def lists_unshare(name: str, user: str) -> None:
    """Take a user's role on a list away (owner)."""
    from leads_pipeline.lib.store import access

    user = user.strip()  # as `share` stores it: " José " names the member José

    def unshare(conn: Any, lst: Any) -> bool:
        removed = access.revoke(conn, lst.id, user)
        if removed:
            _audit(conn, "list.unshare", lst, {"user": user})
        return removed

    removed = _change(name, "owner", "unsharing it", unshare, write=False)
    print_line(
        f"{user} no longer has access to list {name!r}" if removed else f"{user} was not a member of list {name!r}"
    )
