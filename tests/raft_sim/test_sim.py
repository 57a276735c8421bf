"""The KRaft core under simulation: thousands of seeded schedules in CI, planted bugs found.

Every schedule also takes snapshots and trims logs (KIP-630), so nodes far behind load the
leader's snapshot with FetchSnapshot; the report counts ``snapshot_taken``, ``fetch_snapshot``
(requests sent), ``snapshot_installed`` and ``snapshot_loaded`` (``Ready.snapshot`` handled).

``PKO_RAFT_SIM_SCHEDULES=100000 python -m pytest tests/raft_sim -s -k schedules`` runs a longer
sweep; every failure names its seed and the command that replays it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from cluster.raft import RaftNode

from .bugs import BUGS, DoubleVoteNode, Figure8Node, PreVoteAsVoteNode
from .sim import SimulationFailure, run_schedule

CI_SCHEDULES = 3000
REPO = Path(__file__).resolve().parents[2]


def _run_range(bounds: tuple[int, int]) -> tuple[int, dict[str, int], list[str]]:
    """Run seeds [start, stop); returns (schedules run, fault counts, failure messages)."""
    faults: Counter[str] = Counter()
    failures: list[str] = []
    for seed in range(*bounds):
        try:
            faults.update(run_schedule(seed).faults)
        except SimulationFailure as failure:
            failures.append(str(failure))
            if len(failures) >= 3:
                break
    return bounds[1] - bounds[0], dict(faults), failures


def _sweep(count: int) -> tuple[int, Counter[str], list[str]]:
    """All seeds in [0, count), split over the machine's cores (fork), else in this process."""
    workers = min(os.cpu_count() or 1, 4)
    chunk = max(1, count // (workers * 8))
    ranges = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    faults: Counter[str] = Counter()
    failures: list[str] = []
    run = 0
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_run_range, ranges)
    else:
        results = [_run_range(bounds) for bounds in ranges]
    for n, counts, errors in results:
        run += n
        faults.update(counts)
        failures.extend(errors)
    return run, faults, failures


def test_seeded_schedules_keep_every_invariant() -> None:
    count = int(os.environ.get("PKO_RAFT_SIM_SCHEDULES", CI_SCHEDULES))
    started = time.perf_counter()
    run, faults, failures = _sweep(count)
    wall = time.perf_counter() - started
    print(json.dumps({"raft_sim": "schedules", "schedules": run, "wall_s": round(wall, 2),
                      "schedules_per_s": round(run / wall), "faults": dict(sorted(faults.items()))}))
    assert not failures, failures[0]
    for kind in ("drop", "duplicate", "delay", "reorder", "partition", "crash", "resign", "strike_leader"):
        assert faults[kind] > 0, f"no {kind} fault was injected"
    # KIP-630: snapshots taken, loaded by nodes far behind with FetchSnapshot, and on restarts
    for kind in ("snapshot_taken", "fetch_snapshot", "snapshot_installed", "snapshot_loaded"):
        assert faults[kind] > 0, f"no {kind} happened"


def test_a_schedule_replays_identically() -> None:
    first, second = run_schedule(1234), run_schedule(1234)
    assert first == second
    assert first.steps > 50 and first.liveness_ms > 0


def _first_failure(factory: type[RaftNode], bug: str, seeds: int, **pin: object) -> tuple[int, SimulationFailure]:
    for seed in range(seeds):
        try:
            run_schedule(seed, factory, bug, **pin)  # type: ignore[arg-type]
        except SimulationFailure as failure:
            return seed + 1, failure
    raise AssertionError(f"the planted bug {bug!r} went unnoticed in {seeds} schedules")


def test_a_voter_that_votes_twice_in_an_epoch_is_caught() -> None:
    started = time.perf_counter()
    tried, failure = _first_failure(DoubleVoteNode, "double_vote", seeds=300)
    print(json.dumps({"raft_sim": "planted_bug", "bug": "double_vote", "schedules_until_caught": tried,
                      "wall_s": round(time.perf_counter() - started, 2), "reason": failure.reason}))
    assert f"seed={failure.seed}" in str(failure)
    assert failure.replay == f"python -m tests.raft_sim --seed {failure.seed} --bug double_vote --trace"


def test_a_leader_that_commits_old_epoch_entries_by_counting_replicas_is_caught() -> None:
    """Raft's Figure 8 needs five voters and three quick elections with entries reaching only some
    voters: the search pins that shape (5 voters, the leader-churn adversary)."""
    started = time.perf_counter()
    tried, failure = _first_failure(Figure8Node, "figure8", seeds=1500, voters=5, profile="leader_churn")
    print(json.dumps({"raft_sim": "planted_bug", "bug": "figure8", "schedules_until_caught": tried,
                      "wall_s": round(time.perf_counter() - started, 2), "reason": failure.reason}))
    assert "--voters 5 --profile leader_churn --bug figure8" in failure.replay


def test_a_voter_that_takes_a_pre_vote_for_a_vote_is_caught() -> None:
    started = time.perf_counter()
    tried, failure = _first_failure(PreVoteAsVoteNode, "pre_vote_as_vote", seeds=100)
    print(json.dumps({"raft_sim": "planted_bug", "bug": "pre_vote_as_vote", "schedules_until_caught": tried,
                      "wall_s": round(time.perf_counter() - started, 2), "reason": failure.reason}))
    assert "answering a pre-vote" in failure.reason


def test_the_replay_command_reproduces_a_failure() -> None:
    _, failure = _first_failure(DoubleVoteNode, "double_vote", seeds=300)
    command = failure.replay.split()
    assert command[:3] == ["python", "-m", "tests.raft_sim"]
    result = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 1
    assert failure.reason in result.stderr


def test_the_bug_table_names_every_planted_bug() -> None:
    assert BUGS == {"double_vote": DoubleVoteNode, "figure8": Figure8Node, "pre_vote_as_vote": PreVoteAsVoteNode}
