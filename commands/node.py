"""`pko node`: run one node of a cluster in the foreground (what `pko cluster up` spawns)."""

from __future__ import annotations

from pathlib import Path

import typer

from commands._exit import handle_errors

app = typer.Typer(add_completion=False)


@app.command()
@handle_errors
def node(
    node_id: int = typer.Option(..., "--node-id", help="Which node of the cluster file to run."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Cluster YAML file (default: the built-in single-node cluster)."
    ),
) -> None:
    """Run one node (broker and/or controller) until SIGTERM or Ctrl-C."""
    from cluster.node import run_node
    from pykafka_ops.config.cluster import load

    cluster_config = load(config)
    try:
        cluster_config.node(node_id)
    except KeyError as exc:
        raise typer.BadParameter(str(exc).strip("'"), param_hint="--node-id") from None
    run_node(cluster_config, node_id)
