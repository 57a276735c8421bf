"""Produce (key 0), versions 3-10, on the zero-copy path.

v3: transactional id, magic-2 batches only. v5: + log_start_offset in the answer. v7: zstd.
v8: record_errors / error_message: a batch refused for some of its records lists them (KIP-467,
``RecordValidationError.record_errors``); nothing of that batch is appended.
v9: flexible. v10: a NOT_LEADER_OR_FOLLOWER partition names the leader this broker knows (tagged
``current_leader``, and that broker in ``node_endpoints``: KIP-951), so clients move without a
Metadata round trip.
Transactional batches need the request's transactional id: without one, every partition answers
TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing is appended (Kafka's
``KafkaApis.handleProduceRequest``, which checks the first batch of each partition's records).
With an authorizer, as Kafka's: the transactional id needs WRITE (else every partition answers
TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and each topic WRITE (else TOPIC_AUTHORIZATION_FAILED for its
partitions); without one nothing is looked up.

Each partition's record set stays a view of the request frame: validated, offsets patched in
place, written with one ``os.write``. Partitions are independent: an unexpected failure on one
is logged and answered UNKNOWN_SERVER_ERROR for that partition only, as Kafka's
``ReplicaManager.appendToLocalLog`` does, so a retried request never rewrites the others.
acks=0 → no response (the connection is closed when a partition failed, as Kafka does);
acks=-1 → answered once the high watermark covers every appended batch (Kafka's DelayedProduce,
``cluster/replication/delayed_produce.py``): at once when it already does (always while the ISR is
the leader alone: no extra await or allocation), else the handler returns a coroutine that waits
for the followers, answering REQUEST_TIMED_OUT after the request's ``timeout_ms``,
NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below ``min.insync.replicas`` meanwhile and
NOT_LEADER_OR_FOLLOWER if this broker lost the leadership.

Concurrency: runs on the node's event loop; every append and the decision to wait happen in one
synchronous call, the wait itself is parked on the partitions (no await between reading and
writing partition state).
"""

from __future__ import annotations

import asyncio
import logging
import time

from cluster.controller.metadata_image import INTERNAL_TOPICS
from cluster.handlers import Body, CloseConnection, HandlerResult, handles
from cluster.log.partition_log import LogAppendInfo
from cluster.log.producer_state import ProducerStateError
from cluster.log.validator import RecordValidationError
from cluster.network.request import RequestContext
from cluster.replication.delayed_produce import (
    DelayedProduce,
    PendingAck,
    wait_for_acks,
)
from cluster.replication.partition import NotLeaderError, Partition, PartitionError
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol import fastpath
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.protocol.fastpath import NodeEndpoint, ProducePartitionResult
from pykafka_ops.records.batch import Compression, CorruptRecordError, read_batch_header

log = logging.getLogger(__name__)
#: The first Produce version that may carry zstd batches (KIP-110).
ZSTD_MIN_VERSION = 7
#: The byte of a batch header holding the transactional bit, and the bit.
TRANSACTIONAL_ATTRIBUTE_BYTE, TRANSACTIONAL_FLAG = 22, 0x10


@handles(ApiKey.PRODUCE, versions=fastpath.PRODUCE_VERSIONS, raw=True)
def handle_produce(ctx: RequestContext, frame: memoryview, body_offset: int) -> HandlerResult:
    """Append every partition's records and answer per partition."""
    request = fastpath.parse_produce_request(frame, body_offset, ctx.api_version)
    produce_clients = getattr(ctx.broker, "produce_clients", None)  # test doubles of the broker have none
    if produce_clients is not None:  # GET /v1/produce-clients of the admin endpoint
        produce_clients.record_request(ctx.client_id, request)
    if request.transactional_id is None and _has_transactional_records(request.topics):
        return _refuse_all(ctx, request, ErrorCode.transactional_id_authorization_failed,
                           "a transactional batch needs the producer's transactional id")
    denied = _unauthorized_topics(ctx, request) if ctx.authorizing else None
    if denied is True:
        return _refuse_all(ctx, request, ErrorCode.transactional_id_authorization_failed,
                           "Transactional id authorization failed.")
    now_ms = int(time.time() * 1000)
    topics = []
    for topic in request.topics:
        if denied and topic.name in denied:
            results = [_failed(p.index, ErrorCode.topic_authorization_failed) for p in topic.partitions]
        else:
            results = [_append(ctx, topic.name, p.index, p.records, request.acks, now_ms) for p in topic.partitions]
        topics.append((topic.name, results))
    if request.acks == 0:
        failed = [r for _name, results in topics for r in results if r.error_code]
        if failed:  # as Kafka: with no response to carry the error, closing tells the client
            raise CloseConnection(f"acks=0 produce failed ({failed[0].error_message or failed[0].error_code})")
        return None
    if request.acks == -1:
        delayed = _delayed_produce(topics)
        if delayed is not None:
            return _answer_when_replicated(ctx.api_version, topics, delayed, request.timeout_ms)
    return [fastpath.encode_produce_response(ctx.api_version, topics, node_endpoints=_leader_endpoints(ctx, topics))]


def _unauthorized_topics(ctx: RequestContext, request: fastpath.ProduceRequest) -> set[str] | bool:
    """Kafka's ``KafkaApis.handleProduceRequest`` checks: True when the transactional id lacks WRITE
    (every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), else the topics lacking WRITE
    (their partitions TOPIC_AUTHORIZATION_FAILED)."""
    if request.transactional_id is not None and not ctx.authorized(
            AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        return True
    return {t.name for t in request.topics if not ctx.authorized(AclOperation.WRITE, ResourceType.TOPIC, t.name)}


def _has_transactional_records(topics: list[fastpath.ProduceTopic]) -> bool:
    """Kafka's ``RequestUtils.hasTransactionalRecords``: a partition's first batch has the
    transactional bit (attributes bit 4: the low byte of the i16 at offset 21)."""
    return any(p.records is not None and len(p.records) > TRANSACTIONAL_ATTRIBUTE_BYTE
               and p.records[TRANSACTIONAL_ATTRIBUTE_BYTE] & TRANSACTIONAL_FLAG
               for topic in topics for p in topic.partitions)


def _refuse_all(ctx: RequestContext, request: fastpath.ProduceRequest, error: ErrorCode, message: str) -> Body:
    """Every partition of the request answers ``error`` (Kafka's ``sendErrorResponseMaybeThrottle``);
    with acks=0 the connection is closed instead."""
    if request.acks == 0:
        raise CloseConnection(f"acks=0 produce refused: {message}")
    topics = [(topic.name, [_failed(p.index, error, message) for p in topic.partitions]) for topic in request.topics]
    return [fastpath.encode_produce_response(ctx.api_version, topics)]


def _leader_endpoints(ctx: RequestContext, topics: list[tuple[str, list]]) -> list[NodeEndpoint]:
    """The brokers named by the answer's current-leader fields (Produce v10, KIP-951)."""
    if ctx.api_version < fastpath.PRODUCE_CURRENT_LEADER_VERSION:
        return []
    leaders = {r.current_leader[0] for _name, results in topics for r in results
               if type(r) is ProducePartitionResult and r.current_leader is not None}
    if not leaders:
        return []
    brokers = ctx.broker.image.brokers
    return [NodeEndpoint(b, brokers[b].host, brokers[b].port, brokers[b].rack) for b in sorted(leaders) if b in brokers]


def _delayed_produce(topics: list[tuple[str, list]]) -> DelayedProduce | None:
    """A DelayedProduce over the PendingAck entries of ``topics``, or None if there are none."""
    pending = None
    for _name, results in topics:
        for result in results:
            if type(result) is PendingAck:
                if pending is None:
                    pending = []
                pending.append(result)
    if pending is None:
        return None
    delayed = DelayedProduce(pending, asyncio.get_running_loop().create_future())
    delayed.watch()
    return delayed


async def _answer_when_replicated(version: int, topics: list[tuple[str, list]], delayed: DelayedProduce,
                                  timeout_ms: int) -> Body:
    await wait_for_acks(delayed, timeout_ms)
    answered = [(name, [r.result if type(r) is PendingAck else r for r in results]) for name, results in topics]
    return [fastpath.encode_produce_response(version, answered)]


def _append(ctx: RequestContext, topic: str, index: int, records: memoryview | None, acks: int,
            now_ms: int) -> ProducePartitionResult | PendingAck:
    if acks not in (0, 1, -1):
        return _failed(index, ErrorCode.invalid_required_acks, f"acks must be 0, 1 or -1, got {acks}")
    if topic in INTERNAL_TOPICS:  # only coordinators append there, as Kafka's ReplicaManager
        return _failed(index, ErrorCode.invalid_topic_exception, f"cannot append to internal topic {topic}")
    replicas = ctx.broker.replica_manager
    partition = replicas.partition(topic, index)
    if partition is None:
        error = replicas.absent_error(topic, index)
        if error == ErrorCode.not_leader_or_follower:
            return _not_leader(ctx, topic, index, f"broker {ctx.broker.node_id} holds no replica of {topic}-{index}")
        return _failed(index, error)
    if records is None:
        return _failed(index, ErrorCode.invalid_record, "null record set")
    refused = _request_rules(ctx.api_version, records)
    if refused is not None:
        return _failed(index, *refused)
    try:
        info = partition.append_records_to_leader(records, acks, now_ms)
    except NotLeaderError as exc:
        return _not_leader(ctx, topic, index, str(exc))
    except RecordValidationError as exc:  # KIP-467: the records at fault, if any, in record_errors
        return ProducePartitionResult(index, exc.error_code, -1, -1, -1, str(exc), record_errors=exc.record_errors)
    except (ProducerStateError, PartitionError) as exc:
        return _failed(index, exc.error_code, str(exc))
    except OSError as exc:  # disk full, I/O error: Kafka takes the log dir offline
        return _failed(index, ErrorCode.kafka_storage_error, f"cannot write the log: {exc.strerror or exc}")
    except Exception:  # our bug: this partition fails, the request's other partitions stand
        log.exception("error appending to %s-%d", topic, index)
        return _failed(index, ErrorCode.unknown_server_error, "unexpected error; see the broker log")
    if acks == -1 and info.last_offset >= partition.log.high_watermark:  # followers have yet to fetch it
        return PendingAck(partition, info.last_offset + 1, partition.leader_epoch,
                          _succeeded(partition, index, info))
    return _succeeded(partition, index, info)


def _request_rules(version: int, records: memoryview) -> tuple[ErrorCode, str] | None:
    """Kafka's ``ProduceRequest.validateRecords``: from v3 a partition carries exactly one magic-2
    batch, and zstd needs v7 (KIP-110). What the batch itself breaks is the log validator's."""
    if not records:
        return ErrorCode.invalid_record, f"Produce v{version} needs one record batch per partition"
    try:
        header = read_batch_header(records, 0)
        compression = header.compression
    except CorruptRecordError:
        return None
    if header.size < len(records):
        return ErrorCode.invalid_record, f"Produce v{version} allows exactly one record batch per partition"
    if compression == Compression.ZSTD and version < ZSTD_MIN_VERSION:
        return ErrorCode.unsupported_compression_type, f"zstd needs Produce v{ZSTD_MIN_VERSION}, got v{version}"
    return None


def _succeeded(partition: Partition, index: int, info: LogAppendInfo) -> ProducePartitionResult:
    return ProducePartitionResult(index, ErrorCode.none, info.first_offset, info.log_append_time_ms,
                                  partition.log.log_start_offset)


def _not_leader(ctx: RequestContext, topic: str, index: int, message: str) -> ProducePartitionResult:
    leader = ctx.broker.replica_manager.current_leader(topic, index)
    if leader is not None and leader[0] < 0:
        leader = None
    return ProducePartitionResult(index, ErrorCode.not_leader_or_follower, -1, -1, -1, message, leader)


def _failed(index: int, code: ErrorCode, message: str | None = None) -> ProducePartitionResult:
    return ProducePartitionResult(index, code, -1, -1, -1, message)

