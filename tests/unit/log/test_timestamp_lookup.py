"""ListOffsets by timestamp against brute force, over random timestamps and index densities.

``offset_for_timestamp`` starts its scan from the sparse TimeIndex / OffsetIndex floor entries;
whatever the timestamps (out of order, repeated) and wherever the index entries fall, it must
answer what a full scan answers: the first record whose timestamp is ≥ the target (Kafka's
``LogSegment.findOffsetByTimestamp``), and ``max_timestamp_offset`` the first record holding the
largest timestamp (KIP-734).
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

batches_of_timestamps = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=4), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches_of_timestamps, interval=st.sampled_from([0, 60, 200]), segment_bytes=st.sampled_from([400, 10**6]))
def test_timestamp_lookups_match_a_full_scan(batches: list[list[int]], interval: int, segment_bytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = PartitionLog.open(Path(tmp) / "t-0", log_config(**{"index.interval.bytes": interval,
                                                                 "segment.bytes": segment_bytes}),
                                DAY_MS, clean_shutdown=True)
        for stamps in batches:
            log.append_as_leader(produced(batch(len(stamps), timestamps=[T0 + s for s in stamps])), 0, T0)
        log.high_watermark = log.log_end_offset
        records = []
        for segment in log.segments:
            data = segment.read(0, segment.size)
            records += [(r.offset, r.timestamp) for pos, _h in iter_batches(data)
                        for r in RecordBatch(data, pos).records()]
        for target in range(-1, 42):
            expected = next(((o, ts) for o, ts in records if ts >= T0 + target), None)
            found = log.offset_for_timestamp(T0 + target)
            assert (None if found is None else (found.offset, found.timestamp)) == expected, target
        top = max(ts for _o, ts in records)
        found = log.max_timestamp_offset()
        assert (found.offset, found.timestamp) == next((o, ts) for o, ts in records if ts == top)
        log.close(clean=False)
