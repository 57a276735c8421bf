"""A deterministic simulation of a KRaft quorum: many ``RaftNode``\\ s in one process.

One seed fixes everything: the cluster (3 or 5 voters, maybe an observer), the network's fault
rates, the fault schedule and every node's randomness. A schedule has a chaos phase — messages
dropped, delayed (so reordered) and duplicated, partitions that come and go, voters and observers
crashed and restarted with their quorum-state store and log, leaders resigning, clients proposing
— and then a calm phase: everything healed and restarted, the network reliable, and a leader must
commit a new proposal within ``LIVENESS_DEADLINE_MS`` of simulated time.

Snapshots (KIP-630): each node's state machine (the list of entries it applied) writes a snapshot
of itself every few committed entries (a number drawn per node) and trims its log to it, or to the
snapshot before; a node crashed or cut off long enough falls behind the leader's log start and
catches up with FetchSnapshot. A restarted node loads its latest snapshot, or (drawn per restart)
passes ``applied_offset=0`` and lets the core name the snapshot to load (``Ready.snapshot``).

The safety invariants (``invariants.py``) are checked after every step. A failure raises
:class:`SimulationFailure`, whose message names the seed and the one-line command that replays it.

Durability model: a node's ``Ready`` is carried out at once and completely (quorum state written,
log flushed, messages sent, entries applied); a crash happens between steps, so the store, the
log and its snapshots survive it whole, while the state machine (the applied entries) is rebuilt
from the latest snapshot (or offset 0).
Messages in flight to or from a crashed node are lost (its connections broke).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster.raft import (
    FetchSnapshotRequest,
    MemoryQuorumStateStore,
    Message,
    NotLeaderError,
    RaftNode,
)

from .invariants import Invariants, InvariantViolation, SimLog
from .prevote import PreVoteWatch
from .profiles import PROFILES, choose_profile
from .snapshots import SnapshotTaking

#: After the chaos phase, a leader must commit a new proposal within this much simulated time.
LIVENESS_DEADLINE_MS = 30_000
OBSERVER_ID = 100

_DELIVER, _TICK, _PROPOSE, _FAULT, _HEAL = range(5)

NodeFactory = Callable[..., RaftNode]


class SimulationFailure(AssertionError):
    """An invariant broke (or a node raised, or liveness failed) in one seeded schedule."""

    def __init__(self, seed: int, bug: str | None, reason: str, trace: list[str],
                 pinned: dict[str, object] | None = None) -> None:
        options = "".join(f" --{key} {value}" for key, value in (pinned or {}).items() if value is not None)
        replay = f"python -m tests.raft_sim --seed {seed}{options}" + (f" --bug {bug}" if bug else "") + " --trace"
        super().__init__(f"raft simulation failed, seed={seed}: {reason}\n  replay: {replay}\n"
                         + "\n".join(f"    {line}" for line in trace))
        self.seed = seed
        self.reason = reason
        self.replay = replay


@dataclass
class SimReport:
    """What one schedule did."""

    seed: int
    voters: int
    observers: int
    faults: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    sim_time_ms: int = 0
    proposals: int = 0
    committed: int = 0
    max_epoch: int = 0
    liveness_ms: int = 0


class Simulation(SnapshotTaking, PreVoteWatch):
    """The cluster, the network and the clock of one schedule."""

    def __init__(self, seed: int, node_factory: NodeFactory = RaftNode, bug: str | None = None,
                 voters: int | None = None, profile: str | None = None, chaos_ms: int | None = None,
                 keep_trace: int = 60) -> None:
        """``voters`` (3 or 5) and ``profile`` (``PROFILES``) pin what the seed would otherwise pick."""
        self.seed = seed
        self.bug = bug
        self.pinned = {"voters": voters, "profile": profile}
        self.rng = random.Random(seed)
        rng = self.rng
        self.node_factory = node_factory
        chosen_voters, chosen_profile = rng.choice((3, 5)), rng.choice(PROFILES)
        self.voters = tuple(range(1, (voters or chosen_voters) + 1))
        self.node_ids = self.voters + ((OBSERVER_ID,) if rng.random() < 0.4 else ())
        self.profile, self.config = choose_profile(rng, profile or chosen_profile, chaos_ms)
        self.invariants = Invariants()
        self.now = 0
        self.queue: list[tuple] = []
        self.seq = 0
        self.nodes: dict[int, RaftNode | None] = {}
        self.logs = {n: SimLog(n, self.invariants) for n in self.node_ids}
        self.stores = {n: MemoryQuorumStateStore() for n in self.node_ids}
        self.incarnation = dict.fromkeys(self.node_ids, 0)
        self.tick_at: dict[int, int] = {}
        self.checked_hw = dict.fromkeys(self.node_ids, 0)
        self.applied: dict[int, list] = {n: [] for n in self.node_ids}
        #: per node: a snapshot every this many applied entries, and how many snapshots the log keeps
        self.snapshot_every = {n: rng.randrange(2, 12) for n in self.node_ids}
        self.snapshots_kept = {n: rng.choice((1, 1, 2)) for n in self.node_ids}
        self.partition: dict[int, int] = {}  # node -> side; empty: no partition
        self.link_seq: dict[tuple[int, int], int] = {}
        self.link_delivered: dict[tuple[int, int], int] = {}
        self.calm = False
        self.newest_epoch = 0
        self.report = SimReport(seed, len(self.voters), len(self.node_ids) - len(self.voters))
        self.trace: deque[tuple] = deque(maxlen=keep_trace)
        self.proposal_count = 0
        self.liveness_payloads: set[bytes] = set()
        for node_id in self.node_ids:
            self._start(node_id)

    # ------------------------------------------------------------------ the run

    def run(self) -> SimReport:
        try:
            self._run()
        except SimulationFailure:
            raise
        except InvariantViolation as error:
            raise self._failure(str(error)) from None
        except Exception as error:  # a node raised: a failure too
            raise self._failure(f"{type(error).__name__}: {error}") from error
        return self.report

    def _run(self) -> None:
        profile = self.profile
        self._push(self.rng.randrange(50, 300), _PROPOSE)
        self._push(self.rng.randrange(profile.fault_every_ms), _FAULT)
        self._push(profile.chaos_ms, _HEAL)
        deadline = profile.chaos_ms + LIVENESS_DEADLINE_MS
        queue = self.queue
        while queue:
            when, _, kind, a, b = heapq.heappop(queue)
            if when > deadline:
                break
            self.now = when
            self.report.steps += 1
            if kind == _DELIVER:
                self._deliver(a, b)
            elif kind == _TICK:
                node = self.nodes.get(a)
                if node is not None and self.tick_at.get(a) == when and self.incarnation[a] == b:
                    self.trace.append((when, "tick", a))
                    node.tick(when)
                    self._after(a)
            elif kind == _PROPOSE:
                if self._propose():
                    break
            elif kind == _FAULT:
                if not self.calm and a is not None:
                    self._inject_fault(*a)
                elif not self.calm:
                    self._inject_fault(self.rng.choice(profile.kinds))
                    self._push(self.now + self.rng.randrange(1, 2 * profile.fault_every_ms), _FAULT)
            elif kind == _HEAL:
                self._heal_all() if a is None else self._heal(a)
        else:
            raise self._failure("the event queue ran dry")
        self.report.sim_time_ms = self.now
        if not self._liveness_met():
            raise self._failure(f"no leader committed a new proposal within {LIVENESS_DEADLINE_MS} ms "
                                "after healing")
        self._check_all()
        self.report.committed = len(self.invariants.committed)
        installs = sum(log.installs for log in self.logs.values())
        if installs:
            self.report.faults["snapshot_installed"] += installs
        self.report.max_epoch = max(self.stores[n].state.leader_epoch for n in self.node_ids
                                    if self.stores[n].state is not None)

    def _push(self, when: int, kind: int, a: object = None, b: object = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, a, b))

    # ------------------------------------------------------------------ nodes

    def _start(self, node_id: int) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        self.incarnation[node_id] += 1
        self.applied[node_id] = []
        self.checked_hw[node_id] = 0
        self.nodes[node_id] = None
        latest = self.logs[node_id].latest_snapshot()
        if latest is not None and self.rng.random() < 0.5:
            self._load_snapshot(node_id, latest)  # the state machine starts from its snapshot
        node = self.node_factory(node_id, self.voters, self.logs[node_id], self.stores[node_id], rng,
                                 self.now, self.config, applied_offset=len(self.applied[node_id]))
        self.nodes[node_id] = node
        self._after(node_id)

    def _crash(self, node_id: int) -> None:
        self.nodes[node_id] = None
        self.incarnation[node_id] += 1  # messages of the old connections are lost
        self.tick_at.pop(node_id, None)
        self.trace.append((self.now, "crash", node_id))

    def _after(self, node_id: int) -> None:
        """Carry out the node's Ready, check the invariants, schedule its next tick."""
        node = self.nodes[node_id]
        assert node is not None
        ready = node.ready()
        if ready.quorum_state is not None:
            self.stores[node_id].write(ready.quorum_state)
        for message in ready.messages:
            self._send(message)
        invariants = self.invariants
        hw = node.high_watermark
        if node.is_leader:
            invariants.check_leader(node_id, node.epoch)
            if self.profile.react and not self.calm:
                self._maybe_strike(node_id, node.epoch, hw > self.checked_hw[node_id])
        if hw > self.checked_hw[node_id]:
            invariants.check_committed(node_id, self.logs[node_id], self.checked_hw[node_id], hw)
            self.checked_hw[node_id] = hw
        if ready.snapshot is not None:
            self.report.faults["snapshot_loaded"] += 1
            self._load_snapshot(node_id, ready.snapshot)
        if ready.committed:
            invariants.check_applied(node_id, self.applied[node_id], ready.committed)
            self._maybe_snapshot(node, self.applied[node_id])
        when = node.next_deadline_ms()
        if when <= self.now:
            raise self._failure(f"node {node_id} ({node.state!r}) asks for a tick at {when}, not after "
                                f"now ({self.now}): it would spin")
        if self.tick_at.get(node_id) != when:
            self.tick_at[node_id] = when
            self._push(when, _TICK, node_id, self.incarnation[node_id])

    # ------------------------------------------------------------------ network

    def _send(self, message: Message) -> None:
        src, dst = message.source, message.destination
        link = (src, dst)
        self.link_seq[link] = seq = self.link_seq.get(link, 0) + 1
        profile, rng, faults = self.profile, self.rng, self.report.faults
        if isinstance(message.payload, FetchSnapshotRequest):
            faults["fetch_snapshot"] += 1
        if self.partition and self.partition.get(src) != self.partition.get(dst):
            faults["partition_drop"] += 1
            return
        if not self.calm:
            if profile.drop and rng.random() < profile.drop:
                faults["drop"] += 1
                return
            if profile.duplicate and rng.random() < profile.duplicate:
                faults["duplicate"] += 1
                self._schedule_delivery(message, seq, extra=True)
        self._schedule_delivery(message, seq, extra=False)

    def _schedule_delivery(self, message: Message, seq: int, extra: bool) -> None:
        latency = self.rng.randrange(1, 10)
        if not self.calm and (extra or (self.profile.delay and self.rng.random() < self.profile.delay)):
            latency += self.rng.randrange(20, 1500)
            self.report.faults["delay"] += 1
        stamp = (self.incarnation[message.source], self.incarnation.get(message.destination, 0), seq)
        self._push(self.now + latency, _DELIVER, message, stamp)

    def _deliver(self, message: Message, stamp: tuple[int, int, int]) -> None:
        src, dst = message.source, message.destination
        node = self.nodes.get(dst)
        if node is None or stamp[0] != self.incarnation[src] or stamp[1] != self.incarnation[dst]:
            self.report.faults["lost_to_crash"] += 1
            return
        if self.partition and self.partition.get(src) != self.partition.get(dst):
            self.report.faults["partition_drop"] += 1
            return
        link = (src, dst)
        if stamp[2] < self.link_delivered.get(link, 0):
            self.report.faults["reorder"] += 1
        else:
            self.link_delivered[link] = stamp[2]
        self.trace.append((self.now, "deliver", message))
        self._step_delivered(node, message)

    # ------------------------------------------------------------------ clients

    def _propose(self) -> bool:
        """A client proposes to a random live node; True once the calm phase's proposal committed."""
        if self.calm and self._liveness_met():
            self.report.liveness_ms = self.now - self.profile.chaos_ms
            return True
        live = [n for n in self.node_ids if self.nodes[n] is not None]
        leaders = [n for n in live if self.nodes[n].is_leader]  # type: ignore[union-attr]
        target = self.rng.choice(leaders if self.calm and leaders else live) if live else None
        if target is not None:
            node = self.nodes[target]
            assert node is not None
            self.proposal_count += 1
            tag = b"live" if self.calm else b"p"
            payloads = [b"%s-%d-%d" % (tag, self.proposal_count, i) for i in range(self.rng.randrange(1, 4))]
            try:
                node.propose(payloads, self.now)
            except NotLeaderError:
                pass
            else:
                self.report.proposals += len(payloads)
                if self.calm:
                    self.liveness_payloads.update(payloads)
                self.trace.append((self.now, "propose", target))
                self._after(target)
        self._push(self.now + (100 if self.calm else self.rng.randrange(10, self.profile.propose_every_ms)), _PROPOSE)
        return False

    def _liveness_met(self) -> bool:
        return any(entry.payload in self.liveness_payloads for entry in self.invariants.committed[-50:])

    # ------------------------------------------------------------------ faults

    def _inject_fault(self, kind: str, target: int | None = None) -> None:
        rng, faults = self.rng, self.report.faults
        live = [n for n in self.node_ids if self.nodes[n] is not None]
        leaders = [n for n in live if self.nodes[n].is_leader]  # type: ignore[union-attr]
        if target is not None:  # the adversary strikes the leader it saw, if it still leads
            if target not in leaders:
                return
            leaders = [target]
            faults["strike_leader"] += 1
        if kind == "crash_leader" and leaders:
            kind, victims = "crash", [leaders[0]]
        elif kind == "isolate_leader":
            kind, victims = "partition", leaders[:1]
        else:
            victims = live
        if kind == "crash" and victims:
            # keep at least one voter running so the schedule is not all downtime
            victim = rng.choice(victims)
            if sum(1 for v in self.voters if self.nodes[v] is not None) > 1 or victim not in self.voters:
                faults["crash"] += 1
                self._crash(victim)
                self._push(self.now + rng.randrange(*self.profile.down_ms), _HEAL, ("restart", victim))
        elif kind == "partition" and not self.partition:
            faults["partition"] += 1
            nodes = list(self.node_ids)
            rng.shuffle(nodes)
            if leaders and (victims == leaders[:1] or rng.random() < 0.5):
                nodes.remove(leaders[0])
                nodes.insert(0, leaders[0])
            cut = rng.randrange(1, (len(nodes) + 1) // 2 + 1) if victims == leaders[:1] else rng.randrange(1, len(nodes))
            self.partition = {n: (0 if i < cut else 1) for i, n in enumerate(nodes)}
            self.trace.append((self.now, "partition", tuple(sorted(nodes[:cut]))))
            self._push(self.now + rng.randrange(self.profile.down_ms[0] * 3, self.profile.down_ms[1] * 2),
                       _HEAL, ("heal", None))
        elif kind == "resign" and leaders:
            faults["resign"] += 1
            node = self.nodes[leaders[0]]
            assert node is not None
            node.resign(self.now)
            self.trace.append((self.now, "resign", leaders[0]))
            self._after(leaders[0])

    def _maybe_strike(self, leader: int, epoch: int, committed: bool) -> None:
        """The adversary: crash or cut off a leader just after it won (or, less often, just after
        it committed), before its first entries have spread."""
        new = epoch > self.newest_epoch
        self.newest_epoch = max(self.newest_epoch, epoch)
        chance = self.profile.react if new else self.profile.react / 8 if committed else 0.0
        if chance and self.rng.random() < chance:
            kind = self.rng.choice(("crash_leader", "isolate_leader"))
            self._push(self.now + self.rng.randrange(0, 60), _FAULT, (kind, leader))

    def _heal(self, action: tuple[str, int | None]) -> None:
        what, node_id = action
        if what == "restart" and node_id is not None and self.nodes[node_id] is None:
            self.trace.append((self.now, "restart", node_id))
            self._start(node_id)
        elif what == "heal" and self.partition:
            self.trace.append((self.now, "heal", None))
            self.partition = {}

    def _heal_all(self) -> None:
        self.calm = True
        self.partition = {}
        self.trace.append((self.now, "calm", None))
        for node_id in self.node_ids:
            if self.nodes[node_id] is None:
                self._start(node_id)

    # ------------------------------------------------------------------ end checks and reports

    def _check_all(self) -> None:
        """Recheck from scratch: every log against the chain registry and the committed sequence."""
        leaders = [node for node in self.nodes.values() if node is not None and node.is_leader]
        # the leader of the newest epoch (an isolated former leader may not have heard of it yet)
        leader = max(leaders, key=lambda node: node.epoch) if leaders else None
        self.invariants.check_logs(self.logs, leader.node_id if leader else None, leader.epoch if leader else 0)

    def _failure(self, reason: str) -> SimulationFailure:
        return SimulationFailure(self.seed, self.bug, reason, self._trace_lines(), self.pinned)

    def _trace_lines(self) -> list[str]:
        lines = []
        for when, what, detail in self.trace:
            if what == "deliver":
                message = detail
                detail = f"{message.source}->{message.destination} {message.payload}"
            lines.append(f"t={when} {what} {detail}")
        return lines


def run_schedule(seed: int, node_factory: NodeFactory = RaftNode, bug: str | None = None,
                 voters: int | None = None, profile: str | None = None) -> SimReport:
    """Run one seeded schedule; raises :class:`SimulationFailure` (naming the seed) on a violation."""
    return Simulation(seed, node_factory, bug, voters, profile).run()
