"""A deterministic, seeded simulation of the KRaft core (``cluster.raft``): many nodes in one
process, a faulty network, crashes and restarts, snapshots (KIP-630) taken, trimmed to and loaded
with FetchSnapshot, safety invariants checked after every step.

``run_schedule(seed)`` runs one schedule; ``python -m tests.raft_sim --seed N`` replays one.
"""

from .bugs import BUGS, DoubleVoteNode, Figure8Node
from .invariants import InvariantViolation
from .sim import SimReport, Simulation, SimulationFailure, run_schedule

__all__ = ["BUGS", "DoubleVoteNode", "Figure8Node", "InvariantViolation", "SimReport", "Simulation",
           "SimulationFailure", "run_schedule"]
