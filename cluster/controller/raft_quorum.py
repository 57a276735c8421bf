"""RaftQuorum: the metadata quorum of KRaft, a ``RaftNode`` driven on the node's event loop.

It is what ``KafkaRaftClient`` is to Kafka's ``QuorumController``: the controller proposes
metadata records and learns when they are committed; records committed by other leaders are
handed to ``on_committed`` in order. The Raft rules live in the sans-io core (``cluster.raft``);
this module owns what the core leaves to its caller (etcd raft's ``Ready``), in this order after
every event: write the quorum state (``quorum-state`` beside the log), flush the log, send the
messages (``RaftTransport``), then apply committed entries and complete the proposals they cover.
Timers: one ``loop.call_at`` for the core's next deadline, on the monotonic clock.

The log is ``__cluster_metadata-0`` (``DiskRaftLog`` over the same PartitionLog code as every
partition), so a data dir written by the single-voter quorum opens unchanged: its records are
entries of epoch 1.

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from cluster.controller.records import RECORDS_PER_TURN, MetadataRecord
from cluster.log.partition_log import PartitionLog
from cluster.log.validator import RecordValidationError
from cluster.network.raft_client import RaftChannels
from cluster.raft import (
    Message,
    NotLeaderError,
    QuorumDescription,
    RaftConfig,
    RaftNode,
)
from cluster.raft.config import ReplicaDescription
from cluster.raft.disk_log import DiskRaftLog
from cluster.raft.log import Entry, LogError, OffsetAndEpoch
from cluster.raft.messages import Payload
from cluster.raft.quorum_state import FileQuorumStateStore
from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.records.builder import RecordBatchBuilder

log = logging.getLogger(__name__)

#: Seconds between two looks, while a resigned leader waits for its successor.
RESIGN_POLL_S = 0.01


class RaftTransport(Protocol):
    """Delivers the core's messages to other quorum members (the controller listener's client side)."""

    def send(self, message: Message) -> None:
        """Send ``message`` to ``message.destination``; losing it is allowed (Raft retries)."""


class NoPeers:
    """The transport of a single-voter quorum: there is nobody to talk to."""

    def send(self, message: Message) -> None:
        """A single voter sends nothing; a message here is a bug."""
        raise RuntimeError(f"a single-voter quorum has no peer for {message!r}")


class QuorumUnavailableError(Exception):
    """A proposal that is not committed: this node does not lead, or lost leadership, or the
    quorum did not commit it within the request timeout (a majority is down)."""

    def __init__(self, message: str, leader_id: int = -1) -> None:
        super().__init__(message)
        self.leader_id = leader_id


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class RaftQuorum:
    """The metadata log as a Raft quorum: ``append`` returns once the records are committed."""

    def __init__(self, node_id: int, voters: Sequence[int], metadata_log: PartitionLog,
                 config: RaftConfig | None = None, transport: RaftTransport | None = None,
                 cluster_id: str = "") -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        """Sent in every KRaft request and checked in every one received ("": not checked)."""
        self.log = metadata_log
        self.config = config or RaftConfig()
        self.raft_log = DiskRaftLog(metadata_log)
        self.store = FileQuorumStateStore(metadata_log.directory)
        self.transport: RaftTransport = transport or NoPeers()
        self.on_committed: Callable[[list[Entry]], None] | None = None
        """Set by the controller once it has replayed: it then hears of every commit at once."""
        self._committed: list[Entry] = []
        self._waiters: list[tuple[int, int, asyncio.Future[int]]] = []  # (offset, epoch, future)
        self._inbound: dict[tuple[int, int], asyncio.Future[Payload]] = {}  # (source, correlation id)
        self._next_inbound = 0
        self.on_leadership: Callable[[], None] | None = None
        """Called when this node's leadership is committed (its epoch's first entry is)."""
        self._leading_epoch = -1
        self._timer: asyncio.TimerHandle | None = None
        self.on_snapshot: Callable[[OffsetAndEpoch, bytes], None] | None = None
        """Set by the controller: a snapshot installed from the leader replaces its image."""
        self.bytes_since_snapshot = 0
        """Bytes of the metadata records committed since the latest snapshot."""
        self.start_snapshot = self.raft_log.latest_snapshot()
        """The snapshot the state machine starts from (replay begins after it)."""
        applied = self.start_snapshot.offset if self.start_snapshot is not None else 0
        self.node = RaftNode(node_id, voters, self.raft_log, self.store, random.Random(), _now_ms(), self.config,
                             applied_offset=applied)
        self._process_ready()

    # -- what the controller uses ---------------------------------------------------------

    @property
    def epoch(self) -> int:
        """The current leader epoch."""
        return self.node.epoch

    @property
    def end_offset(self) -> int:
        """The offset the next proposed record gets (on the leader)."""
        return self.raft_log.end_offset

    @property
    def leading(self) -> bool:
        """Whether this node leads and its leadership is committed (it may take writes)."""
        return self.node.is_leader and self._leading_epoch == self.node.epoch

    @property
    def high_watermark(self) -> int:
        """Everything below it is committed."""
        return self.node.high_watermark

    def describe(self) -> QuorumDescription:
        """What DescribeQuorum answers: leader, epoch, high watermark, voters and observers, with
        Kafka's wall-clock timestamps (the core keeps monotonic ones)."""
        description = self.node.describe_quorum()
        offset_ms = int(time.time() * 1000) - _now_ms()

        def wall(replica: ReplicaDescription) -> ReplicaDescription:
            return replace(replica,
                           last_fetch_timestamp=_wall(replica.last_fetch_timestamp, offset_ms),
                           last_caught_up_timestamp=_wall(replica.last_caught_up_timestamp, offset_ms))

        return replace(description, voters=tuple(map(wall, description.voters)),
                       observers=tuple(map(wall, description.observers)))

    def replay(self) -> Iterator[tuple[int, MetadataRecord]]:
        """The records committed so far and not yet handed out (at start-up), in order."""
        entries, self._committed = self._committed, []
        for entry in entries:
            yield entry.offset, decode_record(entry)

    async def append(self, records: Sequence[MetadataRecord]) -> int:
        """Propose ``records`` as one batch and wait until they are committed; returns the offset
        of the last one. Raises QuorumUnavailableError when they cannot be (see the class)."""
        payloads = []
        for i, record in enumerate(records):  # a turn for the event loop every RECORDS_PER_TURN records
            payloads.append(json.dumps(record, sort_keys=True).encode())
            if i % RECORDS_PER_TURN == RECORDS_PER_TURN - 1:
                await asyncio.sleep(0)
        if len(payloads) > RECORDS_PER_TURN and self.node.is_leader:
            await self._stage(payloads)
        try:
            last = self.node.propose(payloads, _now_ms())
        except NotLeaderError as exc:
            raise QuorumUnavailableError(str(exc), exc.leader_id) from None
        except LogError as exc:  # refused by the log before anything was written (a batch over the limit)
            if isinstance(exc.__cause__, RecordValidationError):
                raise exc.__cause__ from None
            raise
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((last.offset, last.epoch, future))
        self._process_ready()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.config.request_timeout_ms / 1000)
        except TimeoutError:
            raise QuorumUnavailableError(
                f"the metadata quorum did not commit offset {last.offset} within "
                f"{self.config.request_timeout_ms} ms (controller.quorum.request.timeout.ms)",
                self.node.leader_id) from None

    async def _stage(self, payloads: list[bytes]) -> None:
        """Encode a large proposal's batch a slice at a time, for the log to write as it is."""
        first, epoch = self.raft_log.end_offset, self.node.epoch
        builder = RecordBatchBuilder(base_offset=first, partition_leader_epoch=epoch)
        now_ms = int(time.time() * 1000)
        for i, payload in enumerate(payloads):
            builder.append(None, payload, timestamp_ms=now_ms)
            if i % RECORDS_PER_TURN == RECORDS_PER_TURN - 1:
                await asyncio.sleep(0)
        if (self.raft_log.end_offset, self.node.epoch) == (first, epoch):  # nothing moved meanwhile
            self.raft_log.stage(first, epoch, payloads, builder.build())

    # -- driving the core -----------------------------------------------------------------

    async def handle_request(self, source: int, payload: Payload) -> Payload | None:
        """A request from quorum member ``source`` (the controller listener's handlers): the
        core's answer, or None if it gives none within the request timeout."""
        self._next_inbound += 1
        key = (source, self._next_inbound)
        future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self._inbound[key] = future
        try:
            self.step(Message(source, self.node_id, payload, self._next_inbound))
            return await asyncio.wait_for(future, self.config.request_timeout_ms / 1000)
        except TimeoutError:
            return None
        finally:
            self._inbound.pop(key, None)

    def step(self, message: Message) -> None:
        """A message for this node: a response to one of its requests (from the transport), or
        a request (through ``handle_request``)."""
        self.node.step(message, _now_ms())
        self._process_ready()

    def _tick(self) -> None:
        self._timer = None
        self.node.tick(_now_ms())
        self._process_ready()

    def _process_ready(self) -> None:
        ready = self.node.ready()
        if ready.quorum_state is not None:
            self.store.write(ready.quorum_state)
        if ready.flush_log:
            self.raft_log.flush()
        for message in ready.messages:
            if message.is_request:
                self.transport.send(message)
                continue
            answered = self._inbound.get((message.destination, message.correlation_id))
            if answered is not None and not answered.done():
                answered.set_result(message.payload)
        if ready.snapshot is not None:  # installed from the leader: it replaces the state machine
            self._load_snapshot(ready.snapshot)
        if ready.committed:
            self._deliver([entry for entry in ready.committed if not entry.control])
        self._complete_waiters(ready.committed)
        if self.node.is_leader and self.node.epoch != self._leading_epoch and self.node.high_watermark > 0 \
                and self.raft_log.epoch_of(self.node.high_watermark - 1) == self.node.epoch:
            self._leading_epoch = self.node.epoch  # our epoch's first entry is committed: we lead
            log.info("node %d leads the metadata quorum in epoch %d", self.node_id, self.node.epoch)
            if self.on_leadership is not None:
                self.on_leadership()
        self._schedule()

    def snapshot_data(self, snapshot_id: OffsetAndEpoch) -> bytes:
        """The whole content of snapshot ``snapshot_id``."""
        return self.raft_log.read_snapshot(snapshot_id, 0, self.raft_log.snapshot_size(snapshot_id))

    def take_snapshot(self, end_offset: int, data: bytes) -> OffsetAndEpoch:
        """Keep the state machine's image after the records below ``end_offset`` as a snapshot and
        delete the log before it (Kafka's ``deleteBeforeSnapshot``)."""
        snapshot_id = self.node.create_snapshot(end_offset, data)
        self.bytes_since_snapshot = 0
        log.info("metadata snapshot at offset %d (epoch %d, %d bytes); the log now starts at %d",
                 snapshot_id.offset, snapshot_id.epoch, len(data), self.raft_log.start_offset)
        return snapshot_id

    def _load_snapshot(self, snapshot_id: OffsetAndEpoch) -> None:
        log.info("installed the leader's metadata snapshot at offset %d (epoch %d)", snapshot_id.offset,
                 snapshot_id.epoch)
        self._committed.clear()
        self.bytes_since_snapshot = 0
        if self.on_snapshot is None:  # still starting: the controller loads it with the rest
            self.start_snapshot = snapshot_id
            return
        self.on_snapshot(snapshot_id, self.snapshot_data(snapshot_id))

    def _deliver(self, entries: list[Entry]) -> None:
        """Committed records go to the controller once it listens; before, they wait for ``replay``."""
        self._committed.extend(entries)
        self.bytes_since_snapshot += sum(len(entry.payload) for entry in entries)
        if self.on_committed is None or not self._committed:
            return
        pending, self._committed = self._committed, []
        self.on_committed(pending)  # decoded there only if needed (not for the leader's own proposal)

    def _complete_waiters(self, committed: Sequence[Entry]) -> None:
        """A proposal completes when its (offset, epoch) is committed; one whose offset was
        committed with another epoch (it was truncated by a new leader) fails."""
        epochs = {entry.offset: entry.epoch for entry in committed}
        still: list[tuple[int, int, asyncio.Future[int]]] = []
        for offset, epoch, future in self._waiters:
            if future.done():
                continue
            if offset in epochs or offset < self.node.high_watermark:
                if epochs.get(offset, epoch) == epoch:
                    future.set_result(offset)
                else:
                    future.set_exception(QuorumUnavailableError(
                        f"offset {offset} of epoch {epoch} was replaced by the leader of a later epoch",
                        self.node.leader_id))
            else:
                still.append((offset, epoch, future))
        self._waiters = still

    def _schedule(self) -> None:
        """Arm the timer for the core's next deadline (on the event loop's monotonic clock)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # built before the loop runs: the first event arms it
            return
        if self._timer is not None:
            self._timer.cancel()
        delay_s = max(0.0, (self.node.next_deadline_ms() - _now_ms()) / 1000)
        self._timer = loop.call_later(delay_s, self._tick)

    async def resign(self, timeout_s: float) -> None:
        """Kafka's graceful shutdown of a voter (``KafkaRaftClient.shutdown``): a leader resigns
        its epoch and sends EndQuorumEpoch to the other voters, most caught-up first, then this
        waits, at most ``timeout_s``, until another voter leads. The quorum then elects at once
        instead of after a fetch timeout, and the brokers learn sooner that what this leader
        committed last (a controlled shutdown's leadership moves) is committed."""
        if not self.node.is_leader or len(self.node.voters) < 2:
            return
        self.node.resign(_now_ms())
        self._process_ready()
        deadline = time.monotonic() + timeout_s
        while self.node.leader_id in (-1, self.node_id) and time.monotonic() < deadline:
            await asyncio.sleep(RESIGN_POLL_S)
        log.info("node %d resigned the metadata quorum leadership (leader now %d)", self.node_id, self.node.leader_id)

    def close(self) -> None:
        """Stop the timer and the peer connections (the node is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if isinstance(self.transport, RaftChannels):
            self.transport.close()


def _wall(monotonic_ms: int, offset_ms: int) -> int:
    return monotonic_ms + offset_ms if monotonic_ms >= 0 else monotonic_ms


def decode_record(entry: Entry) -> MetadataRecord:
    """The metadata record an entry carries (its JSON payload)."""
    record: MetadataRecord = json.loads(entry.payload)
    return record


def open_quorum(cluster: ClusterConfig, node_id: int, metadata_log: PartitionLog) -> RaftQuorum:
    """This node's member of the cluster's metadata quorum: a voter if it has the controller
    role, an observer otherwise; peers reached on their controller listeners."""
    settings = cluster.broker
    config = RaftConfig(
        election_timeout_ms=settings["controller.quorum.election.timeout.ms"],
        fetch_timeout_ms=settings["controller.quorum.fetch.timeout.ms"],
        election_backoff_max_ms=settings["controller.quorum.election.backoff.max.ms"],
        request_timeout_ms=settings["controller.quorum.request.timeout.ms"],
        retry_backoff_ms=settings["controller.quorum.retry.backoff.ms"],
        # an empty fetch parks at most half the fetch timeout, so that a follower whose fetch
        # timeout is short (test settings) is answered well before it would stand for election
        fetch_max_wait_ms=min(RaftConfig().fetch_max_wait_ms, settings["controller.quorum.fetch.timeout.ms"] // 2),
    )
    voters = cluster.voters
    channels = RaftChannels(node_id, voters) if set(voters) != {node_id} else None
    quorum = RaftQuorum(node_id, sorted(voters), metadata_log, config, channels)
    if channels is not None:
        channels.quorum = quorum
    return quorum
