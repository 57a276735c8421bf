"""IncrementalAlterConfigs (44) and AlterConfigs (33) against a real node, through confluent-kafka
and our wire client (every version): overrides set, deleted, replaced, refused, kept across a
restart, and applied to the open log (retention deletes old segments)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey
from cluster.pytest_plugin import RunningCluster


def _topic(admin: AdminClient, config: dict[str, str] | None = None) -> str:
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 1, config=config or {})])[name].result(10)
    return name


def _overrides(admin: AdminClient, name: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([resource])[resource].result(10)
    return {e.name: e.value for e in entries.values() if e.source == 1}  # DYNAMIC_TOPIC_CONFIG


def _incremental(admin: AdminClient, name: str, *ops: tuple[str, str | None, AlterConfigOpType],
                 validate_only: bool = False) -> None:
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op) for key, value, op in ops])
    admin.incremental_alter_configs([resource], validate_only=validate_only)[resource].result(10)


def _error(admin: AdminClient, name: str, *ops: tuple[str, str | None, AlterConfigOpType]) -> str:
    with pytest.raises(KafkaException) as raised:
        _incremental(admin, name, *ops)
    error = raised.value.args[0]
    return f"{error.name()}: {error.str()}"


SET, DELETE, APPEND = AlterConfigOpType.SET, AlterConfigOpType.DELETE, AlterConfigOpType.APPEND


def test_incremental_set_delete_append_and_validate_only(cluster: RunningCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    name = _topic(admin, {"segment.ms": "600000"})
    _incremental(admin, name, ("retention.ms", "5000", SET), ("segment.ms", None, DELETE),
                 ("cleanup.policy", "delete", APPEND))
    assert _overrides(admin, name) == {"retention.ms": "5000", "cleanup.policy": "delete"}
    _incremental(admin, name, ("retention.ms", "9000", SET), validate_only=True)
    assert _overrides(admin, name)["retention.ms"] == "5000"


@pytest.mark.parametrize(("ops", "message"), [
    ([("retention.mss", "1", SET)], "INVALID_CONFIG: retention.mss: unknown topic config"),
    ([("retention.ms", "soon", SET)], "INVALID_CONFIG: retention.ms: expected an integer, got 'soon'"),
    ([("retention.ms", "1", APPEND)],
     "INVALID_CONFIG: config value append is not allowed for 'retention.ms': it is not a list"),
    ([("local.retention.ms", None, DELETE)], "INVALID_CONFIG: local.retention.ms: not supported yet"),
])
def test_invalid_changes_are_refused_all_or_none(cluster: RunningCluster, ops: list, message: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    name = _topic(admin, {"retention.ms": "7000"})
    assert _error(admin, name, ("segment.ms", "60000", SET), *ops) == message
    assert _overrides(admin, name) == {"retention.ms": "7000"}


def test_missing_topic_and_broker_resources(cluster: RunningCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    assert _error(admin, "no-such-topic", ("retention.ms", "1", SET)).startswith("UNKNOWN_TOPIC_OR_PART")
    broker = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("num.partitions", "1", incremental_operation=SET)])
    with pytest.raises(KafkaException, match="Cannot update these configs dynamically"):
        admin.incremental_alter_configs([broker])[broker].result(10)


def _wire(cluster: RunningCluster, api_key: ApiKey, version: int, body: dict[str, Any]) -> Any:
    host, port = cluster.bootstrap_servers.split(",")[0].rsplit(":", 1)
    with WireClient(host, int(port)) as client:
        return client.request(api_key, version, body)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_legacy_alter_configs_replaces_every_override(cluster: RunningCluster, version: int) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    name = _topic(admin, {"retention.ms": "7000", "segment.ms": "600000"})
    answer = _wire(cluster, ApiKey.ALTER_CONFIGS, version, {"validate_only": False, "resources": [
        {"resource_type": 2, "resource_name": name, "configs": [{"name": "retention.bytes", "value": "1048576"}]}]})
    assert [(r.error_code, r.resource_name) for r in answer.responses] == [(0, name)]
    assert _overrides(admin, name) == {"retention.bytes": "1048576"}


@pytest.mark.parametrize("version", [0, 1])
def test_incremental_v0_v1_on_the_wire_and_duplicate_names(cluster: RunningCluster, version: int) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    name = _topic(admin)

    def send(*configs: tuple[str, int, str | None]) -> tuple[int, str | None]:
        answer = _wire(cluster, ApiKey.INCREMENTAL_ALTER_CONFIGS, version, {"validate_only": False, "resources": [
            {"resource_type": 2, "resource_name": name,
             "configs": [{"name": n, "config_operation": op, "value": v} for n, op, v in configs]}]})
        (response,) = answer.responses
        return response.error_code, response.error_message

    assert send(("retention.ms", 0, "5000")) == (0, None)
    assert send(("segment.ms", 0, "1"), ("segment.ms", 1, None)) == (42, "config 'segment.ms' is given twice")
    assert _overrides(admin, name) == {"retention.ms": "5000"}


def test_overrides_apply_to_the_open_log_and_survive_a_restart(own_cluster: RunningCluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    admin = AdminClient({"bootstrap.servers": own_cluster.bootstrap_servers})
    name = _topic(admin, {"segment.bytes": "1024"})
    producer = Producer({"bootstrap.servers": own_cluster.bootstrap_servers, "linger.ms": 0})
    for i in range(40):
        producer.produce(name, b"x" * 200, timestamp=1_000_000 + i)  # old timestamps: past any retention
        producer.flush(10)
    _incremental(admin, name, ("retention.ms", "1000", SET))  # the log is open: no restart needed
    consumer = Consumer({"bootstrap.servers": own_cluster.bootstrap_servers, "group.id": "cfg-check"})
    deadline = time.monotonic() + 15
    try:
        while consumer.get_watermark_offsets(TopicPartition(name, 0), timeout=5)[0] == 0:
            assert time.monotonic() < deadline, "retention.ms=1000 never moved the log start offset"
            time.sleep(0.1)
    finally:
        consumer.close()
    own_cluster.restart(1)
    admin = AdminClient({"bootstrap.servers": own_cluster.bootstrap_servers})
    assert _overrides(admin, name) == {"segment.bytes": "1024", "retention.ms": "1000"}
