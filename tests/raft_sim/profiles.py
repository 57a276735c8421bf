"""The kinds of schedule the simulation draws from: fault rates, timers and the adversary."""

from __future__ import annotations

import random
from dataclasses import dataclass

from cluster.raft import RaftConfig

__all__ = ["PROFILES", "Profile", "choose_profile"]


@dataclass
class Profile:
    """The fault rates and timings of one schedule."""

    name: str
    drop: float
    duplicate: float
    delay: float
    chaos_ms: int
    fault_every_ms: int
    kinds: tuple[str, ...]
    down_ms: tuple[int, int]
    propose_every_ms: int = 300
    #: probability of striking a leader just after it is elected or commits (an adversary, not chance)
    react: float = 0.0


PROFILES = ("mixed", "leader_churn")

_KAFKA_TIMERS = {"request_timeout_ms": 600}
_FAST_TIMERS = {"election_timeout_ms": 300, "fetch_timeout_ms": 600, "election_backoff_max_ms": 300,
                "request_timeout_ms": 200, "fetch_max_wait_ms": 150}


def choose_profile(rng: random.Random, name: str, chaos_ms: int | None) -> tuple[Profile, RaftConfig]:
    """Two kinds of schedule.

    ``mixed``: a bit of everything — drops, duplicates, long delays, partitions, crashes of any
    node, resignations — with Kafka's timers or shorter ones.

    ``leader_churn``: an adversary that crashes or cuts off leaders, often just after they win,
    while clients keep proposing and fetch answers carry few entries (Kafka cuts them by bytes):
    entries then reach only some voters across several quick elections, which is what Raft's
    Figure 8 needs.
    """
    drop, duplicate, delay = rng.choice((0.0, 0.02, 0.1, 0.3)), rng.choice((0.0, 0.05, 0.2)), rng.choice((0.0, 0.05, 0.2))
    # FetchSnapshot chunks: a few bytes (snapshots of hundreds of bytes arrive in many chunks) or whole
    chunk = {"fetch_snapshot_max_bytes": rng.choice((50, 300, 1 << 20))}
    if name == "mixed":
        timers = rng.choice((_KAFKA_TIMERS, _FAST_TIMERS))
        config = RaftConfig(**timers, **chunk, max_fetch_entries=rng.choice((1, 2, 3, 1000)))
        return Profile("mixed", drop, duplicate, delay, chaos_ms or rng.randrange(2000, 6000),
                        rng.choice((300, 800, 2000)),
                        ("crash", "crash", "partition", "partition", "resign", "crash_leader"), (100, 3000)), config
    config = RaftConfig(**_FAST_TIMERS, **chunk, max_fetch_entries=rng.choice((1, 1, 2, 1000)))
    return Profile("leader_churn", rng.choice((0.0, 0.1, 0.3)), rng.choice((0.0, 0.05)), rng.choice((0.0, 0.05)),
                    chaos_ms or rng.randrange(3000, 8000), rng.choice((500, 1000, 2000)),
                    ("isolate_leader", "isolate_leader", "crash_leader", "crash"), (50, 1500),
                    propose_every_ms=80, react=rng.choice((0.5, 0.8))), config
