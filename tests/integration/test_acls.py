"""ACLs end to end (issue 18): DescribeAcls/CreateAcls/DeleteAcls through confluent-kafka's and
kafka-python's admin clients, and their enforcement for User:ANONYMOUS (PLAINTEXT).

* without an authorizer (the session's ``pko_cluster``) the three APIs answer SECURITY_DISABLED;
* one node with Kafka's StandardAuthorizer and ``allow.everyone.if.no.acl.found`` (so the
  anonymous test client may manage ACLs while the cluster resource has none): a topic whose only
  ACL is another principal's refuses a produce with TOPIC_AUTHORIZATION_FAILED, which a WRITE ACL
  for User:ANONYMOUS lifts; a prefixed group ACL lets a consumer group read; a DENY wins over an
  ALLOW; ACLs survive a restart (read back from the metadata log);
* three nodes with default-deny and ``super.users: User:ANONYMOUS`` (the documented way to run an
  authorizer on PLAINTEXT): replication, groups and ACL management all work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from integration_helpers import create_topic, unique_topic

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ACL_YAML = f"""\
cluster: {{name: acls}}
nodes:
  - {{id: 1}}
broker:
  authorizer.class.name: {AUTHORIZER}
  allow.everyone.if.no.acl.found: true
  offsets.topic.num.partitions: 1
  group.initial.rebalance.delay.ms: 0
"""
SUPER_USER_YAML = f"""\
cluster: {{name: acls-super}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  authorizer.class.name: {AUTHORIZER}
  super.users: "User:ANONYMOUS"
  offsets.topic.num.partitions: 1
  group.initial.rebalance.delay.ms: 0
  min.insync.replicas: 2
"""
ANONYMOUS = "User:ANONYMOUS"


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(ACL_YAML, tmp_path_factory.mktemp("acls")) as running:
        yield running


def _admin(cluster: RunningCluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers})


def _binding(rtype: ResourceType, name: str, principal: str, op: AclOperation,
             permission: AclPermissionType = AclPermissionType.ALLOW,
             pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", op, permission)


def _create(cluster: RunningCluster, *bindings: AclBinding) -> None:
    admin = _admin(cluster)  # keep a reference: a collected AdminClient cancels its futures
    for future in admin.create_acls(list(bindings)).values():
        future.result(10)


def _describe(cluster: RunningCluster, acl_filter: AclBindingFilter) -> list[AclBinding]:
    admin = _admin(cluster)
    return admin.describe_acls(acl_filter).result(10)


def _produce(cluster: RunningCluster, topic: str) -> KafkaError | None:
    """One record with acks=all and no retries: the delivery error, or None."""
    outcome: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "retries": 0,
                         "message.timeout.ms": 5000, "enable.idempotence": False})
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(10)
    return outcome[0]


def test_acl_apis_without_authorizer_answer_security_disabled(pko_cluster: RunningCluster) -> None:
    admin = _admin(pko_cluster)
    binding = _binding(ResourceType.TOPIC, "t", ANONYMOUS, AclOperation.READ)
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    for future in (admin.create_acls([binding])[binding], admin.delete_acls([any_filter])[any_filter]):
        with pytest.raises(KafkaException) as caught:
            future.result(10)
        assert caught.value.args[0].code() == KafkaError.SECURITY_DISABLED
    # librdkafka (2.16) drops DescribeAcls' top-level error, against Kafka too; kafka-python raises it
    assert admin.describe_acls(any_filter).result(10) == []
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, KafkaAdminClient, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType as KpPattern
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError

    kp_admin = KafkaAdminClient(bootstrap_servers=pko_cluster.bootstrap_servers)
    try:
        with pytest.raises(SecurityDisabledError):
            kp_admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                             ResourcePatternFilter(KpResourceType.ANY, None, KpPattern.ANY)))
    finally:
        kp_admin.close()


def test_confluent_create_describe_delete(acl_cluster: RunningCluster) -> None:
    topic = unique_topic("acl-cf")
    read = _binding(ResourceType.TOPIC, topic, "User:alice", AclOperation.READ)
    prefixed = _binding(ResourceType.GROUP, topic, "User:alice", AclOperation.READ,
                        pattern=ResourcePatternType.PREFIXED)
    bad = _binding(ResourceType.BROKER, "not-the-cluster", "User:alice", AclOperation.ALTER)
    admin = _admin(acl_cluster)
    results = admin.create_acls([read, prefixed, bad])
    results[read].result(10)
    results[prefixed].result(10)
    with pytest.raises(KafkaException) as caught:
        results[bad].result(10)
    assert caught.value.args[0].code() == KafkaError.INVALID_REQUEST
    match = AclBindingFilter(ResourceType.ANY, f"{topic}-x", ResourcePatternType.MATCH, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    assert _describe(acl_cluster, match) == [prefixed]
    by_name = AclBindingFilter(ResourceType.ANY, topic, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY,
                               AclPermissionType.ANY)
    assert sorted(_describe(acl_cluster, by_name)) == sorted([read, prefixed])
    deleted = admin.delete_acls([by_name])[by_name].result(10)
    assert sorted(deleted) == sorted([read, prefixed])
    assert _describe(acl_cluster, by_name) == []


def test_kafka_python_create_describe_delete(acl_cluster: RunningCluster) -> None:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
    )
    from kafka.admin import ResourceType as KpResourceType

    topic = unique_topic("acl-kp")
    admin = KafkaAdminClient(bootstrap_servers=acl_cluster.bootstrap_servers)
    try:
        acl = ACL("User:bob", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                  ResourcePattern(KpResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
        created = admin.create_acls([acl])
        assert created["failed"] == [] and len(created["succeeded"]) == 1
        wanted = ACLFilter("User:bob", None, ACLOperation.ANY, ACLPermissionType.ANY,
                           ResourcePatternFilter(KpResourceType.TOPIC, topic, ACLResourcePatternType.ANY))
        found, error = admin.describe_acls(wanted)
        assert error.errno == 0 and [(a.principal, a.operation) for a in found] == [("User:bob", ACLOperation.WRITE)]
        ((_filter, matched, error),) = admin.delete_acls([wanted])
        assert error.errno == 0 and len(matched) == 1
        assert admin.describe_acls(wanted)[0] == []
    finally:
        admin.close()


def test_produce_denied_then_allowed_by_a_write_acl(acl_cluster: RunningCluster) -> None:
    topic = unique_topic("acl-produce")
    create_topic(acl_cluster, topic, partitions=1)
    assert _produce(acl_cluster, topic) is None  # no ACL for the topic: allow.everyone.if.no.acl.found
    _create(acl_cluster, _binding(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE))
    error = _produce(acl_cluster, topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    _create(acl_cluster, _binding(ResourceType.TOPIC, topic, ANONYMOUS, AclOperation.WRITE))
    assert _produce(acl_cluster, topic) is None
    _create(acl_cluster, _binding(ResourceType.TOPIC, topic, "User:*", AclOperation.ALL, AclPermissionType.DENY))
    error = _produce(acl_cluster, topic)  # DENY wins over ALLOW
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_metadata_leaves_out_topics_without_describe(acl_cluster: RunningCluster) -> None:
    hidden, shown = unique_topic("acl-hidden"), unique_topic("acl-shown")
    create_topic(acl_cluster, hidden, partitions=1)
    create_topic(acl_cluster, shown, partitions=1)
    _create(acl_cluster, _binding(ResourceType.TOPIC, hidden, ANONYMOUS, AclOperation.DESCRIBE, AclPermissionType.DENY))
    admin = _admin(acl_cluster)
    listed = admin.list_topics(timeout=10).topics
    assert shown in listed and hidden not in listed
    named = admin.list_topics(hidden, timeout=10).topics[hidden]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _consume_one(cluster: RunningCluster, topic: str, group: str) -> KafkaError | bytes | None:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            return message.error() or message.value()
        return None
    finally:
        consumer.close()


def test_prefixed_group_acl_lets_a_consumer_read(acl_cluster: RunningCluster) -> None:
    topic = unique_topic("acl-consume")
    prefix = f"{topic}-app-"
    create_topic(acl_cluster, topic, partitions=1)
    assert _produce(acl_cluster, topic) is None
    _create(acl_cluster, _binding(ResourceType.GROUP, prefix, "User:alice", AclOperation.READ,
                                  pattern=ResourcePatternType.PREFIXED))
    denied = _consume_one(acl_cluster, topic, f"{prefix}1")
    assert isinstance(denied, KafkaError) and denied.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    _create(acl_cluster, _binding(ResourceType.GROUP, prefix, ANONYMOUS, AclOperation.READ,
                                  pattern=ResourcePatternType.PREFIXED))
    assert _consume_one(acl_cluster, topic, f"{prefix}1") == b"v"


def test_acls_survive_a_restart(acl_cluster: RunningCluster) -> None:
    topic = unique_topic("acl-restart")
    kept = _binding(ResourceType.TOPIC, topic, "User:carol", AclOperation.DESCRIBE)
    _create(acl_cluster, kept)
    acl_cluster.restart(1)
    by_name = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
                               AclPermissionType.ANY)
    found = wait_until(lambda: _describe_or_none(acl_cluster, by_name), 20, "ACLs after the restart")
    assert found == [kept]


def _describe_or_none(cluster: RunningCluster, acl_filter: AclBindingFilter) -> list[AclBinding] | None:
    try:
        return _describe(cluster, acl_filter) or None
    except KafkaException:
        return None


def test_super_user_on_three_nodes(tmp_path_factory: pytest.TempPathFactory) -> None:
    with start_cluster(SUPER_USER_YAML, tmp_path_factory.mktemp("acls-super")) as cluster:
        topic = unique_topic("acl-super")
        admin = _admin(cluster)
        admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(15)
        _create(cluster, _binding(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE))
        assert _produce(cluster, topic) is None  # acks=all: the followers replicate (CLUSTER_ACTION)
        assert _consume_one(cluster, topic, f"{topic}-group") == b"v"
