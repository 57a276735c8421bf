"""What-if arithmetic, key templates and the balance metrics behind them."""

from __future__ import annotations

import pytest

from pykafka_ops.partitioner import Partitioner
from pykafka_ops.services.skew_stats import (
    allocate,
    excess_cut,
    gini,
    hot_rule_note,
    imbalance,
    key_text,
    z_scores,
)
from pykafka_ops.services.skew_whatif import (
    KeyTemplate,
    RecordView,
    render_keys,
    spread,
    what_if,
)

# Where the spec's example keys go (cli-parity.md §6.4, "Example partition mappings").
# murmur2 at 3/6 partitions: foo 2/2, kafka 1/4, hejsan 1/1, abc 0/3; CRC-32 at 3: foo 2, kafka 2, hejsan 0, abc 0.
SAMPLE_KEYS = [b"foo"] * 4 + [b"kafka"] * 2 + [b"hejsan", b"abc"]
SAMPLE = [({b"foo": 2, b"kafka": 4, b"hejsan": 1, b"abc": 3}[k], (k,)) for k in SAMPLE_KEYS]


def test_what_if_recomputes_partitions_and_imbalance() -> None:
    (scenario,) = what_if(SAMPLE, [KeyTemplate.parse("{key}")], [3], 6, Partitioner.murmur2_random, 2.0)
    assert scenario.records == (1, 3, 4)
    assert scenario.current.max_over_mean == pytest.approx(4 / (8 / 6))  # now [0, 1, 4, 1, 2, 0]
    assert scenario.predicted.max_over_mean == pytest.approx(1.5)
    assert scenario.predicted.gini == pytest.approx(0.25)
    assert scenario.predicted.cv == pytest.approx((14 / 9) ** 0.5 / (8 / 3))
    assert scenario.excess_cut == pytest.approx(1 - 0.5 / 2.0)
    assert scenario.sampled == 8 and scenario.partitions == 3 and scenario.partitioner == "murmur2_random"


def test_what_if_under_librdkafka_default_for_each_template_and_count() -> None:
    templates = [KeyTemplate.parse("{key}"), KeyTemplate.parse("tenant")]
    sample = [(p, (k, b"tenant")) for p, (k,) in SAMPLE]
    scenarios = what_if(sample, templates, [3, 6], 6, Partitioner.consistent_random, 2.0)
    assert [(s.key_template, s.partitions) for s in scenarios] == [("{key}", 3), ("{key}", 6), ("tenant", 3),
                                                                    ("tenant", 6)]
    assert scenarios[0].records == (2, 0, 6) and scenarios[0].predicted.max_over_mean == pytest.approx(2.25)
    assert scenarios[3].predicted.max_over_mean == 6.0  # one key: everything on one partition


def test_keys_the_partitioner_does_not_hash_are_dealt_evenly() -> None:
    assert spread([None, None, None, 0], 2) == [3, 1]
    sample = [(0, (None,))] * 9
    (scenario,) = what_if(sample, [KeyTemplate.parse("{key}")], [3], 3, Partitioner.murmur2_random, 2.0)
    assert scenario.records == (3, 3, 3) and scenario.excess_cut == 1.0


def test_imbalance_metrics() -> None:
    even = imbalance([5, 5, 5, 5], 2.0)
    assert (even.max_over_mean, even.cv, even.gini, even.hot_partitions) == (1.0, 0.0, 0.0, ())
    one = imbalance([0, 0, 0, 0, 0, 0, 12], 2.0)
    assert one.max_over_mean == 7 and one.gini == pytest.approx(6 / 7) and one.hot_partitions == (6,)
    assert imbalance([], 2.0).max_over_mean == 1.0 and imbalance([0, 0], 2.0).hot_partitions == ()
    assert z_scores([1, 1, 1]) == [0.0, 0.0, 0.0]
    assert z_scores([0, 2]) == [-1.0, 1.0]
    assert gini([1, 3, 4]) == pytest.approx(0.25)
    assert imbalance([1, 3, 4], 2.0).cv == pytest.approx(0.4677, abs=1e-4)


def test_hot_rule_needs_enough_partitions_for_k() -> None:
    # one outlier's z-score is at most sqrt(n - 1): 2.236 with 6 partitions, 2.0 with 5
    assert imbalance([50, 10, 10, 10, 10, 10], 2.0).hot_partitions == (0,)
    assert imbalance([50, 10, 10, 10, 10], 2.0).hot_partitions == ()
    assert hot_rule_note(5, 2.0) is not None and hot_rule_note(6, 2.0) is None
    assert imbalance([50, 10, 10, 10, 10], 1.5).hot_partitions == (0,)


def test_excess_cut() -> None:
    now, after = imbalance([30, 10, 10, 10, 10, 10], 2.0), imbalance([15, 13, 13, 13, 13, 13], 2.0)
    assert excess_cut(now, after) == pytest.approx(1 - (15 / 80 * 6 - 1) / (30 / 80 * 6 - 1))
    assert excess_cut(after, after) == 0.0
    assert excess_cut(imbalance([1, 1], 2.0), after) is None


def test_allocate_splits_a_sample_by_partition_size() -> None:
    assert allocate(10, [50, 30, 20]) == [5, 3, 2]
    assert allocate(10, [1, 1, 1]) == [1, 1, 1]
    assert sum(allocate(7, [10, 10, 10])) == 7
    assert allocate(5, [0, 100]) == [0, 5]


def test_key_text() -> None:
    keys = (None, b"", b"cust-1", "café".encode(), b"\xff\x00a", b"a\tb")
    assert [key_text(k) for k in keys] == ["(null)", "(empty)", "cust-1", "café", "\\xff\\x00a", "a\\tb"]


RECORD = RecordView(3, b"cust", 17, 1000, [("region", b"eu"), ("region", b"us"), ("tag", None)],
                    b'{"region": "west", "n": {"x": 5}, "flag": true}')


@pytest.mark.parametrize(("template", "expected"), [
    ("{key}", b"cust"),
    ("{key}:{header.region}", b"cust:eu"),
    ("{key}:{header.tag}", b"cust:"),
    ("{key}:{header.missing}", b"cust:"),
    ("{key}:{value.region}", b"cust:west"),
    ("{value.n}", b'{"x": 5}'),
    ("{value.n.x}/{value.flag}", b"5/true"),
    ("{value.nothing.deeper}", b""),
    ("{key}:{offset%8}", b"cust:1"),
    ("p{partition}-{timestamp%7}-{offset}", b"p3-6-17"),
    ("tenant-7", b"tenant-7"),
])
def test_templates_render_record_fields(template: str, expected: bytes) -> None:
    assert render_keys([KeyTemplate.parse(template)], RECORD) == (expected,)


def test_null_keys_stay_null_only_in_the_bare_template() -> None:
    record = RecordView(0, None, 5, value=b"not json")
    templates = [KeyTemplate.parse(t) for t in ("{key}", "{key}:{offset%2}", "{value.region}")]
    assert render_keys(templates, record) == (None, b":1", b"")


@pytest.mark.parametrize("template", ["{nope}", "{offset%0}", "{key%3}", "{key", "key}", "{header.}", "{value}"])
def test_bad_templates_are_refused_with_the_field(template: str) -> None:
    with pytest.raises(ValueError, match="key template"):
        KeyTemplate.parse(template)


def test_templates_say_which_record_parts_they_read() -> None:
    assert KeyTemplate.parse("{key}:{header.r}").needs_headers
    assert not KeyTemplate.parse("{key}:{header.r}").needs_value
    assert KeyTemplate.parse("{value.r}").needs_value
