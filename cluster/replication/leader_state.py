"""What a leader knows of each follower replica (Kafka's ``Replica`` / ``ReplicaState``).

A follower's position is learnt from its Fetch requests: the fetch offset is its log end offset
(LEO), since it asks for the first offset it does not have. ``last_caught_up_time_ms`` is the
time of the latest fetch that reached the leader's LEO *as of that fetch's start* — or, for a
fetch that reached the LEO the leader had at the previous fetch, that previous fetch's time —
so appends that arrive while a follower is fetching never make it look behind (Kafka's
``Replica.updateFetchStateOrThrow``). The ISR shrink (``replica.lag.time.max.ms``,
``isr_changes``) reads it; the ISR expansion reads the LEO and the broker epoch of the fetch.

On a leadership change (a new leader, or a new leader epoch) every follower's state is reset:
its LEO becomes unknown (-1) until its next fetch, and an ISR member counts as caught up from
the change on (Kafka's ``resetReplicaState``).

Concurrency: used from the node's event loop only; nothing here awaits.
"""

from __future__ import annotations

from collections.abc import ValuesView

UNKNOWN_OFFSET = -1


class ReplicaState:
    """One follower replica of a partition this broker leads."""

    __slots__ = (
        "broker_epoch",
        "broker_id",
        "last_caught_up_time_ms",
        "last_fetch_leader_log_end_offset",
        "last_fetch_time_ms",
        "log_end_offset",
        "log_start_offset",
    )

    def __init__(self, broker_id: int, now_ms: int = 0, in_sync: bool = False) -> None:
        self.broker_id = broker_id
        self.broker_epoch = UNKNOWN_OFFSET
        """The follower's broker epoch from its latest fetch (Fetch v15+ ``replica_state``, KIP-903);
        -1 when unknown (then not checked, as Kafka's ``addBrokerEpochToIsr``)."""
        self.log_end_offset = UNKNOWN_OFFSET
        self.log_start_offset = UNKNOWN_OFFSET
        self.last_fetch_leader_log_end_offset = UNKNOWN_OFFSET
        self.last_fetch_time_ms = 0
        self.last_caught_up_time_ms = now_ms if in_sync else 0

    def update_fetch(self, fetch_offset: int, fetch_time_ms: int, leader_end_offset: int,
                     log_start_offset: int = UNKNOWN_OFFSET, broker_epoch: int = UNKNOWN_OFFSET) -> None:
        """Record a fetch from ``fetch_offset`` that started when the leader's LEO was
        ``leader_end_offset``, sent by the follower at ``broker_epoch`` (-1: not sent)."""
        if fetch_offset >= leader_end_offset:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, fetch_time_ms)
        elif fetch_offset >= self.last_fetch_leader_log_end_offset >= 0:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, self.last_fetch_time_ms)
        self.log_end_offset = fetch_offset
        self.log_start_offset = log_start_offset
        self.last_fetch_leader_log_end_offset = leader_end_offset
        self.last_fetch_time_ms = fetch_time_ms
        self.broker_epoch = broker_epoch

    def is_caught_up(self, leader_end_offset: int, now_ms: int, max_lag_ms: int) -> bool:
        """Kafka's ``ReplicaState.isCaughtUp``: at the leader's LEO, or caught up recently."""
        return (self.log_end_offset >= leader_end_offset
                or now_ms - self.last_caught_up_time_ms <= max_lag_ms)

    def __repr__(self) -> str:
        return (f"ReplicaState({self.broker_id}, leo={self.log_end_offset}, "
                f"caught_up_at={self.last_caught_up_time_ms})")


class FollowerStates:
    """The ``ReplicaState`` of every follower of a partition this broker leads."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[int, ReplicaState] = {}

    def reset(self, self_id: int, replicas: tuple[int, ...], isr: tuple[int, ...], now_ms: int) -> None:
        """A new leadership: every follower's LEO unknown, ISR members caught up as of now."""
        self._states = {r: ReplicaState(r, now_ms, r in isr) for r in replicas if r != self_id}

    def sync(self, self_id: int, replicas: tuple[int, ...], isr: tuple[int, ...], now_ms: int) -> None:
        """Same leadership, new replica set: keep known states, add new replicas, drop removed."""
        old = self._states
        self._states = {r: old.get(r) or ReplicaState(r, now_ms, r in isr) for r in replicas if r != self_id}

    def clear(self) -> None:
        self._states = {}

    def get(self, broker_id: int) -> ReplicaState | None:
        return self._states.get(broker_id)

    def values(self) -> ValuesView[ReplicaState]:
        return self._states.values()
