"""Every CRM connection file is a partition of ``crm_connections``, so the launchpad's picker lists it.

``leads sync`` and the schedules register the connection they run, but a file just written was missing from the
UI's picker until one of them did (and a connection without a schedule that is only synced from the UI never was).
The definitions cannot register it when they load (a code location has no instance then): this sensor does,
within its interval of the file appearing. A file that does not parse is left out, as the schedules leave it
(``leads crm ls`` reports it); a removed file's partition stays, with its runs' history."""

import dagster as dg

from leads_pipeline.defs.crm.assets import CRM_CONNECTIONS
from leads_pipeline.defs.crm.schedules import loadable_connections


@dg.sensor(
    name="crm_connections_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds each CRM connection file (crm/<name>.yaml) to the crm_connections partitions, so the "
    "launchpad lists every configured connection; launches nothing.",
)
def crm_connections_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    # a handful of connections: listing them all keeps the ticks that find nothing new from writing anything
    registered = set(context.instance.get_dynamic_partitions(CRM_CONNECTIONS))
    new = [c.name for c in loadable_connections() if c.name not in registered]
    if new:
        context.instance.add_dynamic_partitions(CRM_CONNECTIONS, new)
    return dg.SkipReason(f"registered {', '.join(new)}" if new else "every connection file is registered")
