"""Fetch (key 1), versions 4-12, with long polls and a zero-copy response.

v4: isolation level, last_stable_offset, aborted transactions. v5: log_start_offset.
v7: fetch sessions (KIP-227) — answered sessionless: session id 0, every request a full fetch;
a request naming a session gets FETCH_SESSION_ID_NOT_FOUND. v9: current_leader_epoch checks
(FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). v11: rack id (no preferred read replica: -1).
v12: flexible; diverging-epoch / current-leader tagged fields not sent yet.

Records are whole batches read from segment files, sent as read, at most ``max_bytes`` in all
and never more than the broker's ``fetch.max.bytes`` (KafkaApis caps the request's the same
way; the first batch goes out whole even if larger, KIP-74). When fewer than ``min_bytes``
are available, the request parks until an append or high-watermark move wakes it, or
``max_wait_ms`` passes — woken at once, so produce→consume latency is not a poll interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster.handlers import Body, handles
from cluster.log.partition_log import OffsetOutOfRangeError
from cluster.network.request import RequestContext
from cluster.replication.partition import Partition
from pykafka_ops.protocol import fastpath
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.protocol.fastpath import FetchPartitionResult

READ_COMMITTED = 1


@handles(ApiKey.FETCH, versions=fastpath.FETCH_VERSIONS)
def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    """Read every requested partition; park when there is not yet ``min_bytes`` of data."""
    if getattr(request, "session_id", 0) != 0:
        return fastpath.encode_fetch_response(ctx.api_version, [], error_code=ErrorCode.fetch_session_id_not_found)
    topics, size, partitions = _read_all(ctx, request)
    max_wait_s = request.max_wait.total_seconds()
    if size >= request.min_bytes or max_wait_s <= 0 or not partitions:
        return fastpath.encode_fetch_response(ctx.api_version, topics)
    return _long_poll(ctx, request, partitions, ctx.received_at + max_wait_s)


async def _long_poll(ctx: RequestContext, request: Any, partitions: list[Partition], deadline: float) -> Body:
    loop = asyncio.get_running_loop()
    while True:
        waiter: asyncio.Future[None] = loop.create_future()
        for partition in partitions:
            partition.add_waiter(waiter)
        try:
            await asyncio.wait_for(waiter, max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            pass
        finally:
            for partition in partitions:
                partition.remove_waiter(waiter)
        topics, size, partitions = _read_all(ctx, request)
        if size >= request.min_bytes or loop.time() >= deadline or not partitions:
            return fastpath.encode_fetch_response(ctx.api_version, topics)


def _read_all(ctx: RequestContext, request: Any) -> tuple[list[Any], int, list[Partition]]:
    """(response topics, record bytes, partitions to watch) — the latter empty after an error."""
    read_committed = request.isolation_level == READ_COMMITTED
    remaining = min(request.max_bytes, ctx.broker.config["fetch.max.bytes"])
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
            else:
                result = _read_partition(partition, p, min(p.partition_max_bytes, remaining), total == 0,
                                         read_committed)
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
    max_offset = log.high_watermark  # the LSO once transactions land; equal to it without them
    try:
        data = log.read(p.fetch_offset, max_bytes, max_offset, min_one_batch=first) if max_bytes > 0 or first else b""
    except OffsetOutOfRangeError:
        return _error(p.partition, ErrorCode.offset_out_of_range, log.high_watermark, log.log_start_offset)
    return FetchPartitionResult(p.partition, ErrorCode.none, log.high_watermark, max_offset, log.log_start_offset,
                                [] if read_committed else None, [data] if data else [], len(data))


def _error(index: int, code: ErrorCode, high_watermark: int = -1, log_start_offset: int = -1) -> FetchPartitionResult:
    return FetchPartitionResult(index, code, high_watermark, -1, log_start_offset, None, [], 0)
