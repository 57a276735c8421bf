"""`pko monitor`: the live TUI (``tui.app.MonitorApp``) over any Kafka cluster.

    pko monitor [-b B] [--refresh SECONDS] [--window N] [--max-record-reads N] [-c CLUSTER.yaml] [--no-alerts]

The app gets a ``MonitorServices`` over a ``KafkaClusterSource``: it never talks to the cluster
itself. Node processes (PID, CPU, RSS) are shown for a cluster started by `pko cluster up`: the
one of ``-c`` (which also gives the bootstrap servers when ``-b`` is not given), else the
default local cluster when it serves the bootstrap servers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands._exit import handle_errors
from commands._options import BootstrapOption, CommandConfigOption, TimeoutOption

app = typer.Typer(add_completion=False, rich_markup_mode=None)


@app.command()
@handle_errors
def monitor(
    refresh: Annotated[float, typer.Option("--refresh", min=0, metavar="SECONDS",
                                           help="Seconds between polls; 0 = only when r is pressed.")] = 2.0,
    window: Annotated[int, typer.Option("--window", min=2, metavar="N",
                                        help="Polls in the status window (Burrow's rules look at N polls).")] = 5,
    max_record_reads: Annotated[int, typer.Option(
        "--max-record-reads", min=0, metavar="N",
        help="Records read per poll for time lag (the rest: cache or interpolation).")] = 20,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", exists=True, dir_okay=False,
        help="Cluster YAML of a `pko cluster up` cluster: monitor it (without -b) and show its node processes.")] = None,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Start with the bell and status alerts off (a toggles).")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 5000,
) -> None:
    """Live monitor: lag in records and seconds, trends, status, hot partitions, brokers, tail."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.models.monitor import MonitorOptions
    from pykafka_ops.services.monitor import MonitorServices
    from pykafka_ops.services.processes import find_state_file
    from pykafka_ops.services.snapshot import KafkaClusterSource
    from tui.app import MonitorApp

    settings = client_settings(bootstrap_server, command_config, timeout, config)
    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused or no route to host")
    source = KafkaClusterSource(settings, state_file=find_state_file(settings.bootstrap_servers, config))
    services = MonitorServices(source, MonitorOptions(window=window, max_record_reads=max_record_reads))
    try:
        MonitorApp(services, refresh_s=refresh, alerts=not no_alerts).run()
    finally:
        services.close()
