"""Connection and output options, defined once and declared on each command (as the Kafka tools do)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands._render import Output

BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap-server", "-b", envvar="PKO_BOOTSTRAP", show_envvar=True,
                 help="host:port[,host:port…] (default: $PKO_BOOTSTRAP, else the running default local cluster)."),
]
CommandConfigOption = Annotated[
    Path | None,
    typer.Option("--command-config", exists=True, dir_okay=False,
                 help="Client properties file (Java or librdkafka names), e.g. for SASL/TLS."),
]
ClusterFileOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", exists=True, dir_okay=False,
                 help="Cluster YAML: use that cluster when it runs locally and no bootstrap server is given."),
]
TimeoutOption = Annotated[
    int, typer.Option("--timeout", min=1, help="Timeout for admin requests, in ms (as the Kafka tools).")
]
OutputOption = Annotated[
    Output | None,
    typer.Option("--output", case_sensitive=False,
                 help="text (the Kafka tool's layout), table, json, yaml or csv; default: table on a TTY, else text."),
]
