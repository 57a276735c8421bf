"""Replay or run schedules: ``python -m tests.raft_sim --seed 1234 [--bug double_vote] [--trace]``
or ``python -m tests.raft_sim --schedules 10000 [--start 0]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from cluster.raft import RaftNode

from .bugs import BUGS
from .profiles import PROFILES
from .sim import SimulationFailure, run_schedule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.raft_sim", description=__doc__)
    parser.add_argument("--seed", type=int, help="replay this one schedule")
    parser.add_argument("--schedules", type=int, default=1, help="run this many schedules from --start")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--bug", choices=sorted(BUGS), help="plant a broken rule")
    parser.add_argument("--voters", type=int, choices=(3, 5), help="pin the number of voters")
    parser.add_argument("--profile", choices=PROFILES, help="pin the fault profile")
    parser.add_argument("--trace", action="store_true", help="print the failing schedule's last events")
    args = parser.parse_args(argv)
    factory = BUGS[args.bug] if args.bug else RaftNode
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.schedules)
    faults: Counter[str] = Counter()
    liveness: list[int] = []
    epochs: list[int] = []
    started = time.perf_counter()
    for seed in seeds:
        try:
            report = run_schedule(seed, factory, args.bug, args.voters, args.profile)
        except SimulationFailure as failure:
            print(failure if args.trace else str(failure).splitlines()[0] + "\n" + failure.replay, file=sys.stderr)
            return 1
        faults.update(report.faults)
        liveness.append(report.liveness_ms)
        epochs.append(report.max_epoch)
        if args.seed is not None:
            print(json.dumps(report.__dict__ | {"faults": dict(report.faults)}))
    liveness.sort()
    print(json.dumps({"schedules": len(seeds), "wall_s": round(time.perf_counter() - started, 2),
                      "liveness_ms": {"mean": round(sum(liveness) / len(liveness)),
                                      "p99": liveness[len(liveness) * 99 // 100], "max": liveness[-1]},
                      "max_epoch_mean": round(sum(epochs) / len(epochs), 2),
                      "faults": dict(sorted(faults.items()))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
