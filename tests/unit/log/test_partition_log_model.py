"""PartitionLog against a list-of-offsets model, over random sequences of operations.

Appends, rolls, clean and crash reopens, truncations at batch boundaries, DeleteRecords and
size retention are applied in random order to a log with small segments; after each step the
log start and end offsets match the model, and reading from the log start to the end (one
``read`` per segment, as consumers fetch) returns exactly the model's offsets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.log.partition_log import PartitionLog
from pykafka_ops.records import RecordBatch
from pykafka_ops.records.batch import iter_batches

from .helpers import DAY_MS, T0, batch, log_config, produced

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4), st.integers(1, 120)),
        st.tuples(st.just("reopen_clean"), st.just(0), st.just(0)),
        st.tuples(st.just("reopen_crash"), st.just(0), st.just(0)),
        st.tuples(st.just("truncate"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("delete_records"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("roll"), st.just(0), st.just(0)),
        st.tuples(st.just("retention_bytes"), st.integers(0, 3000), st.just(0)),
    ),
    max_size=30,
)


def _read_all(log: PartitionLog, start: int) -> list[int]:
    offsets, offset, end = [], start, log.log_end_offset
    while offset < end:
        data = log.read(offset, 1 << 20, end, True)
        assert data, (offset, end)
        records = [r for pos, _h in iter_batches(data) for r in RecordBatch(data, pos).records()]
        offsets += [r.offset for r in records if r.offset >= offset]
        offset = records[-1].offset + 1
    return offsets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, interval=st.sampled_from([0, 100, 4096]))
def test_log_matches_the_model(ops: list[tuple[str, int, int]], interval: int) -> None:
    config = {"segment.bytes": 700, "index.interval.bytes": interval}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "t-0"
        log = PartitionLog.open(directory, log_config(**config), DAY_MS, clean_shutdown=True)
        model: list[int] = []  # offsets from the log start
        start = 0
        for op, a, b in ops:
            if op == "append":
                info = log.append_as_leader(produced(batch(a, value_size=b)), 0, T0)
                assert info.first_offset == log.log_end_offset - a
                model += range(info.first_offset, info.last_offset + 1)
                log.high_watermark = log.log_end_offset
            elif op == "reopen_clean":
                log.close(clean=True)
                log = PartitionLog.open(directory, log_config(**config), DAY_MS, clean_shutdown=True,
                                        log_start_offset=start)
            elif op == "reopen_crash":  # the old files stay open, as after kill -9
                log = PartitionLog.open(directory, log_config(**config), DAY_MS, clean_shutdown=False,
                                        log_start_offset=start)
            elif op == "truncate":
                bounds = sorted({h.base_offset for s in log.segments for _p, h in s.iter_headers()}
                                | {log.log_end_offset})
                bounds = [x for x in bounds if x >= start]
                target = bounds[a % len(bounds)]
                log.truncate_to(target)
                model = [o for o in model if o < target]
            elif op == "delete_records":
                target = start + a % (log.high_watermark - start + 1)
                log.delete_records_before(target)
                start = max(start, target)
                model = [o for o in model if o >= start]
            elif op == "roll":
                log.roll(T0)
            elif op == "retention_bytes":
                log.config = log_config(**(config | {"retention.bytes": a}))
                log.apply_retention(T0)
                log.config = log_config(**config)
                assert log.log_start_offset >= start
                start = log.log_start_offset
                model = [o for o in model if o >= start]
            assert log.log_start_offset == start, op
            if model:
                assert log.log_end_offset == model[-1] + 1, op
            assert _read_all(log, start) == model, op
        log.close(clean=False)
