"""`pko transactions`: kafka-transactions (KIP-664) — list, describe, describe-producers, abort,
find-hanging.

Verbs and flags are kafka-transactions'; ``--bootstrap-server``/``-b`` (and ``-c``, ``--timeout``,
``--output``) go before the verb, as the Java tool takes them, or after it. Piped (or
``--output text``) the output is the Java tool's tables (``ToolsUtils.prettyPrintTable``: padded
columns, tab-separated) with its column names; ``--output json|yaml`` the data. ``abort`` prints
nothing in text, as the Java tool.

Exit codes: 2 for bad flags (one line), 1 when the cluster cannot be reached (naming the
bootstrap servers) or Kafka refuses a request, else 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    ClusterFileOption,
    OutputOption,
    TimeoutOption,
)
from commands._render import Output, Table, plain_text, render

if TYPE_CHECKING:
    from pykafka_ops.client.connection import ClientSettings

app = typer.Typer(add_completion=False, rich_markup_mode=None, no_args_is_help=True,
                  help="List, describe and abort transactions; find hanging ones (kafka-transactions).")

TopicOption = Annotated[str | None, typer.Option("--topic", help="Topic of the partition.")]
PartitionOption = Annotated[int | None, typer.Option("--partition", min=0, help="Partition index.")]

#: kafka-transactions' column names (``TransactionsCommand``).
LIST_COLUMNS = ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
DESCRIBE_COLUMNS = ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                    "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                    "TopicPartitions"]
PRODUCER_COLUMNS = ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                    "CurrentTransactionStartOffset"]
HANGING_COLUMNS = ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                   "LastTimestamp", "Duration(min)"]


@dataclass(frozen=True)
class Connection:
    """The connection and output options, from before or after the verb (after wins)."""

    bootstrap: str | None = None
    config: Path | None = None
    timeout: int = 30000
    output: Output | None = None

    def merged(self, bootstrap: str | None, config: Path | None, timeout: int | None,
               output: Output | None) -> Connection:
        return Connection(bootstrap or self.bootstrap, config or self.config,
                          self.timeout if timeout is None else timeout, output or self.output)

    def settings(self) -> ClientSettings:
        from pykafka_ops.client.connection import client_settings

        return client_settings(self.bootstrap, None, self.timeout, self.config)


@app.callback()
def transactions(ctx: typer.Context, bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None,
                 timeout: TimeoutOption = 30000, output: OutputOption = None) -> None:
    """List, describe and abort transactions; find hanging ones (kafka-transactions)."""
    ctx.obj = Connection(bootstrap_server, config, timeout, output)


def _connection(ctx: typer.Context, bootstrap: str | None, config: Path | None, timeout: int | None,
                output: Output | None) -> Connection:
    base = ctx.obj if isinstance(ctx.obj, Connection) else Connection()
    return base.merged(bootstrap, config, timeout, output)


SubTimeout = Annotated[int | None, typer.Option("--timeout", min=1, help="Request timeout in ms (default 30000).")]


def _show(conn: Connection, table: Table, payload: Any) -> None:
    render(conn.output, [table], payload, text=lambda: plain_text(table, "\t") if table.rows else "")


def _none(value: int | None) -> str | int:
    """Kafka's text for an absent OptionalInt/OptionalLong."""
    return "None" if value is None else value


@app.command("list")
@handle_errors
def list_(ctx: typer.Context,
          duration_filter: Annotated[int | None, typer.Option(
              "--duration-filter", min=0,
              help="Only transactions running longer than this many ms (ListTransactions v1, KIP-994).")] = None,
          transactional_id_pattern: Annotated[str | None, typer.Option(
              "--transactional-id-pattern", metavar="REGEX",
              help="Only transactional ids this regular expression matches whole (ListTransactions v2, "
                   "KIP-1152).")] = None,
          bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None, timeout: SubTimeout = None,
          output: OutputOption = None) -> None:
    """List transactions, from every broker's coordinator."""
    from pykafka_ops.services.transactions import list_transactions

    conn = _connection(ctx, bootstrap_server, config, timeout, output)
    listed = list_transactions(conn.settings(), -1 if duration_filter is None else duration_filter,
                               transactional_id_pattern)
    table = Table(LIST_COLUMNS, [[t.transactional_id, t.coordinator, t.producer_id, t.state] for t in listed],
                  title="Transactions", numeric=frozenset({"Coordinator", "ProducerId"}))
    _show(conn, table, [asdict(t) for t in listed])


@app.command()
@handle_errors
def describe(ctx: typer.Context,
             transactional_id: Annotated[str | None, typer.Option(
                 "--transactional-id", help="Transactional id to describe. Required.")] = None,
             bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None, timeout: SubTimeout = None,
             output: OutputOption = None) -> None:
    """Describe a transactional id's transaction, at its coordinator."""
    from pykafka_ops.services.transactions import describe_transaction, now_ms

    if not transactional_id:
        raise CliError("Missing required option(s): transactional-id", USAGE)
    conn = _connection(ctx, bootstrap_server, config, timeout, output)
    d = describe_transaction(conn.settings(), transactional_id)
    duration = None if d.start_time_ms is None else now_ms() - d.start_time_ms
    row = [d.coordinator, d.transactional_id, d.producer_id, d.producer_epoch, d.state, d.timeout_ms,
           _none(d.start_time_ms), _none(duration), ",".join(f"{t}-{p}" for t, p in d.partitions)]
    payload = asdict(d) | {"partitions": [{"topic": t, "partition": p} for t, p in d.partitions],
                           "duration_ms": duration}
    _show(conn, Table(DESCRIBE_COLUMNS, [row], title=f"Transaction {transactional_id}"), payload)


def _topic_partition(topic: str | None, partition: int | None) -> tuple[str, int]:
    if topic is None or partition is None:
        missing = [name for name, value in (("topic", topic), ("partition", partition)) if value is None]
        raise CliError(f"Missing required option(s): {', '.join(missing)}", USAGE)
    return topic, partition


@app.command("describe-producers")
@handle_errors
def describe_producers(ctx: typer.Context, topic: TopicOption = None, partition: PartitionOption = None,
                       broker_id: Annotated[int | None, typer.Option(
                           "--broker-id", min=0, help="Replica to ask (default: the partition's leader).")] = None,
                       bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None,
                       timeout: SubTimeout = None, output: OutputOption = None) -> None:
    """Describe the active producers of a partition (DescribeProducers)."""
    from pykafka_ops.services.transactions import describe_producers as describe

    name, index = _topic_partition(topic, partition)
    conn = _connection(ctx, bootstrap_server, config, timeout, output)
    producers = describe(conn.settings(), name, index, broker_id)
    rows = [[p.producer_id, p.producer_epoch, _none(p.coordinator_epoch), p.last_sequence, p.last_timestamp,
             _none(p.current_txn_start_offset)] for p in producers]
    _show(conn, Table(PRODUCER_COLUMNS, rows, title=f"Producers of {name}-{index}"),
          {"topic": name, "partition": index, "producers": [asdict(p) for p in producers]})


@app.command()
@handle_errors
def abort(ctx: typer.Context, topic: TopicOption = None, partition: PartitionOption = None,
          start_offset: Annotated[int | None, typer.Option(
              "--start-offset", min=0, help="First offset of the transaction to abort.")] = None,
          producer_id: Annotated[int | None, typer.Option("--producer-id", min=0, help="Producer id.")] = None,
          producer_epoch: Annotated[int | None, typer.Option("--producer-epoch", min=0,
                                                             help="Producer epoch.")] = None,
          coordinator_epoch: Annotated[int | None, typer.Option(
              "--coordinator-epoch", min=0, help="Coordinator epoch for the marker.")] = None,
          bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None, timeout: SubTimeout = None,
          output: OutputOption = None) -> None:
    """Abort a hanging transaction: an ABORT marker on one partition (KIP-664)."""
    from pykafka_ops.services.transactions import abort_transaction

    name, index = _topic_partition(topic, partition)
    ids = {"producer-id": producer_id, "producer-epoch": producer_epoch, "coordinator-epoch": coordinator_epoch}
    given = [flag for flag, value in ids.items() if value is not None]
    if start_offset is not None and given:
        raise CliError("--start-offset cannot be combined with --producer-id, --producer-epoch or "
                       "--coordinator-epoch", USAGE)
    if start_offset is None and len(given) != len(ids):
        raise CliError("abort needs --start-offset, or all of --producer-id, --producer-epoch and "
                       "--coordinator-epoch", USAGE)
    conn = _connection(ctx, bootstrap_server, config, timeout, output)
    spec = abort_transaction(conn.settings(), name, index, start_offset=start_offset, producer_id=producer_id,
                             producer_epoch=producer_epoch, coordinator_epoch=coordinator_epoch)
    render(conn.output, [], {"aborted": asdict(spec)}, text=lambda: "")


@app.command("find-hanging")
@handle_errors
def find_hanging(ctx: typer.Context,
                 broker_id: Annotated[int | None, typer.Option(
                     "--broker-id", min=0, help="Look at the partitions this broker holds.")] = None,
                 topic: TopicOption = None, partition: PartitionOption = None,
                 max_transaction_timeout: Annotated[int, typer.Option(
                     "--max-transaction-timeout", min=1,
                     help="transaction.max.timeout.ms of the cluster, in minutes (default 15).")] = 15,
                 bootstrap_server: BootstrapOption = None, config: ClusterFileOption = None,
                 timeout: SubTimeout = None, output: OutputOption = None) -> None:
    """Find open transactions that no coordinator is completing (hanging)."""
    from pykafka_ops.services.transactions import find_hanging as find

    if (broker_id is None) == (topic is None):
        raise CliError("find-hanging needs exactly one of --broker-id or --topic", USAGE)
    if partition is not None and topic is None:
        raise CliError("--partition requires --topic", USAGE)
    conn = _connection(ctx, bootstrap_server, config, timeout, output)
    now, hanging = find(conn.settings(), broker_id=broker_id, topic=topic, partition=partition,
                        max_timeout_min=max_transaction_timeout)
    rows = [[h.topic, h.partition, h.producer.producer_id, h.producer.producer_epoch,
             _none(h.producer.coordinator_epoch), h.producer.current_txn_start_offset, h.producer.last_timestamp,
             h.duration_ms(now) // 60_000] for h in hanging]
    payload = [{"topic": h.topic, "partition": h.partition, **asdict(h.producer),
                "duration_ms": h.duration_ms(now)} for h in hanging]
    _show(conn, Table(HANGING_COLUMNS, rows, title="Hanging transactions"), payload)
