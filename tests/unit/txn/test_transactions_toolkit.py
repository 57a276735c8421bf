"""`pko transactions`' pure parts: find-hanging's candidates and verdict (Kafka's
``FindHangingTransactionsCommand``), abort ``--start-offset`` (``AbortTransactionCommand``), and
the client's DescribeTransactions decoding of what our handler encodes (a -1 start time too)."""

from __future__ import annotations

import pytest

from pykafka_ops.client.txn_requests import (
    ProducerState,
    TransactionDescription,
    _parse_describe_transactions,
)
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.services.transactions import (
    OpenTransaction,
    TransactionsError,
    abort_spec_for_offset,
    is_hanging,
    open_transactions,
)

NOW = 1_700_000_000_000
MINUTE = 60_000


def _producer(pid: int, start: int | None, last: int, epoch: int = 2, coordinator: int | None = 4) -> ProducerState:
    return ProducerState(pid, epoch, 9, last, coordinator, start)


def test_open_transactions_idle_past_the_max_timeout() -> None:
    producers = {("t", 0): [_producer(1, 10, NOW - 20 * MINUTE), _producer(2, None, NOW - 20 * MINUTE),
                            _producer(3, 30, NOW - 5 * MINUTE)]}
    found = open_transactions(producers, NOW, 15 * MINUTE)
    assert [(o.topic, o.partition, o.producer.producer_id) for o in found] == [("t", 0, 1)]
    assert found[0].duration_ms(NOW) == 20 * MINUTE


def test_hanging_unless_a_coordinator_runs_it() -> None:
    candidate = OpenTransaction("t", 0, _producer(1, 10, NOW - 20 * MINUTE))

    def described(state: str, epoch: int = 2, partitions: tuple[tuple[str, int], ...] = (("t", 0),)
                  ) -> TransactionDescription:
        return TransactionDescription("tx", 1, state, 1, epoch, 60_000, NOW, partitions)

    assert is_hanging(candidate, [])
    assert not is_hanging(candidate, [described("Ongoing")])
    assert not is_hanging(candidate, [described("PrepareAbort")])
    assert is_hanging(candidate, [described("CompleteCommit")])
    assert is_hanging(candidate, [described("Ongoing", epoch=3)])
    assert is_hanging(candidate, [described("Ongoing", partitions=(("t", 1),))])


def test_abort_by_start_offset() -> None:
    producers = [_producer(1, None, NOW), _producer(2, 40, NOW, coordinator=None), _producer(3, 50, NOW)]
    spec = abort_spec_for_offset("t", 0, producers, 40)
    assert (spec.producer_id, spec.producer_epoch, spec.coordinator_epoch) == (2, 2, 0)
    assert abort_spec_for_offset("t", 0, producers, 50).coordinator_epoch == 4
    with pytest.raises(TransactionsError, match="starting at offset 41 on partition t-0"):
        abort_spec_for_offset("t", 0, producers, 41)


@pytest.mark.parametrize("start", [NOW, -1])
def test_describe_transactions_decoding(start: int) -> None:
    entry = {"error_code": 0, "transactional_id": "tx", "transaction_state": "Ongoing", "transaction_timeout": 60_000,
             "transaction_start_time": start, "producer_id": 2**40, "producer_epoch": 3,
             "topics": [{"topic": "a", "partitions": [0, 2]}]}
    body = codec.encode_response_body(ApiKey.DESCRIBE_TRANSACTIONS, 0,
                                      {"throttle_time": 0, "transaction_states": [entry]})
    code, found = _parse_describe_transactions(body, 0, 7)
    assert code == "NONE"
    assert found == TransactionDescription("tx", 7, "Ongoing", 2**40, 3, 60_000, None if start < 0 else start,
                                           (("a", 0), ("a", 2)))


@pytest.mark.parametrize(("args", "code", "message"), [
    (["describe"], 2, "Missing required option(s): transactional-id"),
    (["describe-producers", "--topic", "t"], 2, "Missing required option(s): partition"),
    (["abort", "--topic", "t", "--partition", "0", "--producer-id", "3"], 2,
     "abort needs --start-offset, or all of --producer-id, --producer-epoch and --coordinator-epoch"),
    (["abort", "--topic", "t", "--partition", "0", "--start-offset", "1", "--producer-id", "3"], 2,
     "--start-offset cannot be combined with --producer-id, --producer-epoch or --coordinator-epoch"),
    (["find-hanging"], 2, "find-hanging needs exactly one of --broker-id or --topic"),
    (["list", "--timeout", "500"], 1, "cannot reach the Kafka cluster at 127.0.0.1:1 within 0.5 s"),
])
def test_cli_errors_are_one_line(args: list[str], code: int, message: str) -> None:
    from typer.testing import CliRunner

    from commands.main import app

    result = CliRunner().invoke(app, ["transactions", "-b", "127.0.0.1:1", *args])
    assert result.exit_code == code
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"pko: {message}")
