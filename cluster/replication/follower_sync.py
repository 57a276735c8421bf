"""What a follower does with one partition of its leader's Fetch answer (Kafka's
``ReplicaFetcherThread.processPartitionData`` and ``AbstractFetcherThread``'s truncation).

- Records: appended as the leader wrote them (``PartitionLog.append_as_follower``: offsets,
  leader epochs and producer ids unchanged, so the leader-epoch cache and the idempotent
  producers' state are rebuilt here as on the leader and a new leader answers retries with
  the original offsets). Then the follower's high watermark becomes min(leader's, own log end)
  and its log start offset follows the leader's (retention and DeleteRecords reach followers).
- A diverging epoch (KIP-320 / KIP-595 style, Fetch v12+): the follower truncates to the end of
  the epoch both logs share, never to its high watermark (KIP-101), and fetches again; a leader
  epoch the follower does not know makes it truncate to the end of its own older epoch first
  and ask again (Kafka's ``getOffsetTruncationState``).
- OFFSET_OUT_OF_RANGE: a follower below the leader's log start starts over there
  (``truncate_fully_and_start_at``); one above the leader's log end (an empty log reset past it)
  truncates to the leader's high watermark.
- Any other error holds the partition back until the next metadata change or backoff.

Concurrency: called from a replica fetcher on the node's event loop; nothing here awaits.
"""

from __future__ import annotations

import logging
from typing import Any

from cluster.log.partition_log import UnexpectedAppendOffsetError
from cluster.replication.partition import Partition
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)


def process_partition(partition: Partition, data: Any, now_ms: int, source_id: int) -> bool:
    """Apply one partition's part of a Fetch answer; False if it should be held back."""
    error = ErrorCode(data.error_code)
    if error == ErrorCode.offset_out_of_range:
        return _reset_out_of_range(partition, data, now_ms)
    if error != ErrorCode.none:
        if error not in (ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch,
                         ErrorCode.unknown_leader_epoch, ErrorCode.unknown_topic_or_partition):
            log.warning("%s-%d: fetch from broker %d answered %s", partition.topic, partition.index,
                        source_id, error.name)
        return False
    diverging = data.diverging_epoch
    if diverging.epoch >= 0 or diverging.end_offset >= 0:
        truncate_to_diverging_epoch(partition, diverging.epoch, diverging.end_offset)
        return True
    plog = partition.log
    records = data.records
    if records:
        try:
            plog.append_as_follower(memoryview(records), now_ms)
        except UnexpectedAppendOffsetError as exc:  # an answer for an offset already passed
            log.warning("%s-%d: %s", partition.topic, partition.index, exc)
            return False
        except Exception as exc:  # corrupt data must not stop the fetcher
            log.error("%s-%d: cannot append the records fetched from broker %d: %s", partition.topic,
                      partition.index, source_id, exc)
            return False
    plog.high_watermark = min(data.high_watermark, plog.log_end_offset)
    leader_start = min(data.log_start_offset, plog.high_watermark)
    if leader_start > plog.log_start_offset:
        plog.delete_records_before(leader_start)
    return True


def truncate_to_diverging_epoch(partition: Partition, epoch: int, end_offset: int) -> None:
    """Truncate where the leader said this log diverges."""
    plog = partition.log
    log_end = plog.log_end_offset
    local_epoch, local_end = plog.leader_epochs.end_offset_for(epoch, log_end)
    if local_epoch < 0 or local_end < 0:  # nothing known of that epoch here
        target = min(end_offset, log_end)
    elif local_epoch != epoch:  # an older epoch of ours ends there; the leader is asked again
        target = min(local_end, log_end)
    else:
        target = min(end_offset, local_end, log_end)
    target = max(target, plog.log_start_offset)
    if target < log_end:
        log.info("%s-%d: truncating from %d to %d (the leader's epoch %d ends at %d)", partition.topic,
                 partition.index, log_end, target, epoch, end_offset)
        plog.truncate_to(target)


def _reset_out_of_range(partition: Partition, data: Any, now_ms: int) -> bool:
    """Kafka's ``handleOutOfRangeError`` with the leader's offsets from the answer."""
    plog = partition.log
    leader_start, leader_hw = data.log_start_offset, data.high_watermark
    log_end = plog.log_end_offset
    if 0 <= leader_start and log_end < leader_start:
        log.info("%s-%d: log end %d is below the leader's log start %d; starting over there",
                 partition.topic, partition.index, log_end, leader_start)
        plog.truncate_fully_and_start_at(leader_start, now_ms)
        return True
    if 0 <= leader_hw < log_end:
        log.warning("%s-%d: log end %d is above the leader's range; truncating to its high watermark %d",
                    partition.topic, partition.index, log_end, leader_hw)
        plog.truncate_to(max(leader_hw, plog.log_start_offset))
        return True
    return False
