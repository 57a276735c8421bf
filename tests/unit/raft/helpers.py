"""A hand-driven quorum for the rule tests: a fake clock, messages delivered only when a test says so."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable

from cluster.raft import (
    Entry,
    MemoryQuorumStateStore,
    MemoryRaftLog,
    Message,
    OffsetAndEpoch,
    RaftConfig,
    RaftNode,
    Ready,
)

CONFIG = RaftConfig()  # Kafka's defaults: election 1000 ms, fetch 2000 ms, backoff max 1000 ms


class Quorum:
    """Nodes, their logs and stores, and the messages sent but not yet delivered."""

    def __init__(self, voters: Iterable[int] = (1, 2, 3), observers: Iterable[int] = (), seed: int = 0,
                 config: RaftConfig = CONFIG, node_class: type[RaftNode] = RaftNode) -> None:
        self.voters = tuple(voters)
        self.ids = self.voters + tuple(observers)
        self.config = config
        self.node_class = node_class
        self.now = 0
        self.seed = seed
        self.logs = {n: MemoryRaftLog() for n in self.ids}
        self.stores = {n: MemoryQuorumStateStore() for n in self.ids}
        self.nodes: dict[int, RaftNode] = {}
        self.sent: list[Message] = []
        self.readies: dict[int, list[Ready]] = {n: [] for n in self.ids}
        self.applied: dict[int, list[Entry]] = {n: [] for n in self.ids}
        for n in self.ids:
            self.start(n)

    def start(self, node_id: int, from_snapshot: bool = False) -> RaftNode:
        """(Re)start a node from its store and log, as after a crash; its state machine starts
        empty, or from the log's latest snapshot if ``from_snapshot``."""
        log = self.logs[node_id]
        latest = log.latest_snapshot() if from_snapshot else None
        self.applied[node_id] = load_state(log, latest) if latest is not None else []
        self.nodes[node_id] = self.node_class(node_id, self.voters, log, self.stores[node_id],
                                              random.Random(self.seed * 100 + node_id), self.now, self.config,
                                              applied_offset=len(self.applied[node_id]))
        self.drain(node_id)
        return self.nodes[node_id]

    def drain(self, node_id: int) -> Ready:
        """Carry out the node's Ready in the documented order."""
        ready = self.nodes[node_id].ready()
        if ready.quorum_state is not None:
            self.stores[node_id].write(ready.quorum_state)
        self.sent.extend(ready.messages)
        if ready.snapshot is not None:
            self.applied[node_id] = load_state(self.logs[node_id], ready.snapshot)
        self.applied[node_id].extend(ready.committed)
        self.readies[node_id].append(ready)
        return ready

    def tick(self, to_ms: int, nodes: Iterable[int] | None = None) -> None:
        self.now = to_ms
        for n in nodes if nodes is not None else self.ids:
            self.nodes[n].tick(to_ms)
            self.drain(n)

    def deliver(self, keep: Callable[[Message], bool] = lambda m: True, rounds: int = 50,
                advance_ms: int = 1, hold: Callable[[Message], bool] = lambda m: False) -> None:
        """Deliver messages (and the ones they cause) until none is left; ``keep`` filters (drops);
        messages ``hold`` picks stay undelivered in ``sent``."""
        held: list[Message] = []
        for _ in range(rounds):
            batch, self.sent = self.sent, []
            held.extend(m for m in batch if hold(m))
            batch = [m for m in batch if not hold(m)]
            if not batch:
                break
            self.now += advance_ms
            for message in batch:
                if keep(message) and message.destination in self.nodes:
                    self.nodes[message.destination].step(message, self.now)
                    self.drain(message.destination)
        self.sent = held + self.sent

    def take(self, kind: type, destination: int | None = None) -> list[Message]:
        """Remove and return the undelivered messages of one type (optionally to one node)."""
        taken = [m for m in self.sent if isinstance(m.payload, kind)
                 and (destination is None or m.destination == destination)]
        self.sent = [m for m in self.sent if m not in taken]
        return taken

    def step(self, message: Message) -> Ready:
        self.nodes[message.destination].step(message, self.now)
        return self.drain(message.destination)

    def settle(self) -> None:
        """Deliver everything, let parked fetches expire (followers learn the high watermark), deliver."""
        self.deliver()
        self.tick(self.now + self.config.fetch_max_wait_ms)
        self.deliver()

    def elect(self, node_id: int, keep: Callable[[Message], bool] = lambda m: True) -> RaftNode:
        """Make ``node_id`` campaign now and deliver until the election is over."""
        node = self.nodes[node_id]
        self.tick(max(self.now, node.next_deadline_ms()), nodes=[node_id])  # only its timer fires
        self.deliver(keep)
        assert node.is_leader, node.state
        return node

    def snapshot(self, node_id: int, trim: bool = True) -> OffsetAndEpoch:
        """The node's state machine writes a snapshot of everything it applied (and trims its log)."""
        applied = self.applied[node_id]
        return self.nodes[node_id].create_snapshot(len(applied), state_bytes(applied), trim=trim)

    def leader(self) -> RaftNode | None:
        leaders = [n for n in self.nodes.values() if n.is_leader]
        return max(leaders, key=lambda n: n.epoch) if leaders else None


def state_bytes(entries: Iterable[Entry]) -> bytes:
    """The snapshot of the tests' state machine (the entries it applied)."""
    return json.dumps([[e.offset, e.epoch, e.payload.hex(), e.control] for e in entries]).encode()


def load_state(log: MemoryRaftLog, snapshot_id: OffsetAndEpoch) -> list[Entry]:
    data = log.read_snapshot(snapshot_id, 0, log.snapshot_size(snapshot_id))
    return [Entry(offset, epoch, bytes.fromhex(payload), control) for offset, epoch, payload, control in json.loads(data)]


def payloads(entries: Iterable[Entry]) -> list[bytes]:
    """The client payloads among ``entries`` (control records left out)."""
    return [e.payload for e in entries if not e.control]
