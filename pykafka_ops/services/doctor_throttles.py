"""The replication-throttle check of `pko doctor`: throttles left set while no reassignment runs.

kafka-reassign-partitions (and `pko reassign`) sets ``leader/follower.replication.throttled.rate``
on brokers and ``leader/follower.replication.throttled.replicas`` on topics for a move, and clears
them only when ``--verify`` is run after it completed. Forgotten, they keep capping how fast an
out-of-sync replica catches up — after the next broker restart, recovery crawls at the old move's
rate (KIP-73; Kafka's documentation warns to run --verify). ``read_throttles`` collects what the
check needs (blocking: DescribeConfigs of every broker and topic, ListPartitionReassignments);
``check_replication_throttles`` is pure, as the other checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import admin_client
from pykafka_ops.client.reassign_requests import list_partition_reassignments
from pykafka_ops.config.settings import INT64_MAX
from pykafka_ops.models.doctor import (
    CheckSkipped,
    DoctorInput,
    DoctorOptions,
    Finding,
    ReplicationThrottles,
    Severity,
    Subject,
)
from pykafka_ops.services.configs import resource_configs

RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
REPLICA_LISTS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


def read_throttles(settings: ClientSettings, brokers: Sequence[int], topics: Sequence[str]) -> ReplicationThrottles:
    """The throttles set on ``brokers`` and ``topics`` and the reassignments in progress
    (raises what the admin calls raise)."""
    admin = admin_client(settings)
    rates: dict[int, dict[str, int]] = {}
    for described in resource_configs(admin, settings, "brokers", [str(b) for b in brokers]):
        for e in described.entries:
            if e.name in RATES and e.value is not None and e.value.isdigit() and int(e.value) < INT64_MAX:
                rates.setdefault(int(described.entity_name), {})[e.name] = int(e.value)
    lists: dict[str, dict[str, str]] = {}
    for described in resource_configs(admin, settings, "topics", list(topics)):
        for e in described.entries:
            if e.name in REPLICA_LISTS and e.value and e.value.strip():
                lists.setdefault(described.entity_name, {})[e.name] = e.value
    ongoing = tuple((r.topic, r.partition) for r in list_partition_reassignments(settings))
    return ReplicationThrottles(rates, lists, ongoing)


def check_replication_throttles(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Brokers and topics with a replication throttle while no reassignment is in progress (WARN)."""
    throttles = data.throttles
    if throttles is None:
        raise CheckSkipped("the throttle configs or the reassignments in progress could not be read")
    if throttles.reassigning:
        return []  # a move is running: its throttles are meant
    b = data.bootstrap_servers
    caveat = ("`pko reassign --verify --reassignment-json-file PLAN` removes them too once the reassignment of "
              "PLAN has completed",)
    why = ("no reassignment is in progress: the throttle only slows replicas that fall behind, e.g. after a "
           "broker restart")
    found = [Finding("replication-throttle", Severity.WARN, Subject("broker", str(broker)), dict(rates), why,
                     f"pko configs -b {b} --alter --entity-type brokers --entity-name {broker} --delete-config "
                     f"{','.join(RATES)}", caveat)
             for broker, rates in sorted(throttles.broker_rates.items())]
    found += [Finding("replication-throttle", Severity.WARN, Subject("topic", topic), dict(lists), why,
                      f"pko configs -b {b} --alter --topic {topic} --delete-config {','.join(REPLICA_LISTS)}", caveat)
              for topic, lists in sorted(throttles.topic_replicas.items()) if options.wants_topic(topic)]
    return found
