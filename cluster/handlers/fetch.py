"""Fetch (key 1), versions 4-12, with long polls and a zero-copy response.

v4: isolation level, last_stable_offset, aborted transactions: a read_committed fetch
(isolation_level 1) reads below the last stable offset and lists the aborted transactions of the
range it returns from the segments' ``.txnindex`` (Kafka's ``collectAbortedTransactions``, KIP-98);
a parked one wakes when the high watermark (and with it the LSO) moves. v5: log_start_offset.
v7: fetch sessions (KIP-227) — answered sessionless: session id 0, every request a full fetch;
a request naming a session gets FETCH_SESSION_ID_NOT_FOUND. v9: current_leader_epoch checks
(FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). v11: rack id (no preferred read replica: -1).
v12: flexible; last_fetched_epoch / diverging_epoch for followers; NOT_LEADER_OR_FOLLOWER and
FENCED_LEADER_EPOCH name the leader this broker knows (tagged ``current_leader``).

Records are whole batches read from segment files, sent as read, at most ``max_bytes`` in all
and never more than the broker's ``fetch.max.bytes`` (KafkaApis caps the request's the same
way; the first batch goes out whole even if larger, KIP-74). When fewer than ``min_bytes``
are available, the request parks until an append or high-watermark move wakes it, or
``max_wait_ms`` passes — woken at once, so produce→consume latency is not a poll interval.

A Fetch with ``replica_id`` ≥ 0 (``replica_state.replica_id`` from v15) comes from a follower
(Kafka's replica fetch, ``Partition.fetchRecords``): served by the leader only, to a broker that
is one of the partition's followers (else NOT_LEADER_OR_FOLLOWER, or UNKNOWN_LEADER_EPOCH when the
request names an epoch), reading up to the log end offset rather than the high watermark. From
v12 the follower's ``last_fetched_epoch`` is checked against the leader-epoch cache: a diverging
log is answered with ``diverging_epoch`` {epoch, end_offset} and no records (and at once, without
parking). Otherwise the fetch offset is recorded as the follower's log end offset
(``Partition.update_follower_fetch``, on the first read only, as Kafka does not update from its
purgatory), which may advance the high watermark. A follower's long poll is woken by appends.

Replication throttle (KIP-73, Kafka's ``ReplicaManager.shouldLeaderThrottle``): when this broker's
``leader.replication.throttled.rate`` is set, a partition in its topic's
``leader.replication.throttled.replicas`` for this broker is answered without records (its other
fields as usual; the fetch offset is still checked) while the leader quota is exceeded and the
follower is not in the ISR — an in-sync follower is never throttled, so acks=all does not stall. A
held-back partition adds nothing to ``min_bytes``, so the follower's request parks as for an idle
partition (Kafka's ``DelayedFetch``). The record bytes answered for throttled partitions, in sync
or not, are recorded in the quota when the answer is sent. Without a rate nothing is computed.

With an authorizer (Kafka's ``handleFetchRequest``): a consumer needs READ on each topic, a follower
CLUSTER_ACTION on the cluster; partitions refused answer TOPIC_AUTHORIZATION_FAILED at once.

Concurrency: runs on the node's event loop; each read of all partitions is synchronous (no await
between reading and writing partition state); the long poll awaits only between reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from cluster.handlers import Body, handles
from cluster.log.log_transactions import fetched_upper_bound
from cluster.log.partition_log import OffsetOutOfRangeError
from cluster.network.request import RequestContext
from cluster.replication.partition import Partition
from cluster.replication.replication_quota import ReplicationQuotaManager
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol import codec, fastpath
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.protocol.fastpath import AbortedTransaction, FetchPartitionResult

READ_COMMITTED = 1
CONSUMER_REPLICA_ID = -1


class _FollowerFetch:
    """A replica's fetch: who, when, the diverging epochs found by partition, and its throttle."""

    __slots__ = ("_exceeded", "diverging", "now_ms", "quota", "replica_id", "throttled_bytes", "update")

    def __init__(self, replica_id: int, quota: ReplicationQuotaManager) -> None:
        self.replica_id = replica_id
        self.now_ms = int(time.time() * 1000)
        self.update = True
        self.diverging: dict[tuple[str, int], tuple[int, int]] = {}
        self.quota = quota if quota.limited() else None
        """The leader replication quota, only while a rate is set."""
        self.throttled_bytes = 0
        """Record bytes of throttled partitions in the latest read of every partition."""
        self._exceeded: bool | None = None

    def new_read(self) -> None:
        """A read of every partition begins (the first, or a long poll's next)."""
        self.throttled_bytes = 0
        self._exceeded = None

    def holds_back(self, partition: Partition) -> bool:
        """A throttled partition gets no records: the follower is not in the ISR and the quota is
        exceeded (checked once per read: nothing is recorded until the answer is sent)."""
        if self.replica_id in partition.isr or self.quota is None:
            return False
        if self._exceeded is None:
            self._exceeded = self.quota.is_quota_exceeded(time.monotonic())
        return self._exceeded

    def record(self) -> None:
        """Count the throttled bytes of the answer being sent."""
        if self.quota is not None and self.throttled_bytes:
            self.quota.record(self.throttled_bytes, time.monotonic())


def fetch_replica_id(request: Any) -> int:
    """``replica_id`` below v15, ``replica_state.replica_id`` from v15 (KIP-903)."""
    replica_id = getattr(request, "replica_id", CONSUMER_REPLICA_ID)
    if replica_id == CONSUMER_REPLICA_ID:
        state = getattr(request, "replica_state", None)
        if state is not None:
            replica_id = state.replica_id
    return replica_id


@handles(ApiKey.FETCH, versions=fastpath.FETCH_VERSIONS)
def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    """Read every requested partition; park when there is not yet ``min_bytes`` of data."""
    if getattr(request, "session_id", 0) != 0:
        return fastpath.encode_fetch_response(ctx.api_version, [], error_code=ErrorCode.fetch_session_id_not_found)
    replica_id = fetch_replica_id(request)
    follower = _FollowerFetch(replica_id, ctx.broker.replica_manager.quotas.leader) if replica_id >= 0 else None
    if ctx.authorizing:
        follower_denied = follower is not None and not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION)
        denied = frozenset(t.topic for t in request.topics
                           if follower_denied or (follower is None and not ctx.authorized(
                               AclOperation.READ, ResourceType.TOPIC, t.topic)))
        if denied:
            return _answer_with_denied(ctx, request, follower, denied)
    topics, size, partitions = _read_all(ctx, request, follower)
    if follower is not None:
        if follower.diverging:
            return _answer(ctx.api_version, topics, follower)
        follower.update = False
    max_wait_s = request.max_wait.total_seconds()
    if size >= request.min_bytes or max_wait_s <= 0 or not partitions:
        return _answer(ctx.api_version, topics, follower)
    return _long_poll(ctx, request, partitions, ctx.received_at + max_wait_s, follower)


def _answer_with_denied(ctx: RequestContext, request: Any, follower: _FollowerFetch | None,
                        denied: frozenset[str]) -> Any:
    """Kafka's ``KafkaApis.handleFetchRequest`` with unauthorized topics (READ for a consumer,
    CLUSTER_ACTION for a follower): their partitions answer TOPIC_AUTHORIZATION_FAILED at once,
    the others are read as usual (without a long poll)."""
    failed = [(t.topic, [_error(p.partition, ErrorCode.topic_authorization_failed) for p in t.partitions])
              for t in request.topics if t.topic in denied]
    allowed = dataclasses.replace(request, topics=tuple(t for t in request.topics if t.topic not in denied))
    topics, _size, _partitions = _read_all(ctx, allowed, follower)
    return _answer(ctx.api_version, topics + failed, follower)


def _answer(version: int, topics: list[Any], follower: _FollowerFetch | None) -> Body:
    """Encode the answer; a follower's throttled bytes are recorded as it is sent."""
    if follower is not None:
        follower.record()
        if follower.diverging:
            return _encode_with_diverging(version, topics, follower.diverging)
    return fastpath.encode_fetch_response(version, topics)


async def _long_poll(ctx: RequestContext, request: Any, partitions: list[Partition], deadline: float,
                     follower: _FollowerFetch | None = None) -> Body:
    loop = asyncio.get_running_loop()
    is_follower = follower is not None
    while True:
        waiter: asyncio.Future[None] = loop.create_future()
        for partition in partitions:
            partition.add_waiter(waiter, is_follower)
        try:
            await asyncio.wait_for(waiter, max(deadline - loop.time(), 0))
        except TimeoutError:
            pass
        finally:
            for partition in partitions:
                partition.remove_waiter(waiter)
        topics, size, partitions = _read_all(ctx, request, follower)
        if (follower is not None and follower.diverging) or size >= request.min_bytes or loop.time() >= deadline \
                or not partitions:
            return _answer(ctx.api_version, topics, follower)


def _read_all(ctx: RequestContext, request: Any,
              follower: _FollowerFetch | None = None) -> tuple[list[Any], int, list[Partition]]:
    """(response topics, record bytes, partitions to watch) — the latter empty after an error."""
    read_committed = request.isolation_level == READ_COMMITTED
    remaining = min(request.max_bytes, ctx.broker.config["fetch.max.bytes"])
    if follower is not None:
        follower.new_read()
    total = 0
    watched: list[Partition] = []
    failed = False
    topics = []
    for topic in request.topics:
        results = []
        for p in topic.partitions:
            partition = ctx.broker.replica_manager.partition(topic.topic, p.partition)
            if partition is None:
                result = _error(p.partition, ctx.broker.replica_manager.absent_error(topic.topic, p.partition))
            elif follower is not None:
                result = _read_for_follower(partition, p, min(p.partition_max_bytes, remaining), total == 0,
                                            follower)
            else:
                result = _read_partition(partition, p, min(p.partition_max_bytes, remaining), total == 0,
                                         read_committed)
            if result.error_code in _LEADER_MOVED:
                result = _with_current_leader(ctx, topic.topic, result)
            results.append(result)
            total += result.records_size
            remaining = max(remaining - result.records_size, 0)
            if result.error_code:
                failed = True
            elif partition is not None:
                watched.append(partition)
        topics.append((topic.topic, results))
    return topics, total, [] if failed else watched


def _read_partition(partition: Partition, p: Any, max_bytes: int, first: bool,
                    read_committed: bool) -> FetchPartitionResult:
    refusal = partition.leader_error(getattr(p, "current_leader_epoch", -1))
    if refusal is not None:
        return _error(p.partition, refusal)
    log = partition.log
    last_stable = log.last_stable_offset
    max_offset = last_stable if read_committed else log.high_watermark
    try:
        data = log.read(p.fetch_offset, max_bytes, max_offset, min_one_batch=first) if max_bytes > 0 or first else b""
    except OffsetOutOfRangeError:
        return _error(p.partition, ErrorCode.offset_out_of_range, log.high_watermark, log.log_start_offset)
    aborted = None
    if read_committed:
        aborted = [AbortedTransaction(t.producer_id, t.first_offset) for t in
                   log.collect_aborted_transactions(p.fetch_offset, fetched_upper_bound(data, max_offset))] if data else []
    return FetchPartitionResult(p.partition, ErrorCode.none, log.high_watermark, last_stable, log.log_start_offset,
                                aborted, [data] if data else [], len(data))


def _read_for_follower(partition: Partition, p: Any, max_bytes: int, first: bool,
                       follower: _FollowerFetch) -> FetchPartitionResult:
    """A replica's read (Kafka's ``Partition.fetchRecords`` from a follower): to the log end."""
    refusal = partition.follower_fetch_error(follower.replica_id, getattr(p, "current_leader_epoch", -1))
    if refusal is not None:
        return _error(p.partition, refusal)
    log = partition.log
    log_start, log_end = log.log_start_offset, log.log_end_offset
    fetch_offset = p.fetch_offset
    try:
        last_fetched_epoch = getattr(p, "last_fetched_epoch", -1)
        if last_fetched_epoch >= 0:
            diverging = partition.diverging_epoch(last_fetched_epoch, fetch_offset)
            if diverging is not None:
                follower.diverging[(partition.topic, p.partition)] = diverging
                hw = log.high_watermark
                return FetchPartitionResult(p.partition, ErrorCode.none, hw, hw, log_start, None, [], 0)
        quota = follower.quota
        throttled = quota is not None and quota.is_throttled(partition.topic, p.partition)
        # a partition held back reads up to its fetch offset: no records, the offset still checked
        upper = fetch_offset if throttled and follower.holds_back(partition) else log_end
        data = log.read(fetch_offset, max_bytes, upper, min_one_batch=first) if max_bytes > 0 or first else b""
    except OffsetOutOfRangeError:
        return _error(p.partition, ErrorCode.offset_out_of_range, log.high_watermark, log_start)
    if throttled:
        follower.throttled_bytes += len(data)
    if follower.update:
        # before the high watermark is read: the answer then carries the one this fetch moved
        partition.update_follower_fetch(follower.replica_id, fetch_offset, follower.now_ms, log_end,
                                        getattr(p, "log_start_offset", -1))
    hw = log.high_watermark
    return FetchPartitionResult(p.partition, ErrorCode.none, hw, hw, log_start, None, [data] if data else [],
                                len(data))


def _encode_with_diverging(version: int, topics: list[Any],
                           diverging: dict[tuple[str, int], tuple[int, int]]) -> Body:
    """The answer through the generic codec, which writes the ``diverging_epoch`` tagged field
    (rare: once per follower truncation)."""
    no_epoch = (-1, -1)
    responses = []
    for name, results in topics:
        partitions = []
        for r in results:
            epoch, end_offset = diverging.get((name, r.index), no_epoch)
            partitions.append({
                "partition_index": r.index, "error_code": r.error_code, "high_watermark": r.high_watermark,
                "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
                "diverging_epoch": {"epoch": epoch, "end_offset": end_offset},
                "current_leader": dict(zip(("leader_id", "leader_epoch"), r.current_leader or (-1, -1), strict=True)),
                "snapshot_id": {"end_offset": -1, "epoch": -1},
                "aborted_transactions": r.aborted_transactions, "preferred_read_replica": -1,
                "records": b"".join(bytes(b) for b in r.records) if r.records_size else b"",
            })
        responses.append({"topic": name, "partitions": partitions})
    body = {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": 0, "responses": responses}
    return [codec.encode_response_body(ApiKey.FETCH, version, body)]


_LEADER_MOVED = frozenset((ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch))


def _with_current_leader(ctx: RequestContext, topic: str, result: FetchPartitionResult) -> FetchPartitionResult:
    leader = ctx.broker.replica_manager.current_leader(topic, result.index)
    return result if leader is None or leader[0] < 0 else result._replace(current_leader=leader)


def _error(index: int, code: ErrorCode, high_watermark: int = -1, log_start_offset: int = -1) -> FetchPartitionResult:
    return FetchPartitionResult(index, code, high_watermark, -1, log_start_offset, None, [], 0)
