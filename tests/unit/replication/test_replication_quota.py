"""Replication throttles (KIP-73): the throttled-replica lists (Kafka's ThrottledReplicaListValidator
and parseThrottledPartitions), the rate (Kafka's SimpleRate) on a fake clock converging to the
configured one, and both sides: the leader's Fetch answer (shouldLeaderThrottle) and the follower's
request (shouldFollowerThrottle)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from replication_builders import TOPIC, FakeReplicaManager, encoded, records

from cluster.controller.broker_configs import check_broker_changes
from cluster.handlers.fetch import handle_fetch
from cluster.network.request import RequestContext
from cluster.replication.partition import Partition
from cluster.replication.replica_fetcher import (
    FetcherSettings,
    FetchState,
    ReplicaFetcher,
)
from cluster.replication.replication_quota import (
    ALL_PARTITIONS,
    Rate,
    ReplicationQuotaManager,
    ReplicationQuotas,
    throttled_partitions,
)
from pykafka_ops.config.settings import (
    INT64_MAX,
    SettingError,
    broker_defaults,
    check_topic_overrides,
)
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
MB = 1 << 20


def _quota(rate: int, topic_config: dict[str, Any] | None = None, side: str = "leader",
           broker_id: int = 1) -> ReplicationQuotaManager:
    config = broker_defaults() | {f"{side}.replication.throttled.rate": rate}
    return ReplicationQuotaManager(side, broker_id, config, lambda topic: topic_config if topic == TOPIC else None)  # type: ignore[arg-type]


# -- throttled-replica lists --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "*", " * ", "0:1", "0:1,1:2", "0:1, 1:2 ,2:3", "0:1,,1:2", "10:101"])
def test_valid_throttled_replica_lists(value: str) -> None:
    assert check_topic_overrides({LEADER_REPLICAS: value, FOLLOWER_REPLICAS: value}) == {
        LEADER_REPLICAS: value, FOLLOWER_REPLICAS: value}


@pytest.mark.parametrize("value", ["all", "0", "0:", ":1", "0:1:2", "a:1", "0:1,*", "*,*", "-1:1", "0;1"])
def test_invalid_throttled_replica_lists_are_refused_as_kafka_does(value: str) -> None:
    with pytest.raises(SettingError) as refused:
        check_topic_overrides({FOLLOWER_REPLICAS: value})
    assert (f"Invalid value {value} for configuration {FOLLOWER_REPLICAS}: {FOLLOWER_REPLICAS} must be the "
            "literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],") in str(refused.value)


def test_a_list_names_the_partitions_of_one_broker() -> None:
    assert throttled_partitions("0:1,1:2,2:1, 3:1", 1) == frozenset({0, 2, 3})
    assert throttled_partitions("0:1,1:2", 2) == frozenset({1})
    assert throttled_partitions("0:1,1:2", 3) == frozenset()
    assert throttled_partitions("", 1) == frozenset()
    assert throttled_partitions(" * ", 7) is ALL_PARTITIONS and 12345 in ALL_PARTITIONS


def test_is_throttled_reads_the_topic_config_now() -> None:
    config: dict[str, Any] = {LEADER_REPLICAS: "0:1,1:2"}
    quota = _quota(MB, config)
    assert quota.is_throttled(TOPIC, 0) and not quota.is_throttled(TOPIC, 1)
    assert not quota.is_throttled("other", 0)
    config[LEADER_REPLICAS] = "*"
    assert quota.is_throttled(TOPIC, 1)
    del config[LEADER_REPLICAS]
    assert not quota.is_throttled(TOPIC, 0)
    assert not _quota(MB, {LEADER_REPLICAS: "*"}, side="follower").is_throttled(TOPIC, 0)  # the other side's list


def test_rates_are_dynamic_broker_configs_and_windows_are_static() -> None:
    assert check_broker_changes({"leader.replication.throttled.rate": "2097152",
                                 "follower.replication.throttled.rate": None}) == {
        "leader.replication.throttled.rate": 2097152, "follower.replication.throttled.rate": None}
    with pytest.raises(SettingError, match="must be at least 0"):
        check_broker_changes({"leader.replication.throttled.rate": "-1"})
    with pytest.raises(SettingError, match="Cannot update these configs dynamically"):
        check_broker_changes({"replication.quota.window.num": "5"})
    defaults = broker_defaults()
    assert (defaults["leader.replication.throttled.rate"], defaults["follower.replication.throttled.rate"],
            defaults["replication.quota.window.num"], defaults["replication.quota.window.size.seconds"]) == (
        INT64_MAX, INT64_MAX, 11, 1)
    assert not _quota(INT64_MAX).limited() and _quota(INT64_MAX - 1).limited()


# -- the rate -----------------------------------------------------------------------------------


def test_rate_is_kafkas_simple_rate() -> None:
    rate = Rate(samples=11, window_s=1.0)
    rate.record(100, now=0.0)
    assert rate.measure(0.0) == 100  # at least one window
    assert rate.measure(5.0) == 20  # over the time since the oldest sample began
    rate.record(100, now=5.0)
    assert rate.measure(10.0) == 20
    assert rate.measure(11.0) == pytest.approx(100 / 6)  # the sample of t=0 expired (11 s without an event)


def test_throttle_time_is_when_the_rate_is_back_under_the_quota() -> None:
    quota = _quota(1000)
    quota.record(5000, now=0.0)
    assert quota.is_quota_exceeded(0.5)
    wait = quota.throttle_time(0.5)
    assert wait == pytest.approx(4.5)  # 5000 bytes need 5 s from the sample's start
    assert not quota.is_quota_exceeded(0.5 + wait) and quota.throttle_time(0.5 + wait) == 0


@pytest.mark.parametrize(("rate", "chunk"), [(2 * MB, MB), (2 * MB, 64 << 10), (500_000, 100_000), (10 * MB, MB)])
def test_the_achieved_rate_converges_to_the_configured_one(rate: int, chunk: int) -> None:
    """A sender on a fake clock that sends ``chunk`` whenever the quota is not exceeded, polling
    every 10 ms (as a follower's fetches would): over a minute it sends at the configured rate."""
    quota = _quota(rate)
    now, sent, step = 0.0, 0, 0.01
    sent_at_10s = 0
    while now < 60.0:
        if not quota.is_quota_exceeded(now):
            quota.record(chunk, now)
            sent += chunk
        if sent_at_10s == 0 and now >= 10.0:
            sent_at_10s = sent
        now += step
    overall, steady = sent / 60.0, (sent - sent_at_10s) / 50.0
    assert overall == pytest.approx(rate, rel=0.1), (overall, rate)
    assert steady == pytest.approx(rate, rel=0.05), (steady, rate)


# -- leader side: the Fetch handler -------------------------------------------------------------


class _Leader:
    """The Fetch handler on broker 1, leader of ``partition``, with configs a test changes."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self.topic_config: dict[str, Any] = {LEADER_REPLICAS: "*"}
        self.broker_config = broker_defaults() | {"leader.replication.throttled.rate": 1}
        self.quotas = ReplicationQuotas(1, self.broker_config, lambda _topic: self.topic_config)

    def fetch(self, replica_id: int, fetch_offset: int = 0) -> Any:
        body = {"cluster_id": None, "replica_id": replica_id, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                "topics": [{"topic": TOPIC, "partitions": [{
                    "partition": 0, "current_leader_epoch": -1, "fetch_offset": fetch_offset,
                    "last_fetched_epoch": -1, "log_start_offset": 0, "partition_max_bytes": 1 << 20}]}],
                "forgotten_topics_data": [], "rack_id": ""}
        frame, offset = encoded(ApiKey.FETCH, 12, body)
        request = codec.decode_request(ApiKey.FETCH, 12, memoryview(frame), offset)
        replicas = FakeReplicaManager(self.partition)
        replicas.quotas = self.quotas
        broker = SimpleNamespace(config={"fetch.max.bytes": 50 << 20}, replica_manager=replicas)
        ctx = RequestContext(ApiKey.FETCH, 12, 1, "test", "127.0.0.1:1", broker, 0.0)  # type: ignore[arg-type]
        answer = handle_fetch(ctx, request)
        return codec.decode_response(ApiKey.FETCH, 12, b"".join(bytes(b) for b in answer)).responses[0].partitions[0]

    @property
    def recorded(self) -> float:
        """Bytes recorded in the leader quota so far."""
        return sum(sample[2] for sample in self.quotas.leader.rate._samples)


def test_leader_holds_back_an_out_of_sync_follower_while_the_quota_is_exceeded(make_partition) -> None:
    leader = _Leader(make_partition(isr=(1, 3)))
    leader.partition.append_records_to_leader(records(5), 1, 0)
    first = leader.fetch(2)
    assert first.records and leader.recorded == len(first.records)  # nothing was recorded before it
    held = leader.fetch(2)
    assert not held.records and (held.error_code, held.high_watermark, held.log_start_offset) == (0, 0, 0)
    assert leader.fetch(3).records  # in the ISR: never held back
    leader.topic_config[LEADER_REPLICAS] = "0:3"
    assert leader.fetch(2).records  # not a replica this broker throttles
    leader.topic_config[LEADER_REPLICAS] = "*"
    assert not leader.fetch(2).records
    assert leader.fetch(2, fetch_offset=99).error_code == ErrorCode.offset_out_of_range  # offsets still checked
    leader.broker_config["leader.replication.throttled.rate"] = INT64_MAX
    assert leader.fetch(2).records  # the throttle removed: at once


def test_leader_records_the_bytes_of_throttled_partitions_in_sync_or_not(make_partition) -> None:
    leader = _Leader(make_partition(isr=(1, 2, 3)))
    leader.partition.append_records_to_leader(records(5), 1, 0)
    leader.topic_config = {}
    leader.fetch(2)
    assert leader.recorded == 0  # not throttled: not counted
    leader.topic_config = {LEADER_REPLICAS: "0:1"}
    sizes = [len(leader.fetch(replica).records) for replica in (2, 3)]
    assert leader.recorded == sum(sizes) > 0  # in sync: counted, never held back


# -- follower side: the fetcher's request -------------------------------------------------------


def _fetcher(follower: Partition, quota: ReplicationQuotaManager) -> ReplicaFetcher:
    fetcher = ReplicaFetcher(follower.broker_id, 1, None, FetcherSettings(broker_defaults()), quota)  # type: ignore[arg-type]
    fetcher.partitions[(TOPIC, 0)] = FetchState(follower, follower.leader_epoch)
    return fetcher


def test_follower_leaves_out_throttled_partitions_that_are_behind_while_the_quota_is_exceeded(
        make_partition) -> None:
    follower = make_partition(broker_id=2)
    quota = _quota(1000, {FOLLOWER_REPLICAS: "0:2"}, side="follower", broker_id=2)
    fetcher = _fetcher(follower, quota)
    assert fetcher._ready()[0]  # nothing recorded yet
    quota.record(10_000, now=time.monotonic())
    ready, wait_s = fetcher._ready()
    assert ready == [] and 0.01 <= wait_s <= 1.0  # waits, at most one quota window: no spin
    fetcher.partitions[(TOPIC, 0)].lag = 0  # caught up by its last answer: in sync, never throttled
    assert fetcher._ready()[0]
    fetcher.partitions[(TOPIC, 0)].lag = 5
    quota.config["follower.replication.throttled.rate"] = INT64_MAX  # type: ignore[index]
    assert fetcher._ready()[0]  # the throttle removed: taken at once
