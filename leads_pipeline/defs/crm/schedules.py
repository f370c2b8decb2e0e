"""One schedule per CRM connection file that has a ``schedule`` (a cron expression).

Built when the code location loads, from the connection files; a file that does not parse is skipped here
(``leads crm ls`` reports it) rather than taking the whole code location down, and so is a file whose schedule
name another file already has (``a-b.yaml`` and ``a_b.yaml``: Dagster names cannot hold ``-``). A schedule
written in a connection file is an explicit request to run it: it starts RUNNING. Its runs rank behind the runs
people launch (``BACKGROUND_PRIORITY``).
"""

import dagster as dg

from leads_pipeline.defs.crm.assets import CRM_CONNECTIONS, crm_sync_job
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.lib.crm.connection import (
    Connection,
    connections_folder,
    load_connection_file,
    schedule_clashes,
    schedule_name,
)
from leads_pipeline.lib.errors import LeadsError


def loadable_connections() -> list[Connection]:
    folder = connections_folder()
    found = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []:
        try:
            found.append(load_connection_file(path))
        except LeadsError:
            continue
    return found


def schedule_for(connection: Connection) -> dg.ScheduleDefinition:
    name = connection.name

    @dg.schedule(
        name=schedule_name(name),
        cron_schedule=connection.schedule or "@daily",
        job=crm_sync_job,
        description=f"Sync CRM connection {name} ({connection.crm}, {connection.direction}).",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        context.instance.add_dynamic_partitions(CRM_CONNECTIONS, [name])
        return dg.RunRequest(
            run_key=None,
            partition_key=name,
            tags={"leads/source": "schedule", "leads/crm": name, **BACKGROUND_PRIORITY},
        )

    return _schedule


def crm_schedules() -> list[dg.ScheduleDefinition]:
    """Schedules of the connections that have one; a cron expression Dagster refuses, or a schedule name an
    earlier file already took, skips that connection (with a warning naming both files)."""
    connections = loadable_connections()
    clashes = schedule_clashes(connections)
    schedules = []
    for connection in connections:
        if not connection.schedule:
            continue
        if connection.name in clashes:
            first = clashes[connection.name]
            dg.get_dagster_logger().warning(
                f"CRM connection {connection.path}: no schedule: {first.path} already has schedule "
                f"{schedule_name(connection.name)} (- and _ give the same name); rename one of the files"
            )
            continue
        try:
            schedules.append(schedule_for(connection))
        except dg.DagsterInvalidDefinitionError:
            continue
    return schedules
