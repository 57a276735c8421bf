"""How many partitions a topic needs, from a target throughput and per-partition throughputs
(`pko plan partitions`). Pure arithmetic, no I/O: ``plan`` takes figures, returns a ``PartitionPlan``.

The rule is the one Kafka operators use (Confluent's "choose the number of partitions"):
``partitions = max(t / p, t / c)``, with ``t`` the target throughput (the current or expected rate
times a growth factor, for headroom), ``p`` and ``c`` what one partition sustains for a producer and
for a consumer, measured on this cluster. Then, as Kafka imposes or advises:

* partitions never shrink: an existing topic keeps at least its current count;
* the count is rounded up to a multiple of the broker count when that costs at most 25 % more,
  so leaders spread evenly;
* every broker has a partition budget (replicas included): the plan warns past it;
* adding partitions to a keyed topic remaps keys (``hash(key) % partitions`` changes).

MB is 1024 × 1024 bytes, as in kafka-producer-perf-test (``pykafka_ops.models.perf.MB``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Round up to a multiple of the broker count when it costs at most this much more.
MULTIPLE_TOLERANCE = 0.25
#: A commonly quoted per-broker partition budget (replicas included) for ZooKeeper-less Kafka.
DEFAULT_MAX_PARTITIONS_PER_BROKER = 4000


@dataclass(frozen=True)
class PlanInputs:
    """The figures a plan is computed from; throughputs in MB/s."""

    target_mb_s: float
    """Throughput to plan for, before growth (the topic's measured rate or ``--target-mb-s``)."""
    growth: float
    producer_mb_s: float | None
    """What one partition sustains for a producer (None: not considered)."""
    consumer_mb_s: float | None
    """What one partition sustains for one consumer (None: not considered)."""
    brokers: int
    replication_factor: int
    current_partitions: int | None = None
    """The existing topic's partition count (None: a new topic)."""
    replicas_per_broker: Mapping[int, int] = field(default_factory=dict)
    """Partition replicas each broker holds now (from Metadata)."""
    max_partitions_per_broker: int = DEFAULT_MAX_PARTITIONS_PER_BROKER
    keyed: bool = False
    """The existing topic holds keyed records."""


@dataclass(frozen=True)
class PartitionPlan:
    """A recommendation with the arithmetic behind it."""

    inputs: PlanInputs
    planned_mb_s: float
    """target × growth."""
    by_producer: int | None
    by_consumer: int | None
    needed: int
    """ceil(max(planned / producer, planned / consumer)), at least 1."""
    recommended: int
    rounded_to_brokers: bool
    """``recommended`` was raised to a multiple of the broker count."""
    projected_max_per_broker: int
    """Replicas on the fullest broker once the recommendation is applied (spread evenly)."""
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def change(self) -> bool:
        """Whether anything is to be done (a new topic, or more partitions)."""
        return self.inputs.current_partitions is None or self.recommended > self.inputs.current_partitions


def partitions_for(planned_mb_s: float, per_partition_mb_s: float | None) -> int | None:
    """ceil(planned / per partition) (None when not given). Rounded to 1e-9 first, so that float
    noise such as 2.1 / 0.3 = 7.000000000000001 does not cost a partition."""
    if per_partition_mb_s is None:
        return None
    if per_partition_mb_s <= 0:
        raise ValueError(f"per-partition throughput must be positive, got {per_partition_mb_s:g} MB/s")
    return math.ceil(round(planned_mb_s / per_partition_mb_s, 9))


def round_to_brokers(count: int, brokers: int, tolerance: float = MULTIPLE_TOLERANCE) -> int:
    """``count`` raised to the next multiple of ``brokers`` when that adds at most ``tolerance``
    (a fraction of ``count``), else ``count``."""
    if brokers <= 1:
        return count
    rounded = math.ceil(count / brokers) * brokers
    return rounded if rounded <= count * (1 + tolerance) else count


def projected_max_per_broker(replicas_per_broker: Mapping[int, int], brokers: int, added_partitions: int,
                             replication_factor: int) -> int:
    """Replicas on the fullest broker after adding ``added_partitions`` partitions of
    ``replication_factor`` replicas each, spread evenly (each broker takes at most its ceil share)."""
    added = math.ceil(added_partitions * replication_factor / brokers) if added_partitions > 0 else 0
    return max(replicas_per_broker.values(), default=0) + added


def plan(inputs: PlanInputs) -> PartitionPlan:
    """Recommend a partition count for ``inputs``; see the module docstring for the rules."""
    if inputs.producer_mb_s is None and inputs.consumer_mb_s is None:
        raise ValueError("need a producer or a consumer per-partition throughput")
    if inputs.brokers < 1:
        raise ValueError("a cluster has at least one broker")
    planned = inputs.target_mb_s * inputs.growth
    by_producer = partitions_for(planned, inputs.producer_mb_s)
    by_consumer = partitions_for(planned, inputs.consumer_mb_s)
    needed = max([1] + [n for n in (by_producer, by_consumer) if n is not None])
    notes: list[str] = []
    warnings: list[str] = []
    current = inputs.current_partitions
    rounded = round_to_brokers(needed, inputs.brokers)
    if current is not None and current >= needed:
        recommended, rounded_up = current, False
        notes.append(f"the topic already has {current} partitions, enough for the {needed} needed: no change "
                     "(partitions never shrink)")
    else:
        recommended, rounded_up = rounded, rounded != needed
        if rounded_up:
            notes.append(f"{needed} rounded up to {rounded}, a multiple of {inputs.brokers} brokers, so leaders "
                         "spread evenly")
        if current is not None:
            notes.append(f"grow from {current} to {recommended} partitions (partitions can be added, never removed)")
            if inputs.keyed:
                warnings.append("the topic has keyed records: adding partitions remaps keys (hash(key) % partitions "
                                "changes), so a key's new records land on another partition than its old ones and "
                                "per-key order breaks across the change")
    added = recommended - (current or 0)
    fullest = projected_max_per_broker(inputs.replicas_per_broker, inputs.brokers, added, inputs.replication_factor)
    if fullest > inputs.max_partitions_per_broker:
        warnings.append(f"the fullest broker would hold {fullest} partition replicas, past the budget of "
                        f"{inputs.max_partitions_per_broker} per broker (--max-partitions-per-broker): more "
                        "brokers, fewer partitions elsewhere, or a lower target")
    notes.append(f"a consumer group reading it can use up to {recommended} consumer{'s' if recommended > 1 else ''}")
    return PartitionPlan(inputs, planned, by_producer, by_consumer, needed, recommended, rounded_up, fullest,
                         tuple(notes), tuple(warnings))


def mb_s(value: float) -> str:
    """A throughput for people: one decimal from 1 MB/s up (``12.0``), three significant digits below (``0.15``)."""
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def arithmetic(result: PartitionPlan) -> list[str]:
    """The computation as lines, e.g. ``target 12.0 MB/s × growth 2 = 24.0 MB/s``,
    ``producer 8.1 MB/s/partition → 3``, …, ``recommend 6 (multiple of 3 brokers)``."""
    i = result.inputs
    lines = [f"target {mb_s(i.target_mb_s)} MB/s × growth {i.growth:g} = {mb_s(result.planned_mb_s)} MB/s"]
    for role, rate, count in (("producer", i.producer_mb_s, result.by_producer),
                              ("consumer", i.consumer_mb_s, result.by_consumer)):
        if rate is not None:
            lines.append(f"{role} {mb_s(rate)} MB/s/partition → {mb_s(result.planned_mb_s)} / {mb_s(rate)} = {count}")
    why = []
    if result.rounded_to_brokers:
        why.append(f"multiple of {i.brokers} brokers")
    if i.current_partitions is not None and not result.change:
        why.append(f"current count, ≥ {result.needed} needed")
    lines.append(f"recommend {result.recommended}" + (f" ({'; '.join(why)})" if why else ""))
    return lines


def apply_command(result: PartitionPlan, topic: str | None) -> str | None:
    """The `pko topics` command that applies the plan (None when there is nothing to do)."""
    if not result.change:
        return None
    if result.inputs.current_partitions is not None:
        return f"pko topics --alter --topic {topic} --partitions {result.recommended}"
    return (f"pko topics --create --topic {topic or 'TOPIC'} --partitions {result.recommended} "
            f"--replication-factor {result.inputs.replication_factor}")
