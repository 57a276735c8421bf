"""`pko demo`: start the default cluster (if needed) and run the design document's orders flow."""

from __future__ import annotations

from pathlib import Path

import typer

from commands._exit import handle_errors

app = typer.Typer(add_completion=False)


@app.command()
@handle_errors
def demo(
    config: Path | None = typer.Option(None, "--config", "-c", help="Cluster YAML (default: the built-in one)."),
    orders: int = typer.Option(24, "--orders", min=1, max=100_000, help="How many orders to produce."),
    customers: int = typer.Option(6, "--customers", min=1, max=1000, help="How many distinct customer keys."),
    wait: float = typer.Option(30.0, "--wait", help="Seconds to wait for the cluster to start."),
) -> None:
    """Start the cluster, create `orders`, produce keyed orders by customer id, read them back."""
    from cluster import launcher
    from pykafka_ops.config.cluster import load
    from pykafka_ops.services.demo import GROUP, run_orders_demo, run_orders_worker

    cluster_config = load(config)
    running = all(n.state == "running" for n in launcher.status(cluster_config, cpu_interval_s=0))
    if running:
        typer.echo(f"Cluster '{cluster_config.name}' is already running at {cluster_config.bootstrap_servers}.")
    else:
        result = launcher.up(cluster_config, wait_s=wait)
        typer.echo(f"Started cluster '{result.cluster}' at {result.bootstrap_servers} in {result.ready_after_s:.1f} s "
                   f"(data in {cluster_config.data_dir}).")
    report = run_orders_demo(cluster_config.bootstrap_servers, orders=orders, customers=customers)
    created = "created" if report.created_topic else "exists"
    typer.echo(f"Topic '{report.topic}' {created}.\n")
    typer.echo(f"Produced {len(report.produced)} orders keyed by customer id (acks=all, idempotent producer):")
    for customer, partitions in sorted(report.partitions_by_customer.items()):
        count = sum(1 for o in report.produced if o.customer_id == customer)
        typer.echo(f"  {customer:<12} → partition {', '.join(map(str, sorted(partitions)))}  ({count} orders)")
    typer.echo("\nRead back partition by partition:")
    for partition, consumed in report.consumed.items():
        typer.echo(f"  partition {partition}: offsets {consumed[0].offset}-{consumed[-1].offset}")
        for order in consumed:
            typer.echo(f"    {order.offset:>6}  {order.order_id}  {order.customer_id:<12} {order.amount:>8.2f}")
    one_partition = all(len(p) == 1 for p in report.partitions_by_customer.values())
    if one_partition and report.order_preserved:
        typer.echo("\nEach customer's orders went to one partition and came back in the order produced.")
    else:
        typer.echo("\nWarning: a customer's orders were split or reordered.", err=True)
        raise typer.Exit(1)
    processed, described = run_orders_worker(cluster_config.bootstrap_servers, report.produced,
                                              lambda: describe_group(cluster_config.bootstrap_servers))
    typer.echo(f"\nConsumer group '{GROUP}' processed {processed} records of '{report.topic}', committing each one "
               "after processing it (at-least-once):")
    typer.echo(f"$ pko consumer-groups --describe --group {GROUP}")
    typer.echo(described, nl=False)
    hint = f" -c {config}" if config else ""
    groups = f"pko consumer-groups -b {cluster_config.bootstrap_servers} --list --state"
    typer.echo(f"\nNext: `pko cluster status{hint}`, `{groups}`, `pko cluster down{hint}`.")


def describe_group(bootstrap_servers: str) -> str:
    """What `pko consumer-groups --describe --group orders-worker` prints (Kafka's layout)."""
    from commands.consumer_groups import run_with_admin
    from commands.consumer_groups_text import describe_offsets
    from pykafka_ops.client.connection import ClientSettings
    from pykafka_ops.services.demo import GROUP
    from pykafka_ops.services.lag import describe_group_lag

    return describe_offsets(run_with_admin(ClientSettings(bootstrap_servers),
                                           lambda admin: describe_group_lag(admin, [GROUP])))
