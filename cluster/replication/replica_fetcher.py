"""Follower replication (Kafka's ``ReplicaFetcherManager`` and ``ReplicaFetcherThread``).

A broker that follows partitions runs one :class:`ReplicaFetcher` per source broker (the leader
of those partitions; Kafka's ``num.replica.fetchers`` = 1), an asyncio task on the node's loop.
Each round it sends one ordinary Fetch (v12) with its broker id as ``replica_id`` and, per
partition, the log end offset as ``fetch_offset``, the latest epoch of its leader-epoch cache
as ``last_fetched_epoch`` and the leader epoch it knows as ``current_leader_epoch``; the leader
parks the request up to ``replica.fetch.wait.max.ms`` until something is appended. The answer is
processed partition by partition (``follower_sync.process_partition``): records appended as the
leader wrote them, the high watermark and log start offset taken from the leader, truncation on
a diverging epoch. Partitions that fail are held back ``replica.fetch.backoff.ms`` (Kafka's
delayed partitions) until the next metadata change moves them (``add_partitions``).

Replication throttle (KIP-73, Kafka's ``RemoteLeaderEndPoint.shouldFollowerThrottle``): while the
follower quota (``replication_quota``) is exceeded, a partition in this broker's
``follower.replication.throttled.replicas`` that is not in sync (its last answer left it behind the
leader's high watermark, or it has had none: Kafka's ``PartitionFetchState.isReplicaInSync``) is
left out of the request; the records received for throttled partitions are recorded. When every
partition is left out, the fetcher waits until the measured rate is back under the quota (at most
one quota window, so that a removed throttle is seen within it), never spinning.

Concurrency: everything runs on the node's event loop. A fetch's answer is processed without an
await, so it never interleaves with a metadata application that moves the partition; answers for
partitions that left the fetcher, or whose leader epoch changed while the fetch was out, are
dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cluster.network.node_channel import (
    NodeChannel,
    NodeUnreachableError,
)
from cluster.replication.follower_sync import process_partition
from cluster.replication.partition import Partition
from cluster.replication.replication_quota import ReplicationQuotaManager
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey

log = logging.getLogger(__name__)

#: The Fetch version followers send: v12 has ``last_fetched_epoch`` and ``diverging_epoch``
#: (KIP-320/KIP-595) and names topics (v13 switches to topic ids).
REPLICA_FETCH_VERSION = 12

PartitionKey = tuple[str, int]
#: Shortest wait of a fetcher whose partitions are all held back by the quota, in seconds.
MIN_THROTTLE_WAIT_S = 0.01


class FetchState:
    """A partition this fetcher replicates (Kafka's ``PartitionFetchState``)."""

    __slots__ = ("delayed_until", "lag", "leader_epoch", "partition")

    def __init__(self, partition: Partition, leader_epoch: int) -> None:
        self.partition = partition
        self.leader_epoch = leader_epoch
        self.delayed_until = 0.0
        """Monotonic time before which the partition is not fetched (after an error)."""
        self.lag: int | None = None
        """The leader's high watermark minus this log's end after the last answer (None: no answer yet)."""

    @property
    def in_sync(self) -> bool:
        """Caught up by the last answer (Kafka's ``PartitionFetchState.isReplicaInSync``)."""
        return self.lag is not None and self.lag <= 0


class FetcherSettings:
    """The ``replica.fetch.*`` settings of this broker."""

    __slots__ = ("backoff_s", "max_bytes", "min_bytes", "request_timeout_s", "response_max_bytes", "wait_max_ms")

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.max_bytes = config["replica.fetch.max.bytes"]
        self.min_bytes = config["replica.fetch.min.bytes"]
        self.wait_max_ms = config["replica.fetch.wait.max.ms"]
        self.response_max_bytes = config["replica.fetch.response.max.bytes"]
        self.backoff_s = config["replica.fetch.backoff.ms"] / 1000
        self.request_timeout_s = max(config["replica.socket.timeout.ms"], self.wait_max_ms) / 1000


class ReplicaFetcher:
    """Fetches every partition this broker follows from one source broker (see module docstring)."""

    def __init__(self, broker_id: int, source_id: int, channel: NodeChannel, settings: FetcherSettings,
                 quota: ReplicationQuotaManager | None = None) -> None:
        self.broker_id = broker_id
        self.source_id = source_id
        self.channel = channel
        self.settings = settings
        self.quota = quota
        """The follower replication quota (None: never throttled)."""
        self.partitions: dict[PartitionKey, FetchState] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, partition: Partition) -> None:
        """Fetch ``partition`` from this source in its current leader epoch (again at once if
        it was held back)."""
        key = (partition.topic, partition.index)
        state = self.partitions.get(key)
        if state is None or state.leader_epoch != partition.leader_epoch or state.partition is not partition:
            self.partitions[key] = FetchState(partition, partition.leader_epoch)
            self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"replica-fetcher-{self.source_id}")

    def remove(self, key: PartitionKey) -> None:
        """Stop fetching ``key`` (answers already on their way are dropped)."""
        if self.partitions.pop(key, None) is not None:
            self._changed.set()

    async def _run(self) -> None:
        while self.partitions:
            ready, wait_s = self._ready()
            if not ready:
                await self._wait_for_change(wait_s)
                continue
            try:
                answer, _ = await self.channel.send(self.source_id, ApiKey.FETCH, REPLICA_FETCH_VERSION,
                                                    self._request(ready), self.settings.request_timeout_s)
            except NodeUnreachableError as exc:
                log.info("replica fetcher of broker %d: fetch from broker %d failed (%s); retrying in %g s",
                         self.broker_id, self.source_id, exc, self.settings.backoff_s)
                self._hold_back(ready)
                continue
            except Exception:  # the fetcher must keep following
                log.exception("replica fetcher of broker %d: fetch from broker %d failed", self.broker_id,
                              self.source_id)
                self._hold_back(ready)
                continue
            if answer.error_code != ErrorCode.none:
                log.info("replica fetcher of broker %d: broker %d answered %s", self.broker_id, self.source_id,
                         ErrorCode(answer.error_code).name)
                self._hold_back(ready)
                continue
            self._process(answer, ready)

    def _ready(self) -> tuple[list[FetchState], float]:
        """(the partitions to fetch now, seconds until one of the others may be fetched): those
        held back after an error, and those the quota holds back (see module docstring)."""
        now = time.monotonic()
        quota = self._exceeded_quota(now)
        throttle_wait_s = math.inf if quota is None else \
            min(max(quota.throttle_time(now), MIN_THROTTLE_WAIT_S), quota.rate.window_s)
        ready: list[FetchState] = []
        wait_s = math.inf
        for state in self.partitions.values():
            if state.delayed_until > now:
                wait_s = min(wait_s, state.delayed_until - now)
            elif quota is not None and not state.in_sync and quota.is_throttled(state.partition.topic,
                                                                                 state.partition.index):
                wait_s = min(wait_s, throttle_wait_s)
            else:
                ready.append(state)
        return ready, wait_s

    def _exceeded_quota(self, now: float) -> ReplicationQuotaManager | None:
        """The follower quota if it is set and exceeded now, else None."""
        quota = self.quota
        return quota if quota is not None and quota.limited() and quota.is_quota_exceeded(now) else None

    async def _wait_for_change(self, timeout_s: float) -> None:
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), max(timeout_s, 0.001))
        except TimeoutError:
            pass

    def _hold_back(self, states: Iterable[FetchState]) -> None:
        until = time.monotonic() + self.settings.backoff_s
        for state in states:
            state.delayed_until = until

    def _request(self, states: list[FetchState]) -> dict[str, Any]:
        topics: dict[str, list[dict[str, Any]]] = {}
        for state in states:
            plog = state.partition.log
            latest = plog.leader_epochs.latest_epoch
            topics.setdefault(state.partition.topic, []).append({
                "partition": state.partition.index, "current_leader_epoch": state.leader_epoch,
                "fetch_offset": plog.log_end_offset, "last_fetched_epoch": -1 if latest is None else latest,
                "log_start_offset": plog.log_start_offset, "partition_max_bytes": self.settings.max_bytes,
                "replica_directory_id": None,
            })
        return {"cluster_id": None, "replica_id": self.broker_id,
                "replica_state": {"replica_id": -1, "replica_epoch": -1},
                "max_wait": self.settings.wait_max_ms, "min_bytes": self.settings.min_bytes,
                "max_bytes": self.settings.response_max_bytes, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
                "topics": [{"topic": topic, "topic_id": None, "partitions": partitions}
                           for topic, partitions in topics.items()]}

    def _process(self, answer: Any, sent: list[FetchState]) -> None:
        """Apply the answer (no await: see the module's concurrency rule)."""
        sent_states = {(s.partition.topic, s.partition.index): s for s in sent}
        now_ms = int(time.time() * 1000)
        quota = self.quota if self.quota is not None and self.quota.limited() else None
        failed: list[FetchState] = []
        for topic in answer.responses:
            for data in topic.partitions:
                key = (topic.topic, data.partition_index)
                state = self.partitions.get(key)
                if state is None or sent_states.get(key) is not state or state.partition.deleted:
                    continue  # moved, re-added in a new epoch or removed while the fetch was out
                if not process_partition(state.partition, data, now_ms, self.source_id):
                    failed.append(state)
                    continue
                if data.error_code == ErrorCode.none:
                    state.lag = max(data.high_watermark - state.partition.log.log_end_offset, 0)
                if quota is not None and data.records and quota.is_throttled(*key):
                    quota.record(len(data.records), time.monotonic())
        self._hold_back(failed)

    def close(self) -> None:
        """Stop fetching (the node is stopping, or nothing is left to fetch from this source)."""
        self.partitions.clear()
        if self._task is not None:
            self._task.cancel()


class ReplicaFetcherManager:
    """The fetchers of this broker, one per source broker (Kafka's ``ReplicaFetcherManager``)."""

    def __init__(self, broker_id: int, addresses: Callable[[int], tuple[str, int] | None],
                 config: Mapping[str, Any], quota: ReplicationQuotaManager | None = None) -> None:
        self.broker_id = broker_id
        self.settings = FetcherSettings(config)
        self.quota = quota
        self.channel = NodeChannel(broker_id, addresses)
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._source_of: dict[PartitionKey, int] = {}

    def follow(self, partition: Partition) -> None:
        """Replicate ``partition`` from its leader (a follower's ``makeFollower``); it leaves the
        fetcher of its previous leader."""
        key = (partition.topic, partition.index)
        leader = partition.leader
        previous = self._source_of.get(key)
        if previous is not None and previous != leader:
            self._remove_from(previous, key)
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            fetcher = self.fetchers[leader] = ReplicaFetcher(self.broker_id, leader, self.channel, self.settings,
                                                             self.quota)
        self._source_of[key] = leader
        fetcher.add(partition)

    def stop_following(self, key: PartitionKey) -> None:
        """No longer replicate ``key`` (this broker leads it, it has no leader, or it is gone)."""
        source = self._source_of.pop(key, None)
        if source is not None:
            self._remove_from(source, key)

    def _remove_from(self, source: int, key: PartitionKey) -> None:
        fetcher = self.fetchers.get(source)
        if fetcher is None:
            return
        fetcher.remove(key)
        if not fetcher.partitions:
            fetcher.close()
            del self.fetchers[source]

    def shutdown(self) -> None:
        """Stop every fetcher and close their connections."""
        for fetcher in self.fetchers.values():
            fetcher.close()
        self.fetchers.clear()
        self._source_of.clear()
        self.channel.close()

