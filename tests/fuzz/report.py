"""The figures of a fuzz run (one JSON line), its resource bounds, and how a failure is printed."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fuzz.node import NodeWatch, Usage

MIB = 2**20


@dataclass
class Stats:
    """The figures of a run (``as_json`` is the JSON line). ``frames`` counts frames as the node
    cuts them (a pipeline case is several); ``body_decoder`` counts, per "key/version", the
    frames whose header parsed and whose version the node advertises."""

    seed: int
    listener: str = "client"
    cases: int = 0
    frames: int = 0
    strategies: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    body_decoder: Counter[str] = field(default_factory=Counter)
    answers: int = 0
    closes: int = 0
    silent: int = 0
    partial_closed_by_us: int = 0
    parked: int = 0
    error_codes: Counter[int] = field(default_factory=Counter)
    undecodable_answers: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    health_checks: int = 0
    health_failures: int = 0
    node_exits: int = 0
    hangs: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    pairs_advertised: int = 0
    pairs_missing: list[str] = field(default_factory=list)
    node_log_errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> str:
        """One JSON line with every figure."""
        data = dict(vars(self))
        data["frames_per_s"] = round(self.frames / self.seconds, 1) if self.seconds else 0.0
        data["seconds"] = round(self.seconds, 1)
        data["error_codes"] = {str(k): v for k, v in sorted(self.error_codes.items())}
        data["body_decoder"] = dict(sorted(self.body_decoder.items(),
                                           key=lambda kv: tuple(int(n) for n in kv[0].split("/"))))
        return json.dumps(data, default=dict)


def resources(before: Usage | None, after: Usage | None, partitions: tuple[int, int], limit: int | None) -> dict:
    """The node's resources before and after a run, for the JSON line."""
    if before is None or after is None:
        return {"address_space_limit": limit}
    figures: dict[str, Any] = {"address_space_limit": limit,
                               "partitions_before": partitions[0], "partitions_after": partitions[1]}
    for name in ("rss", "vms", "fds", "sockets", "log_files", "deleted_files", "others"):
        figures[f"{name}_before"], figures[f"{name}_after"] = getattr(before, name), getattr(after, name)
    return figures


def bound_failures(before: Usage, after: Usage, rss_bound: int, fds_bound: int) -> list[str]:
    """What grew past its bound over a run: RSS, or open descriptors other than segment files
    (sockets, files deleted but still open, pipes ...)."""
    found = []
    if after.rss - before.rss > rss_bound:
        found.append(f"RSS grew by {(after.rss - before.rss) / MIB:.0f} MiB (bound {rss_bound / MIB:.0f} MiB)")
    if after.leak_prone - before.leak_prone > fds_bound:
        found.append(
            f"{after.leak_prone - before.leak_prone} more descriptors open after the run "
            f"(sockets {before.sockets}->{after.sockets}, deleted files {before.deleted_files}->"
            f"{after.deleted_files}, others {before.others}->{after.others}; bound {fds_bound})"
        )
    return found


def describe_failure(failure: dict[str, Any], watch: NodeWatch) -> str:
    """A failure as printed: seed, case index, strategy, the frame in hex, how to replay it,
    the suspects of a node exit, and the tail of the node's log."""
    title = (f"FUZZ FAILURE {failure['kind']} seed={failure['seed']} index={failure.get('index')} "
             f"strategy={failure.get('strategy')}: {failure['detail']}")
    lines = [title]
    if failure["kind"] == "node_exit":
        lines.append(f"  seen during: {failure['hex']}")
    elif "hex" in failure:
        listener = failure.get("listener", "client")
        replay = (f"cd tests && python -m fuzz.runner --replay {failure['hex']} --bootstrap {watch.host}:{watch.port}"
                  + ("" if listener == "client" else f" --listener {listener}"))
        lines += [f"  frame: {failure['hex']}", f"  replay: {replay}"]
    for suspect in failure.get("suspects", []):
        lines.append(f"  suspect index={suspect['index']} strategy={suspect['strategy']}: {suspect['hex']}")
    for culprit in failure.get("culprits", []):
        lines.append(f"  CULPRIT index={culprit['index']} strategy={culprit['strategy']}: {culprit['hex']}")
    tail = watch.log_tail(15)
    if tail:
        lines.append("  node log (tail):\n    " + tail.replace("\n", "\n    "))
    return "\n".join(lines)
