"""crm_connections_sensor: the launchpad's partition picker lists every connection file, synced or not."""

from pathlib import Path

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.crm.assets import CRM_CONNECTIONS
from leads_pipeline.defs.crm.sensors import crm_connections_sensor
from leads_pipeline_tests.defs.crm.test_crm_sync import CONNECTION, write_connection


def test_a_new_connection_file_is_a_partition_after_one_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_CRM_DIR", str(tmp_path))
    write_connection(tmp_path, "hubspot-main", CONNECTION)
    write_connection(tmp_path, "manual-only", {k: v for k, v in CONNECTION.items() if k != "schedule"})
    write_connection(tmp_path, "broken", {"crm": "zoho"})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CRM_CONNECTIONS, ["synced-before"])  # its file since removed: kept
        first = crm_connections_sensor(dg.build_sensor_context(instance=instance))
        registered = sorted(instance.get_dynamic_partitions(CRM_CONNECTIONS))
        assert registered == ["hubspot-main", "manual-only", "synced-before"]
        assert isinstance(first, dg.SkipReason) and first.skip_message == "registered hubspot-main, manual-only"

        write_connection(tmp_path, "pipedrive", dict(CONNECTION, crm="pipedrive"))
        crm_connections_sensor(dg.build_sensor_context(instance=instance))
        assert "pipedrive" in instance.get_dynamic_partitions(CRM_CONNECTIONS)
        again = crm_connections_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(again, dg.SkipReason) and again.skip_message == "every connection file is registered"


def test_the_sensor_is_deployed_and_on() -> None:
    sensor = defs.resolve_sensor_def("crm_connections_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
