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
    exactly_once: bool = typer.Option(
        False, "--exactly-once", help="Then copy `orders` to `orders-validated` in transactions, SIGKILL the "
                                      "copier part-way, and compare with the at-least-once copy."),
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
    if exactly_once:
        show_exactly_once(cluster_config.bootstrap_servers, {o.order_id for o in report.produced})
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


def show_exactly_once(bootstrap_servers: str, order_ids: set[str]) -> None:
    """Run both copier flows under a SIGKILL and print them side by side; exit 1 unless the
    exactly-once output equals the input."""
    from pykafka_ops.services.demo_eos import BATCH, SOURCE, VALIDATOR, compare_flows

    typer.echo(f"\nConsume-transform-produce from '{SOURCE}', {BATCH} orders per batch, the copier killed with "
               "SIGKILL part-way (between producing a batch and committing it) and restarted:")
    results = compare_flows(bootstrap_servers, order_ids)
    typer.echo(f"  {'FLOW':<15}{'OUTPUT-TOPIC':<32}{'INPUT':>6}{'OUTPUT':>8}{'DISTINCT':>10}{'DUPLICATES':>12}"
               f"{'MISSING':>9}{'KILLED-AFTER':>14}")
    for r in results:
        typer.echo(f"  {r.guarantee:<15}{r.sink:<32}{r.input:>6}{r.output:>8}{r.distinct:>10}{r.duplicates:>12}"
                   f"{r.missing:>9}{r.killed_after:>14}")
    at_least_once, exact = results
    typer.echo(f"\nAt-least-once (flush, then commit the offsets): the killed batch was copied again "
               f"({at_least_once.duplicates} duplicates).")
    if not exact.exact:
        typer.echo(f"Warning: the exactly-once output is not the input ({exact.output} records, {exact.distinct} "
                   f"distinct of {exact.input}).", err=True)
        raise typer.Exit(1)
    typer.echo(f"Exactly-once (transactional.id {VALIDATOR}, read_committed, offsets sent in each transaction): "
               f"output == input, {exact.output} orders, no duplicates: the restarted copier fenced the killed one "
               "and its open transaction was aborted.")
