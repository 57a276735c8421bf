"""Authorization in the request path, through the real handlers on a real partition log: Produce
(WRITE on the topic, on the transactional id), Fetch (READ for consumers, CLUSTER_ACTION for
followers), and that without an authorizer nothing is checked."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.handlers.fetch import handle_fetch
from cluster.handlers.produce import handle_produce
from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.network.request import RequestContext
from cluster.replication.partition import Partition
from cluster.replication.replication_quota import ReplicationQuotas
from cluster.security.acls import ANONYMOUS, AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType
from cluster.security.authorizer import StandardAuthorizer
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records import RecordBatchBuilder

TOPIC, PRODUCE_VERSION, FETCH_VERSION = "t", 9, 12


class _Replicas:
    def __init__(self, partition: Partition) -> None:
        self._partition = partition
        self.quotas = ReplicationQuotas(1, broker_defaults(), lambda _topic: None)

    def partition(self, topic: str, index: int) -> Partition | None:
        return self._partition if (topic, index) == (TOPIC, 0) else None

    def absent_error(self, topic: str, index: int) -> ErrorCode:
        return ErrorCode.unknown_topic_or_partition


@pytest.fixture
def partition(tmp_path: Path) -> Partition:
    config = LogConfig.from_topic_config(topic_defaults(broker_defaults()))
    log = PartitionLog.open(tmp_path / f"{TOPIC}-0", config, 86_400_000, clean_shutdown=True)
    led = Partition(TOPIC, 0, uuid.uuid4(), log, 1)
    led.update_leadership(1, 5, (1, 2), (1,), now_ms=0)
    return led


def _ctx(partition: Partition, api_key: int, version: int, authorizer: StandardAuthorizer | None,
         *acls: AclBinding) -> RequestContext:
    broker = SimpleNamespace(replica_manager=_Replicas(partition), config={"fetch.max.bytes": 1 << 20},
                             authorizer=authorizer, image=SimpleNamespace(acls={str(i): a for i, a in enumerate(acls)}))
    return RequestContext(api_key, version, 1, "test", "127.0.0.1:1", broker, 0.0)  # type: ignore[arg-type]


def _acl(rtype: ResourceType, name: str, op: AclOperation, principal: str = ANONYMOUS,
         permission: AclPermissionType = AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(rtype, name, PatternType.LITERAL, principal, "*", op, permission)


def _produce(ctx: RequestContext, transactional_id: str | None = None) -> int:
    builder = RecordBatchBuilder()
    builder.append(b"k", b"v", timestamp_ms=0)
    body = {"transactional_id": transactional_id, "acks": 1, "timeout": 5000,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": builder.build()}]}]}
    frame = bytearray(codec.encode_request(ApiKey.PRODUCE, PRODUCE_VERSION, 1, "test", body))
    offset = codec.decode_request_header(memoryview(frame)).size
    answer = handle_produce(ctx, memoryview(frame), offset)
    response = codec.decode_response(ApiKey.PRODUCE, PRODUCE_VERSION, b"".join(answer))  # type: ignore[arg-type]
    return response.responses[0].partition_responses[0].error_code


def test_produce_needs_write_on_the_topic(partition: Partition) -> None:
    authorizer = StandardAuthorizer()
    others = _acl(ResourceType.TOPIC, TOPIC, AclOperation.WRITE, principal="User:alice")
    assert _produce(_ctx(partition, ApiKey.PRODUCE, PRODUCE_VERSION, authorizer, others)) == \
        ErrorCode.topic_authorization_failed
    assert partition.log.log_end_offset == 0
    mine = _acl(ResourceType.TOPIC, TOPIC, AclOperation.WRITE)
    assert _produce(_ctx(partition, ApiKey.PRODUCE, PRODUCE_VERSION, authorizer, others, mine)) == ErrorCode.none
    assert partition.log.log_end_offset == 1
    assert _produce(_ctx(partition, ApiKey.PRODUCE, PRODUCE_VERSION, None)) == ErrorCode.none  # no authorizer


def test_transactional_produce_needs_write_on_the_transactional_id(partition: Partition) -> None:
    write = _acl(ResourceType.TOPIC, TOPIC, AclOperation.WRITE)
    ctx = _ctx(partition, ApiKey.PRODUCE, PRODUCE_VERSION, StandardAuthorizer(), write)
    assert _produce(ctx, "tx") == ErrorCode.transactional_id_authorization_failed
    assert partition.log.log_end_offset == 0


def _fetch(ctx: RequestContext, replica_id: int) -> int:
    body = {"cluster_id": None, "replica_id": replica_id, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": TOPIC, "partitions": [{
                "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                "log_start_offset": 0, "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""}
    frame = codec.encode_request(ApiKey.FETCH, FETCH_VERSION, 1, "test", body)
    offset = codec.decode_request_header(memoryview(frame)).size
    request = codec.decode_request(ApiKey.FETCH, FETCH_VERSION, memoryview(frame), offset)
    answer: Any = handle_fetch(ctx, request)
    response = codec.decode_response(ApiKey.FETCH, FETCH_VERSION, b"".join(answer))
    return response.responses[0].partitions[0].error_code


def test_consumer_fetch_needs_read_on_the_topic(partition: Partition) -> None:
    authorizer = StandardAuthorizer()
    describe = _acl(ResourceType.TOPIC, TOPIC, AclOperation.DESCRIBE)
    assert _fetch(_ctx(partition, ApiKey.FETCH, FETCH_VERSION, authorizer, describe), -1) == \
        ErrorCode.topic_authorization_failed
    read = _acl(ResourceType.TOPIC, TOPIC, AclOperation.READ)
    assert _fetch(_ctx(partition, ApiKey.FETCH, FETCH_VERSION, authorizer, read), -1) == ErrorCode.none


def test_follower_fetch_needs_cluster_action(partition: Partition) -> None:
    authorizer = StandardAuthorizer()
    read = _acl(ResourceType.TOPIC, TOPIC, AclOperation.ALL)
    assert _fetch(_ctx(partition, ApiKey.FETCH, FETCH_VERSION, authorizer, read), 2) == \
        ErrorCode.topic_authorization_failed
    action = _acl(ResourceType.CLUSTER, "kafka-cluster", AclOperation.CLUSTER_ACTION)
    assert _fetch(_ctx(partition, ApiKey.FETCH, FETCH_VERSION, authorizer, action), 2) == ErrorCode.none
    assert _fetch(_ctx(partition, ApiKey.FETCH, FETCH_VERSION, StandardAuthorizer(super_users=[ANONYMOUS])), 2) == \
        ErrorCode.none


def test_describe_acls_needs_describe_on_the_cluster(partition: Partition) -> None:
    from cluster.handlers.acls import handle_describe_acls

    request = SimpleNamespace(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                              principal_filter=None, host_filter=None, operation=1, permission_type=1)
    alice = _acl(ResourceType.CLUSTER, "kafka-cluster", AclOperation.ALL, principal="User:alice")
    mine = _acl(ResourceType.CLUSTER, "kafka-cluster", AclOperation.ALTER)  # implies DESCRIBE
    assert handle_describe_acls(_ctx(partition, ApiKey.DESCRIBE_ACLS, 3, None), request)["error_code"] == \
        ErrorCode.security_disabled
    denied = handle_describe_acls(_ctx(partition, ApiKey.DESCRIBE_ACLS, 3, StandardAuthorizer(), alice), request)
    assert denied["error_code"] == ErrorCode.cluster_authorization_failed and denied["resources"] == []
    allowed = handle_describe_acls(_ctx(partition, ApiKey.DESCRIBE_ACLS, 3, StandardAuthorizer(), alice, mine),
                                   request)
    assert allowed["error_code"] == ErrorCode.none
    assert [[a["principal"] for a in r["acls"]] for r in allowed["resources"]] == [[ANONYMOUS, "User:alice"]]
    codec.encode_response_body(ApiKey.DESCRIBE_ACLS, 3, allowed)


def test_configs_need_describe_configs_and_alter_configs(partition: Partition) -> None:
    """DescribeConfigs: DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or the cluster
    for a broker (CLUSTER_AUTHORIZATION_FAILED); alterations need ALTER_CONFIGS, which implies
    DESCRIBE_CONFIGS."""
    from cluster.handlers.alter_configs import config_authorization_error

    topic = SimpleNamespace(resource_type=2, resource_name=TOPIC)
    broker = SimpleNamespace(resource_type=4, resource_name="1")
    alters = _acl(ResourceType.TOPIC, TOPIC, AclOperation.ALTER_CONFIGS)
    ctx = _ctx(partition, ApiKey.DESCRIBE_CONFIGS, 4, StandardAuthorizer(), alters)
    assert config_authorization_error(ctx, topic, AclOperation.DESCRIBE_CONFIGS) is None
    assert config_authorization_error(ctx, topic, AclOperation.ALTER_CONFIGS) is None
    assert config_authorization_error(ctx, broker, AclOperation.DESCRIBE_CONFIGS) == \
        ErrorCode.cluster_authorization_failed
    none = _ctx(partition, ApiKey.DESCRIBE_CONFIGS, 4, StandardAuthorizer())
    assert config_authorization_error(none, topic, AclOperation.DESCRIBE_CONFIGS) == \
        ErrorCode.topic_authorization_failed
    assert config_authorization_error(_ctx(partition, ApiKey.DESCRIBE_CONFIGS, 4, None), broker,
                                      AclOperation.ALTER_CONFIGS) is None
