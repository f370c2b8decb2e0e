"""The CRM sync stage: per connection, a push plan guarded by a blocking check, then the sync itself.

Partitioned by CRM connection (the connection files' names, added as dynamic partitions when a sync is
launched). ``crm_sync_plan`` sorts the list's leads into send / invalid / unchanged and checks the mapping
against the CRM's field list; its blocking check stops ``crm_sync`` when the push cannot be right. ``crm_sync``
runs the engine and reports created, updated, unchanged, failed and conflicts.
"""

from typing import cast

import dagster as dg

from leads_pipeline.defs.config import RunConfig
from leads_pipeline.defs.crm.checks import CHECK_SPECS, PUSH_CHECK, push_check, unknown_fields
from leads_pipeline.defs.executor import final_failure
from leads_pipeline.defs.killed import end_killed_runs
from leads_pipeline.defs.partitions import registered_partition
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.crm.connection import DIRECTIONS, Connection, Direction, load_connection
from leads_pipeline.lib.crm.registry import CrmAccounts, limiter_for
from leads_pipeline.lib.crm.sync import PushPlan, SyncEngine, crm_fields, plan_push, push_filters
from leads_pipeline.lib.errors import AccessDeniedError, ConfigurationError, LeadsError
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store import crm as crm_store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import get_list, get_list_by_id

CRM_CONNECTIONS = "crm_connections"
crm_connections = dg.DynamicPartitionsDefinition(name=CRM_CONNECTIONS)


class CrmSyncConfig(RunConfig):
    """What to sync: the list (default: the connection file's ``list``) and the direction (default: the file's)."""

    list_name: str | None = None
    """The list to sync, instead of the connection file's ``list``."""
    direction: str | None = None
    """push, pull or bidirectional, instead of the connection file's ``direction`` (Dagster config cannot take an
    optional Literal)."""
    user: str | None = None
    """Who runs the sync (``leads sync`` sets its acting user): it needs the editor role on the list. Unset (a
    schedule, a launch from the UI), the sync runs as the owner of the list."""
    where: list[str] = []  # noqa: RUF012 - pydantic copies defaults
    """Filters ``FIELD OP VALUE`` (the lists' language, all must hold) on top of the connection file's ``where``."""


def _connection(context: dg.AssetExecutionContext) -> Connection:
    """The run's connection. Its partition must be registered (``leads sync`` and the schedules register it): a
    run launched through the GraphQL API with a ``dagster/partition`` tag naming a connection file ran, a sync the
    UI does not list under the connection's partitions."""
    name = registered_partition(context, CRM_CONNECTIONS, "CRM connection")
    try:
        return load_connection(name)
    except LeadsError as exc:
        raise final_failure(str(exc)) from exc


SERVICE_USER = "dagster"
"""Who a run without a user and without a list is recorded as (a pull updating linked leads only)."""


def _direction(connection: Connection, config: CrmSyncConfig) -> Direction:
    direction = cast(Direction, config.direction or connection.direction)
    if direction not in DIRECTIONS:
        raise dg.Failure(description=f"direction: expected one of {', '.join(DIRECTIONS)}, found {direction!r}")
    return direction


def _list_id(database: LeadsDatabase, connection: Connection, config: CrmSyncConfig) -> int | None:
    name = config.list_name or connection.list_name
    if name is None:
        return None
    with database.connection() as conn:
        return get_list(conn, name, config.user).id


def _acting_user(
    database: LeadsDatabase, connection: Connection, config: CrmSyncConfig, list_id: int | None, direction: Direction
) -> str:
    """Who the run acts as, once allowed: the configured user (else the list's owner) needs the editor role on
    the list and, for a pull, on every list holding a lead linked to the connection (a pulled record updates
    its linked lead wherever that lead is). A pull writes leads, so it is also refused on an archived list; a
    push only reads them."""
    action = f"syncing it with CRM connection {connection.name!r}"
    with database.connection() as conn:
        linked = [] if direction == "push" else crm_store.linked_list_ids(conn, connection.name)
        list_ids = sorted({*linked, *([list_id] if list_id is not None else [])})
        for each in list_ids:
            user = config.user or get_list_by_id(conn, each).owner
            # a list the run was not told about is not named to someone who is no member of it
            subject = None if each == list_id else f"a list holding leads linked to {connection.name!r}"
            access.require(conn, each, user, "editor", action, write=direction != "push", subject=subject)
        return _run_user(conn, config, list_id)


def _run_user(conn: crm_store.Connection, config: CrmSyncConfig, list_id: int | None) -> str:
    """The user a run is recorded and checked as: the configured one, else the list's owner (a schedule, a UI
    launch), else the service user for a pull without a list."""
    if config.user is not None:
        return config.user
    return get_list_by_id(conn, list_id).owner if list_id is not None else SERVICE_USER


@dg.asset(
    partitions_def=crm_connections,
    group_name="crm",
    kinds={"postgres"},
    check_specs=CHECK_SPECS,
)
def crm_sync_plan(
    context: dg.AssetExecutionContext, config: CrmSyncConfig, database: LeadsDatabase, crm: CrmAccounts
) -> dg.MaterializeResult:
    """What a push of the connection would send: leads changed since their last push (by the hash of their mapped
    values), leads failing validation (held back, listed by the check), and the mapping checked against the
    CRM's own field list."""
    connection = _connection(context)
    direction = _direction(connection, config)
    list_id: int | None = None
    try:
        list_id = _list_id(database, connection, config)
        _acting_user(database, connection, config, list_id, direction)
        resource = crm.for_connection(connection)
        limiter = limiter_for(connection, (database.database_url, resource))
        connector = resource.connector(connection, limiter)
        try:
            unknown = unknown_fields(connection, crm_fields(connection, connector, limiter))
        finally:
            limiter.close()
        if list_id is None:  # a pull-only connection: nothing to push, the mapping is still checked
            plan = PushPlan()
        else:
            with database.connection() as conn:
                plan = plan_push(conn, connection, list_id, push_filters(connection, config.where))
    except AccessDeniedError as exc:  # a sync someone may not run did not start: no run is recorded
        raise final_failure(str(exc)) from exc
    except LeadsError as exc:
        _record_failed_run(context, database, connection, config, direction, list_id, str(exc))
        raise final_failure(str(exc)) from exc
    check = push_check(connection, plan, unknown)
    if check.severity == dg.AssetCheckSeverity.ERROR and not check.passed:
        reason = check.metadata["reason"].value
        _record_failed_run(
            context, database, connection, config, direction, list_id, f"blocked by the check {PUSH_CHECK}: {reason}"
        )
    return dg.MaterializeResult(
        metadata={
            "connection": dg.MetadataValue.text(connection.name),
            "crm": dg.MetadataValue.text(f"{connection.crm} {connection.object}"),
            "to_send": dg.MetadataValue.int(len(plan.send)),
            "invalid": dg.MetadataValue.int(len(plan.invalid)),
            "unchanged": dg.MetadataValue.int(plan.unchanged),
            "held": dg.MetadataValue.int(plan.held),
            "skipped": dg.MetadataValue.int(plan.skipped),
        },
        check_results=[check],
    )


def _record_failed_run(
    context: dg.AssetExecutionContext,
    database: LeadsDatabase,
    connection: Connection,
    config: CrmSyncConfig,
    direction: Direction,
    list_id: int | None,
    message: str,
) -> None:
    """A sync stopped before ``crm_sync`` (the field list unreadable, the push blocked by its check) shows in
    ``leads sync history`` as a failed run with its reason, like a run that failed later."""
    with database.connection() as conn:
        crm_store.ensure_connection(conn, connection.name, connection.crm)
        user = _run_user(conn, config, list_id)
        run_id = crm_store.start_run(conn, connection.name, direction, list_id, user, context.run_id)
        crm_store.update_run(conn, run_id, status="failed", message=message, finished=True)


KILLED_MESSAGE = "the process running its CRM sync was killed: `leads sync history` shows the sync interrupted"


def fail_killed_runs(database_url: str, instance: dg.DagsterInstance) -> None:
    """Report failed the Dagster runs of the sync runs found interrupted (``crm_store.killed_dagster_runs``): the
    process that was killed never wrote their end, so Dagster's UI showed them started for good."""
    with connect(database_url) as conn:
        killed = crm_store.killed_dagster_runs(conn)
    if killed:
        end_killed_runs(instance, KILLED_MESSAGE, failed=True, run_ids=killed)
        with connect(database_url) as conn:
            crm_store.dagster_runs_ended(conn, killed)


@dg.asset(
    partitions_def=crm_connections,
    group_name="crm",
    kinds={"postgres"},
    deps=[crm_sync_plan],
)
def crm_sync(
    context: dg.AssetExecutionContext, config: CrmSyncConfig, database: LeadsDatabase, crm: CrmAccounts
) -> dg.MaterializeResult:
    """One sync run of the connection: pull CRM changes (conflict rules decide fields both sides changed), then
    push the changed valid leads in batches, with retries that lose nothing; counts per run in the sync log."""
    connection = _connection(context)
    direction = _direction(connection, config)
    try:
        list_id = _list_id(database, connection, config)
        user = _acting_user(database, connection, config, list_id, direction)
        account = crm.for_connection(connection)
        limiter = limiter_for(connection, (database.database_url, account))
        connector = account.connector(connection, limiter)
        fail_killed_runs(database.database_url, context.instance)
        engine = SyncEngine(database.database_url, connection, connector, limiter, user=user)
        try:
            filters = push_filters(connection, config.where)
            report = engine.run(direction, list_id, filters, dagster_run_id=context.run_id)
        finally:
            limiter.close()
    except (ConfigurationError, AccessDeniedError) as exc:
        raise final_failure(str(exc)) from exc
    counts = {key: dg.MetadataValue.int(value) for key, value in report.counts().items()}
    return dg.MaterializeResult(
        metadata={
            "sync_id": dg.MetadataValue.int(report.sync_id),
            "status": dg.MetadataValue.text(report.status),
            "direction": dg.MetadataValue.text(direction),
            "message": dg.MetadataValue.text(report.message or ""),
            **counts,
        }
    )


crm_sync_job = dg.define_asset_job(
    "crm_sync_job",
    selection=[crm_sync_plan, crm_sync],
    partitions_def=crm_connections,
    description="Syncs one CRM connection: plans the push, then pulls and pushes. A partition per connection file,"
    " added by crm_connections_sensor within 30 s of the file appearing (and by `leads sync` and the schedules).",
)
