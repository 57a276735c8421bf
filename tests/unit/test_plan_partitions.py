"""`pko plan partitions` arithmetic (pykafka_ops.services.plan_partitions) against hand-computed cases."""

from __future__ import annotations

import pytest

from pykafka_ops.services.plan_partitions import (
    PlanInputs,
    apply_command,
    arithmetic,
    partitions_for,
    plan,
    projected_max_per_broker,
    round_to_brokers,
)


def inputs(**changes: object) -> PlanInputs:
    base: dict[str, object] = {"target_mb_s": 12.0, "growth": 2.0, "producer_mb_s": 8.1, "consumer_mb_s": 5.2,
                               "brokers": 3, "replication_factor": 3}
    return PlanInputs(**(base | changes))  # type: ignore[arg-type]


def test_the_worked_example_rounds_to_a_multiple_of_the_brokers() -> None:
    # 12 × 2 = 24; 24 / 8.1 = 2.96 → 3; 24 / 5.2 = 4.62 → 5; 6 = 2 × 3 brokers costs 20 % more (≤ 25 %)
    result = plan(inputs())
    assert (result.planned_mb_s, result.by_producer, result.by_consumer, result.needed) == (24.0, 3, 5, 5)
    assert (result.recommended, result.rounded_to_brokers, result.change) == (6, True, True)
    assert arithmetic(result) == ["target 12.0 MB/s × growth 2 = 24.0 MB/s",
                                  "producer 8.1 MB/s/partition → 24.0 / 8.1 = 3",
                                  "consumer 5.2 MB/s/partition → 24.0 / 5.2 = 5",
                                  "recommend 6 (multiple of 3 brokers)"]
    assert apply_command(result, "orders") == "pko topics --create --topic orders --partitions 6 --replication-factor 3"
    assert apply_command(result, None).startswith("pko topics --create --topic TOPIC --partitions 6")


@pytest.mark.parametrize(("count", "brokers", "expected"), [
    (5, 3, 6),    # +1 = 20 %
    (8, 3, 9),    # +1 = 12.5 %
    (7, 3, 7),    # 9 would be +28.6 %
    (4, 5, 5),    # +25 % exactly is still fine
    (3, 5, 3),    # 5 would be +66 %
    (6, 3, 6),    # already a multiple
    (7, 1, 7),    # one broker: any count spreads evenly
])
def test_round_to_brokers_only_when_it_costs_at_most_a_quarter_more(count: int, brokers: int, expected: int) -> None:
    assert round_to_brokers(count, brokers) == expected


def test_growth_multiplies_the_target() -> None:
    # 10 × 3 = 30 MB/s; producer 5 → 6; consumer not given; 1 broker
    result = plan(inputs(target_mb_s=10.0, growth=3.0, producer_mb_s=5.0, consumer_mb_s=None, brokers=1,
                         replication_factor=1))
    assert (result.planned_mb_s, result.by_producer, result.by_consumer, result.recommended) == (30.0, 6, None, 6)
    assert arithmetic(result)[1:] == ["producer 5.0 MB/s/partition → 30.0 / 5.0 = 6", "recommend 6"]


def test_an_exact_quotient_needs_no_extra_partition_and_float_noise_costs_none() -> None:
    assert partitions_for(24.0, 8.0) == 3
    assert 2.1 / 0.3 > 7  # 7.000000000000001
    assert partitions_for(2.1, 0.3) == 7
    assert partitions_for(24.01, 8.0) == 4
    assert partitions_for(5.0, None) is None
    with pytest.raises(ValueError):
        partitions_for(5.0, 0.0)


def test_an_idle_target_still_needs_one_partition() -> None:
    result = plan(inputs(target_mb_s=0.0, brokers=1))
    assert (result.by_producer, result.by_consumer, result.needed, result.recommended) == (0, 0, 1, 1)


def test_never_below_the_current_count() -> None:
    # 12 × 2 = 24 needs 5; the topic has 10: no change, nothing to run
    result = plan(inputs(current_partitions=10, keyed=True))
    assert (result.needed, result.recommended, result.change, result.rounded_to_brokers) == (5, 10, False, False)
    assert apply_command(result, "orders") is None
    assert any("never shrink" in n for n in result.notes)
    assert result.warnings == ()  # nothing is added, so no key moves
    assert arithmetic(result)[-1] == "recommend 10 (current count, ≥ 5 needed)"


def test_growing_a_keyed_topic_warns_that_keys_move() -> None:
    # needs 5, rounded to 6 (3 brokers); the topic has 4
    result = plan(inputs(current_partitions=4, keyed=True))
    assert (result.recommended, result.change) == (6, True)
    assert apply_command(result, "orders") == "pko topics --alter --topic orders --partitions 6"
    assert any("grow from 4 to 6" in n for n in result.notes)
    assert len(result.warnings) == 1 and "remaps keys" in result.warnings[0]
    assert plan(inputs(current_partitions=4, keyed=False)).warnings == ()


def test_per_broker_budget() -> None:
    # 6 new partitions × RF 3 = 18 replicas over 3 brokers → +6 on each; fullest 3994 + 6 = 4000: at the budget
    at_budget = plan(inputs(replicas_per_broker={1: 3994, 2: 100, 3: 0}))
    assert (at_budget.recommended, at_budget.projected_max_per_broker, at_budget.warnings) == (6, 4000, ())
    past = plan(inputs(replicas_per_broker={1: 3995, 2: 100, 3: 0}))
    assert past.projected_max_per_broker == 4001
    assert len(past.warnings) == 1 and "4001 partition replicas" in past.warnings[0]
    # a smaller budget flag, and only the added partitions count for an existing topic: 6 − 4 = 2 × RF 3 = 6 → +2
    grown = plan(inputs(current_partitions=4, replicas_per_broker={1: 10, 2: 10, 3: 10},
                        max_partitions_per_broker=11))
    assert grown.projected_max_per_broker == 12 and "budget of 11" in grown.warnings[-1]


def test_projected_max_per_broker_spreads_replicas_evenly() -> None:
    assert projected_max_per_broker({1: 5, 2: 7}, 2, 3, 1) == 7 + 2   # 3 replicas over 2 brokers: ≤ 2 each
    assert projected_max_per_broker({}, 3, 4, 2) == 3                # 8 over 3: ≤ 3 each
    assert projected_max_per_broker({1: 5}, 1, 0, 3) == 5


def test_a_throughput_is_required() -> None:
    with pytest.raises(ValueError):
        plan(inputs(producer_mb_s=None, consumer_mb_s=None))


def test_small_rates_keep_their_digits() -> None:
    result = plan(inputs(target_mb_s=0.95, growth=2.0, producer_mb_s=0.2, consumer_mb_s=0.15, brokers=1))
    # 1.9 / 0.2 = 9.5 → 10; 1.9 / 0.15 = 12.67 → 13
    assert arithmetic(result) == ["target 0.95 MB/s × growth 2 = 1.9 MB/s",
                                  "producer 0.2 MB/s/partition → 1.9 / 0.2 = 10",
                                  "consumer 0.15 MB/s/partition → 1.9 / 0.15 = 13",
                                  "recommend 13"]
