"""The copier's command line, its transforms, and the parent's reading of its events (no cluster)."""

from __future__ import annotations

import json

from pykafka_ops.services.copier import TRANSFORMS, CopierConfig, parse_config
from pykafka_ops.services.copier_run import CopierProcess, CopierRun


def test_argv_round_trips() -> None:
    config = CopierConfig("h:1", "in", "out", "g", "tx", "at-least-once", "validate-order", 7, 50, 1_000, 5_000)
    argv = config.argv()
    assert argv[1:3] == ["-m", "pykafka_ops.services.copier"]
    assert parse_config(argv[3:]) == config
    assert parse_config(CopierConfig("h:1", "in", "out", "g", "tx").argv()[3:]).exit_idle_ms is None


def test_validate_order_marks_orders_and_passes_the_rest() -> None:
    validate = TRANSFORMS["validate-order"]
    assert json.loads(validate(b'{"order_id": "o-1"}') or b"") == {"order_id": "o-1", "validated": True}
    assert validate(b"not json") == b"not json" and validate(None) is None and validate(b"[1]") == b"[1]"
    assert TRANSFORMS["copy"](b"x") == b"x"


def test_events_tell_progress_and_the_middle_of_a_batch() -> None:
    config = CopierConfig("h:1", "in", "out", "g", "tx")
    first, second = CopierProcess(config), CopierProcess(config)
    first.events += [{"event": "ready", "pending": 9}, {"event": "produced", "batch": 1, "records": 4},
                     {"event": "committed", "batch": 1, "records": 4, "ms": 62.5, "commit_ms": 12.5},
                     {"event": "produced", "batch": 2, "records": 4}]
    assert first.mid_transaction and first.committed_records == 4
    second.events += [{"event": "produced", "batch": 1, "records": 3}, {"event": "aborted", "batch": 1},
                      {"event": "produced", "batch": 2, "records": 3},
                      {"event": "committed", "batch": 2, "records": 3, "ms": 57.0, "commit_ms": 7.0}]
    assert not second.mid_transaction
    run = CopierRun(config, [first, second])
    assert (run.committed_records, run.commit_latencies_ms(), len(run.events("aborted"))) == (7, [7.0, 12.5], 1)
    assert run.current is second and second.returncode is None
