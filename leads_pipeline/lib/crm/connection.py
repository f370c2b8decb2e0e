"""CRM connection files: one YAML file per connection in the connections folder, checked field by field.

A connection names the CRM and object, the match key, the field mapping (lead field -> CRM field, with
transforms), the direction, which list it syncs, whether to create and update records, the conflict rule and
the schedule. Credentials are not in the file: they come from the CRM's environment variables (``EnvVar``).
Every problem is reported with the file, the key and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from leads_pipeline.lib.crm.base import CRMS, CrmName
from leads_pipeline.lib.crm.mapping import FieldMap, parse_transforms
from leads_pipeline.lib.errors import ConfigurationError, NotFoundError
from leads_pipeline.lib.fields import CANONICAL_FIELDS
from leads_pipeline.lib.filters import parse_filter
from leads_pipeline.lib.runtime import leads_home

Direction = Literal["push", "pull", "bidirectional"]
DIRECTIONS: tuple[Direction, ...] = ("push", "pull", "bidirectional")
Rule = Literal["crm_wins", "local_wins", "most_recent"]
RULES: tuple[Rule, ...] = ("crm_wins", "local_wins", "most_recent")

DEFAULT_OBJECTS: dict[CrmName, str] = {
    "salesforce": "Lead",
    "hubspot": "contacts",
    "pipedrive": "persons",
    "gohighlevel": "contacts",
}
OBJECTS: dict[CrmName, tuple[str, ...]] = {
    "salesforce": ("Lead", "Contact"),
    "hubspot": ("contacts",),
    "pipedrive": ("persons",),
    "gohighlevel": ("contacts",),
}
PUBLISHED_LIMITS: dict[CrmName, tuple[int, float, int | None]] = {
    "hubspot": (190, 10.0, None),  # private app burst; the daily 1M is far above any list
    "salesforce": (25, 1.0, 100_000),  # Enterprise edition base daily API allocation
    "pipedrive": (80, 2.0, None),
    "gohighlevel": (100, 10.0, 200_000),
}
"""(requests, per seconds, daily quota) as each CRM publishes them; a connection file may lower them."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KEYS = {
    "crm", "object", "match_key", "mapping", "pull_fields", "direction", "list", "where", "create_new",
    "update_existing", "conflict", "conflict_fields", "schedule", "batch_size", "bulk_threshold", "rate_limit",
    "daily_quota",
}  # fmt: skip


@dataclass(frozen=True)
class RateLimitSpec:
    requests: int
    per_seconds: float
    daily_quota: int | None = None


@dataclass(frozen=True)
class Connection:
    name: str
    crm: CrmName
    object: str
    match_field: str
    """The lead field matched on (email), and below the CRM field it maps to."""
    match_remote: str
    mapping: tuple[FieldMap, ...]
    direction: Direction = "push"
    list_name: str | None = None
    where: str | None = None
    """A selection expression (the lists' filter language), applied on top of the list when set."""
    create_new: bool = True
    update_existing: bool = True
    conflict: Rule = "most_recent"
    conflict_fields: Mapping[str, Rule] = field(default_factory=dict)
    schedule: str | None = None
    batch_size: int = 100
    bulk_threshold: int = 2_000
    rate_limit: RateLimitSpec = RateLimitSpec(100, 10.0)
    pull_fields: Mapping[str, str] = field(default_factory=dict)
    """Engagement fields read on pull (CRM field -> fact name), e.g. lifecyclestage -> lifecycle_stage."""
    path: Path | None = None

    def rule_for(self, remote_field: str) -> Rule:
        return self.conflict_fields.get(remote_field, self.conflict)

    @property
    def remote_fields(self) -> list[str]:
        return [m.remote for m in self.mapping]

    def describe(self) -> dict[str, Any]:
        """The connection as ``leads crm show --json`` prints it (no credentials: there are none here)."""
        return {
            "name": self.name,
            "crm": self.crm,
            "object": self.object,
            "matchKey": {"field": self.match_field, "crmField": self.match_remote},
            "mapping": {m.local: {"crmField": m.remote, "transforms": list(m.transforms)} for m in self.mapping},
            "pullFields": dict(self.pull_fields),
            "direction": self.direction,
            "list": self.list_name,
            "where": self.where,
            "createNew": self.create_new,
            "updateExisting": self.update_existing,
            "conflict": {"default": self.conflict, "fields": dict(self.conflict_fields)},
            "schedule": self.schedule,
            "batchSize": self.batch_size,
            "bulkThreshold": self.bulk_threshold,
            "rateLimit": {
                "requests": self.rate_limit.requests,
                "perSeconds": self.rate_limit.per_seconds,
                "dailyQuota": self.rate_limit.daily_quota,
            },
            "file": str(self.path) if self.path else None,
        }


def connections_folder() -> Path:
    """``LEADS_CRM_DIR``, else ``crm/`` in the leads home: one ``<name>.yaml`` per connection."""
    return Path(os.environ.get("LEADS_CRM_DIR") or leads_home() / "crm")


def load_connections(folder: Path | None = None) -> list[Connection]:
    """Every connection in ``folder``, by name; a folder that does not exist has none."""
    folder = folder or connections_folder()
    if not folder.is_dir():
        return []
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return [load_connection_file(path) for path in files]


def load_connection(name: str, folder: Path | None = None) -> Connection:
    folder = folder or connections_folder()
    for suffix in (".yaml", ".yml"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return load_connection_file(path)
    known = ", ".join(connection_names(folder)) or "none"
    raise NotFoundError(f"no CRM connection named {name!r} in {folder} (known: {known}); add {folder}/{name}.yaml")


def connection_names(folder: Path | None = None) -> list[str]:
    """The names of the connection files in ``folder``, sorted, whether they parse or not: what a user may pass as
    ``--crm``, to say so when the name given is unknown or missing."""
    folder = folder or connections_folder()
    return sorted(p.stem for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_connection_file(path: Path) -> Connection:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read the connection file: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of settings (crm, object, mapping, ...)")
    return parse_connection(path.stem, data, path)


def parse_connection(name: str, data: Mapping[str, Any], path: Path | None = None) -> Connection:
    where = str(path or name)

    def bad(key: str, expected: str) -> ConfigurationError:
        return ConfigurationError(f"{where}: {key}: expected {expected}, found {data.get(key)!r}")

    if not _NAME.match(name):
        raise ConfigurationError(f"{where}: connection name {name!r}: expected lower-case letters, digits, - and _")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    crm = data.get("crm")
    if crm not in CRMS:
        raise bad("crm", f"one of {', '.join(CRMS)}")
    crm = cast(CrmName, crm)
    obj = data.get("object", DEFAULT_OBJECTS[crm])
    if obj not in OBJECTS[crm]:
        raise bad("object", f"one of {', '.join(OBJECTS[crm])} for {crm}")
    mapping = _mapping(data.get("mapping"), where)
    match_field, match_remote = _match_key(data.get("match_key", "email"), mapping, where)
    direction = data.get("direction", "push")
    if direction not in DIRECTIONS:
        raise bad("direction", f"one of {', '.join(DIRECTIONS)}")
    conflict = data.get("conflict", "most_recent")
    if conflict not in RULES:
        raise bad("conflict", f"one of {', '.join(RULES)}")
    conflict_fields = data.get("conflict_fields") or {}
    if not isinstance(conflict_fields, dict) or any(v not in RULES for v in conflict_fields.values()):
        raise bad("conflict_fields", f"a mapping of CRM field -> one of {', '.join(RULES)}")
    remote_names = {m.remote for m in mapping}
    stray = sorted(set(conflict_fields) - remote_names)
    if stray:
        raise ConfigurationError(f"{where}: conflict_fields: {', '.join(stray)} are not mapped CRM fields")
    pull_fields = data.get("pull_fields") or {}
    if not isinstance(pull_fields, dict) or not all(isinstance(v, str) for v in pull_fields.values()):
        raise bad("pull_fields", "a mapping of CRM field -> fact name (e.g. lifecyclestage: lifecycle_stage)")
    requests, per_seconds, daily = PUBLISHED_LIMITS[crm]
    limit = data.get("rate_limit") or {}
    if not isinstance(limit, dict) or set(limit) - {"requests", "per_seconds"}:
        raise bad("rate_limit", "{requests: N, per_seconds: S}")
    return Connection(
        name=name,
        crm=crm,
        object=str(obj),
        match_field=match_field,
        match_remote=match_remote,
        mapping=mapping,
        direction=cast(Direction, direction),
        list_name=_optional_str(data, "list", where),
        where=_filter(data, where),
        create_new=_bool(data, "create_new", where),
        update_existing=_bool(data, "update_existing", where),
        conflict=cast(Rule, conflict),
        conflict_fields={str(k): cast(Rule, v) for k, v in conflict_fields.items()},
        schedule=_schedule(data, where),
        batch_size=_positive(data, "batch_size", 100, where),
        bulk_threshold=_positive(data, "bulk_threshold", 2_000, where),
        rate_limit=RateLimitSpec(
            _positive(limit, "requests", requests, where),
            float(_positive(limit, "per_seconds", per_seconds, where)),
            _positive(data, "daily_quota", daily, where) if data.get("daily_quota", daily) is not None else None,
        ),
        pull_fields={str(k): v for k, v in pull_fields.items()},
        path=path,
    )


def _mapping(value: Any, where: str) -> tuple[FieldMap, ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigurationError(f"{where}: mapping: expected lead field -> CRM field entries, found {value!r}")
    entries = []
    for local, target in value.items():
        local = str(local)
        if local not in CANONICAL_FIELDS and local != "id" and not local.startswith("custom."):
            raise ConfigurationError(
                f"{where}: mapping: {local!r} is not a lead field; expected id (the lead's id, e.g. for an "
                f"external id field), one of {', '.join(CANONICAL_FIELDS)} or custom.<name>"
            )
        transforms: tuple[str, ...] = ()
        if isinstance(target, str):
            remote = target
        elif isinstance(target, dict) and isinstance(target.get("crm_field"), str):
            remote = target["crm_field"]
            transforms = parse_transforms(target.get("transforms") or [], f"{where}: mapping: {local}")
        else:
            raise ConfigurationError(
                f"{where}: mapping: {local}: expected a CRM field name or {{crm_field: NAME, transforms: [...]}}"
            )
        entries.append(FieldMap(local, remote, transforms))
    remotes = [e.remote for e in entries]
    doubled = sorted({r for r in remotes if remotes.count(r) > 1})
    if doubled:
        raise ConfigurationError(f"{where}: mapping: CRM field(s) {', '.join(doubled)} mapped more than once")
    return tuple(entries)


def _match_key(value: Any, mapping: tuple[FieldMap, ...], where: str) -> tuple[str, str]:
    local = value if isinstance(value, str) else value.get("field") if isinstance(value, dict) else None
    entry = next((m for m in mapping if m.local == local), None)
    if entry is None:
        raise ConfigurationError(f"{where}: match_key: {value!r} must name a mapped lead field (e.g. email)")
    return entry.local, entry.remote


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: {key}: expected a non-empty string, found {value!r}")
    return value


def _filter(data: Mapping[str, Any], where: str) -> str | None:
    """The file's ``where``, checked when the file is read: a bad one failed the sync's run, which named it
    "--where", an option the file's author never typed."""
    value = _optional_str(data, "where", where)
    if value is not None:
        parse_filter(value, f"{where}: where")
    return value


def _schedule(data: Mapping[str, Any], where: str) -> str | None:
    """The cron expression, checked as Dagster checks it: a schedule Dagster refused would be dropped when the
    code location loads, and the connection would silently never run."""
    value = _optional_str(data, "schedule", where)
    if value is None:
        return None
    from dagster._utils.schedules import is_valid_cron_schedule  # dagster loads only for files with a schedule

    if not is_valid_cron_schedule(value):
        raise ConfigurationError(
            f'{where}: schedule: expected a cron expression of 5 fields (e.g. "0 * * * *" hourly, '
            f'"0 6 * * 1-5" weekdays at 06:00 UTC), found {value!r}'
        )
    return value


def schedule_name(connection_name: str) -> str:
    """The Dagster schedule of a connection: Dagster names allow no ``-``, so ``a-b`` and ``a_b`` share one."""
    return f"crm_sync_{connection_name.replace('-', '_')}"


def schedule_clashes(connections: list[Connection]) -> dict[str, Connection]:
    """Connections with a schedule whose schedule name an earlier one (in file order) already has: connection
    name -> that earlier connection. Only the first gets the schedule; the others are reported."""
    first: dict[str, Connection] = {}
    clashes: dict[str, Connection] = {}
    for connection in connections:
        if not connection.schedule:
            continue
        taken = first.setdefault(schedule_name(connection.name), connection)
        if taken is not connection:
            clashes[connection.name] = taken
    return clashes


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, True)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: {key}: expected true or false, found {value!r}")
    return value


def _positive(data: Mapping[str, Any], key: str, default: Any, where: str) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{where}: {key}: expected a positive number, found {value!r}")
    return value
