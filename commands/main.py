"""The root `pko` app: command groups are imported only when invoked, so `pko --help` stays fast.

A usage error anywhere below it (a bad flag, a value out of range, an unknown command) is one
line on stderr, ``pko: <what is wrong> (see '<command> -h')``, and exit 2, like every other pko
error; `pko` alone, or a group alone, still prints its help.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from pykafka_ops import __version__

#: command name → (module, attribute, one-line help). Each module exposes a Typer app or command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "cluster": ("commands.cluster", "app", "Start, stop and inspect a cluster defined in YAML."),
    "demo": ("commands.demo", "app", "Start the default cluster and walk through keyed orders."),
    "node": ("commands.node", "app", "Run one node in the foreground (what `cluster up` spawns)."),
    "topics": ("commands.topics", "app", "Create, list, describe, alter or delete topics (kafka-topics)."),
    "configs": ("commands.configs", "app", "Describe or alter topic and broker configs (kafka-configs)."),
    "produce": ("commands.produce", "app", "Produce records from stdin or files (console producer, kcat -P)."),
    "consume": ("commands.consume", "app", "Consume records to stdout (console consumer, kcat -C)."),
    "offsets": ("commands.offsets", "app", "Offsets of partitions by time: earliest, latest, … (GetOffsetShell)."),
    "leader-election": ("commands.leader_election", "app",
                        "Elect preferred or unclean partition leaders (kafka-leader-election)."),
    "reassign": ("commands.reassign", "app",
                 "Move partition replicas between brokers and log dirs (kafka-reassign-partitions)."),
    "perf": ("commands.perf", "app", "Producer and consumer performance tests (kafka-*-perf-test)."),
    "dump-log": ("commands.dump_log", "app", "Dump segment files offline: batches, records, indexes (kafka-dump-log)."),
    "consumer-groups": ("commands.consumer_groups", "app",
                        "List, describe, delete consumer groups; reset offsets (kafka-consumer-groups)."),
    "groups": ("commands.consumer_groups", "app", "Alias of consumer-groups."),
    "skew": ("commands.skew", "app", "Hot partitions, the keys behind them, mixed partitioners, what-if (key skew)."),
    "monitor": ("commands.monitor", "app", "Live TUI: lag in records and seconds, trends, status, hot partitions, brokers."),
    "lag": ("commands.lag", "app", "Consumer-group lag, rates and Burrow-style status, headless (pko monitor's rows)."),
    "transactions": ("commands.transactions", "app",
                     "List, describe and abort transactions; find hanging ones (kafka-transactions)."),
    "acls": ("commands.acls", "app", "Add, list or remove ACLs (kafka-acls)."),
    "doctor": ("commands.doctor", "app", "Find the pitfalls (hot keys, lag, durability …) with evidence and the fix."),
    "plan": ("commands.plan", "app", "Plan capacity from measurements: partition counts (plan partitions)."),
}


#: click's UsageError (typer vendors click; reached through a public subclass).
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _one_line(error: Any) -> NoReturn:
    """Show a click usage error as one line and exit 2 (``pko`` alone keeps its help)."""
    if type(error).__name__ == "NoArgsIsHelpError":
        raise error
    hint = f" (see '{error.ctx.command_path} -h')" if error.ctx is not None else ""
    typer.echo(f"pko: {error.format_message()}{hint}", err=True)
    raise typer.Exit(2)


class LazyGroup(TyperGroup):
    """A group whose subcommands are imported on first use; help text comes from COMMANDS.
    Usage errors of the root and of every command below it are one line (``_one_line``)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _USAGE_ERROR as error:
            _one_line(error)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as error:
            _one_line(error)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _help = entry
        target = getattr(importlib.import_module(module_name), attr)
        command = typer.main.get_command(target)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_m, _a, help_text) in COMMANDS.items()])


app = typer.Typer(
    cls=LazyGroup,
    name="pko",
    help="pykafka-ops: run a Kafka-compatible cluster from YAML, and operate any Kafka cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pko {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """pykafka-ops: run a Kafka-compatible cluster from YAML, and operate any Kafka cluster."""


def main() -> None:
    """Console-script entry point for `pko` and `pykafka-ops`."""
    sys.exit(app(prog_name="pko"))


if __name__ == "__main__":
    main()
