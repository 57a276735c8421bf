"""Three nodes in three network namespaces, each with its own address (issue 14 item 5).

A cluster can span machines: each node names its own ``host`` (the address it binds and
advertises) and runs as ``pko node --config FILE --node-id N`` where that address lives. Here the
"machines" are network namespaces this test creates, ``pko-<pid>-<tag>-n1`` … ``-n3``, each with
one veth whose other end is a port of a bridge in a fourth namespace (``…-hub``). The hub holds
the bridge's address (.100) and is where the client runs, so no node is co-located with it and
nothing is added to the root namespace: the addresses (10.200.<random>.0/24) exist only inside
the namespaces, which have no route anywhere else.

The nodes are started the way an operator would on separate hosts: storage formatted once (the
cluster id written to every node dir, ``kafka-storage format``), then ``ip netns exec <ns> pko
node --config <yaml> --node-id N`` for each, port 9092 and controller port 9093 on every node. A
client process in the hub (this file run as a script) waits until Metadata lists the three
brokers at their namespace addresses, creates a 6-partition topic, produces to every partition
with confluent-kafka (idempotent, acks=all), consumes every record back in a group and commits,
and asks every broker for Metadata; it prints what it saw as one JSON line, which the test
checks. Cleanup (finally): node processes killed by PID, namespaces deleted (their veths and the
bridge go with them).

Needs root and a working ``ip netns``; skipped (with the reason) otherwise. CI runs as root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration_helpers import wait_until

#: Port of every node's client listener, and of its controller listener.
PORT = 9092
CONTROLLER_PORT = 9093
TOPIC = "netns-roundtrip"
PARTITIONS = 6
RECORDS_PER_PARTITION = 20
GROUP = "netns-group"
#: Seconds the client process may take overall, and a node to stop after SIGTERM.
CLIENT_TIMEOUT_S = 40.0
STOP_GRACE_S = 3.0


# --- namespaces ----------------------------------------------------------------------------------


def _ip(*args: str) -> None:
    """Run ``ip args``; a failure names the command and what ip said."""
    done = subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def _netns_unusable() -> str | None:
    """Why this machine cannot run the test (not root, no ip, no netns), or None."""
    if os.geteuid() != 0:
        return "needs root (creates network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = f"pko-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns is not usable here: {exc}"
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        _ip("netns", "del", probe)
    return None


class Lab:
    """Namespaces ``<prefix>-hub`` (a bridge at .100, the client) and ``<prefix>-n1..n3`` (a node
    at .1, .2, .3), all on 10.200.<subnet>.0/24."""

    def __init__(self) -> None:
        self.prefix = f"pko-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.subnet = random.randrange(256)
        self.hub = f"{self.prefix}-hub"
        self.created: list[str] = []

    def node_ns(self, node: int) -> str:
        return f"{self.prefix}-n{node}"

    def address(self, last: int) -> str:
        return f"10.200.{self.subnet}.{last}"

    def create(self, nodes: int) -> None:
        for ns in (self.hub, *(self.node_ns(n) for n in range(1, nodes + 1))):
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "addr", "add", f"{self.address(100)}/24", "dev", "br0")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for n in range(1, nodes + 1):
            # created in the hub with its peer straight in the node's namespace: no name in the root one
            _ip("-n", self.hub, "link", "add", f"v{n}", "type", "veth", "peer", "name", "eth0",
                "netns", self.node_ns(n))
            _ip("-n", self.hub, "link", "set", f"v{n}", "master", "br0")
            _ip("-n", self.hub, "link", "set", f"v{n}", "up")
            _ip("-n", self.node_ns(n), "addr", "add", f"{self.address(n)}/24", "dev", "eth0")
            _ip("-n", self.node_ns(n), "link", "set", "eth0", "up")

    def delete(self) -> list[str]:
        """Delete every namespace created (their veths and bridge with them); the failures."""
        failures = []
        for ns in reversed(self.created):
            try:
                _ip("netns", "del", ns)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
        self.created.clear()
        return failures


@contextlib.contextmanager
def lab(nodes: int) -> Iterator[Lab]:
    made = Lab()
    try:
        made.create(nodes)
        yield made
    finally:
        failures = made.delete()
        assert not failures, failures


# --- nodes ---------------------------------------------------------------------------------------


def _cluster_yaml(net: Lab, data_dir: Path, nodes: int) -> dict[str, Any]:
    from cluster.pytest_plugin import MULTI_NODE_TEST_SETTINGS

    return {
        "cluster": {"name": "netns", "data_dir": str(data_dir)},
        "nodes": [{"id": n, "host": net.address(n), "port": PORT, "controller_port": CONTROLLER_PORT}
                  for n in range(1, nodes + 1)],
        "broker": {**MULTI_NODE_TEST_SETTINGS, "num.partitions": 3, "default.replication.factor": 1,
                   "min.insync.replicas": 1, "auto.create.topics.enable": False,
                   "group.initial.rebalance.delay.ms": 0},
    }


@contextlib.contextmanager
def nodes_in(net: Lab, config_path: Path, nodes: int,
             stopped: dict[int, str]) -> Iterator[dict[int, subprocess.Popen[bytes]]]:
    """Format the node dirs, start ``pko node`` for each node in its namespace; stop them by PID
    (how each ended goes to ``stopped``)."""
    from cluster.launcher_process import log_path, node_command
    from cluster.meta_properties import format_storage
    from pykafka_ops.config.cluster import load

    config = load(config_path)
    format_storage(config)  # kafka-storage format: one cluster id in every node dir
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for n in range(1, nodes + 1):
            log = log_path(config, n)
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                # ip netns exec execs the command: the PID is the node's
                procs[n] = subprocess.Popen(["ip", "netns", "exec", net.node_ns(n), *node_command(config, n)],
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        yield procs
    finally:
        stopped.update(_stop(procs))


def _stop(procs: dict[int, subprocess.Popen[bytes]]) -> dict[int, str]:
    """SIGTERM every node (a clean stop), SIGKILL what is left after STOP_GRACE_S; by PID. How
    each ended: its exit code after SIGTERM and the seconds it took, or "KILL"."""
    began = time.monotonic()
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    ended: dict[int, str] = {}
    while len(ended) < len(procs) and time.monotonic() < began + STOP_GRACE_S:
        for n, proc in procs.items():
            if n not in ended and proc.poll() is not None:
                ended[n] = f"exit {proc.returncode} after {time.monotonic() - began:.2f} s"
        time.sleep(0.02)
    for n, proc in procs.items():
        if n not in ended:
            proc.kill()
            proc.wait(timeout=5)
            ended[n] = f"KILL after {STOP_GRACE_S:g} s"
    return ended


def _logs(config_path: Path, nodes: int) -> str:
    from cluster.launcher_process import log_path
    from pykafka_ops.config.cluster import load

    config = load(config_path)
    tails = []
    for n in range(1, nodes + 1):
        path = log_path(config, n)
        lines = path.read_text(errors="replace").splitlines()[-15:] if path.exists() else ["(no log)"]
        tails.append(f"--- node {n} ({path}) ---\n" + "\n".join(lines))
    return "\n".join(tails)


# --- the test ------------------------------------------------------------------------------------


def test_three_nodes_in_three_network_namespaces(tmp_path: Path) -> None:
    reason = _netns_unusable()
    if reason is not None:
        pytest.skip(reason)
    nodes = 3
    started = time.monotonic()
    with lab(nodes) as net:
        config_path = tmp_path / "cluster.yaml"
        config_path.write_text(yaml.safe_dump(_cluster_yaml(net, tmp_path / "data", nodes), sort_keys=False))
        stopped: dict[int, str] = {}
        with nodes_in(net, config_path, nodes, stopped) as procs:
            bootstrap = ",".join(f"{net.address(n)}:{PORT}" for n in range(1, nodes + 1))
            client = subprocess.run(
                ["ip", "netns", "exec", net.hub, sys.executable, str(Path(__file__).resolve()), "--bootstrap",
                 bootstrap, "--deadline-s", str(CLIENT_TIMEOUT_S - 5)],
                check=False, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
            exited = {n: proc.poll() for n, proc in procs.items() if proc.poll() is not None}
            context = (f"client exit {client.returncode}\nstderr:\n{client.stderr[-3000:]}\n"
                       f"nodes exited: {exited}\n{_logs(config_path, nodes)}")
            assert client.returncode == 0, context
            seen = json.loads(client.stdout.strip().splitlines()[-1])
            assert not exited, context
    seen["total_s"] = round(time.monotonic() - started, 2)
    seen["stopped"] = stopped
    print(json.dumps(seen))
    expected_brokers = {str(n): [net.address(n), PORT] for n in range(1, nodes + 1)}
    # every broker, asked for Metadata, lists the three at their namespace addresses
    assert seen["brokers_by_node"] == dict.fromkeys(expected_brokers, expected_brokers), context
    assert len(set(seen["cluster_ids"])) == 1 and seen["cluster_ids"][0], seen["cluster_ids"]
    assert set(seen["controller_ids"]) <= {1, 2, 3}
    # one replica per partition, spread over the brokers: each leads some
    assert sorted(seen["leaders"]) == [str(p) for p in range(PARTITIONS)]
    assert set(seen["leaders"].values()) == {1, 2, 3}, seen["leaders"]
    want = {str(p): RECORDS_PER_PARTITION for p in range(PARTITIONS)}
    assert seen["acked"] == want
    assert seen["consumed"] == want
    assert seen["in_order"] is True
    assert seen["committed"] == want


# --- the client (run inside the hub namespace) --------------------------------------------------


def _metadata(host: str, port: int, topics: list[str] | None) -> Any:
    from pykafka_ops.client.wire import WireClient
    from pykafka_ops.protocol.api_keys import ApiKey

    with WireClient(host, port, timeout=2.0) as client:
        return client.request(ApiKey.METADATA, 12, {
            "topics": None if topics is None else [{"name": t, "topic_id": None} for t in topics],
            "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})


def client_main(argv: list[str]) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    deadline = began + args.deadline_s
    addresses = [(host, int(port)) for host, _, port in (s.rpartition(":") for s in args.bootstrap.split(","))]
    figures: dict[str, Any] = {}

    def all_registered() -> bool:
        return all(len(_metadata(host, port, []).brokers) == len(addresses) for host, port in addresses)

    wait_until(all_registered, max(deadline - time.monotonic(), 0), "every broker to list every broker")
    figures["cluster_ready_s"] = round(time.monotonic() - began, 2)

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], operation_timeout=10, request_timeout=15)[TOPIC].result(20)

    def leaders_everywhere() -> dict[str, int] | None:
        seen = None
        for host, port in addresses:
            (topic,) = _metadata(host, port, [TOPIC]).topics
            leaders = {str(p.partition_index): p.leader_id for p in topic.partitions}
            if topic.error_code or len(leaders) != PARTITIONS or -1 in leaders.values():
                return None
            if seen is not None and leaders != seen:
                return None
            seen = leaders
        return seen

    figures["leaders"] = wait_until(leaders_everywhere, max(deadline - time.monotonic(), 0),
                                    f"{TOPIC}'s leaders in every broker's Metadata")
    figures["topic_ready_s"] = round(time.monotonic() - began, 2)

    acked: dict[str, int] = dict.fromkeys(map(str, range(PARTITIONS)), 0)
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked[str(msg.partition())] += 1

    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    for p in range(PARTITIONS):
        for i in range(RECORDS_PER_PARTITION):
            producer.produce(TOPIC, f"p{p}-{i}".encode(), partition=p, on_delivery=delivered)
    left = producer.flush(max(1.0, deadline - time.monotonic()))
    if left or errors:
        raise RuntimeError(f"produce: {left} undelivered, errors {errors[:5]}")
    figures["acked"] = acked
    figures["produced_s"] = round(time.monotonic() - began, 2)

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values: dict[str, list[str]] = {str(p): [] for p in range(PARTITIONS)}
    while sum(map(len, values.values())) < PARTITIONS * RECORDS_PER_PARTITION and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise RuntimeError(f"consume: {msg.error()}")
        values[str(msg.partition())].append(msg.value().decode())
    figures["consumed"] = {p: len(v) for p, v in values.items()}
    figures["in_order"] = all(v == [f"p{p}-{i}" for i in range(RECORDS_PER_PARTITION)] for p, v in values.items())
    consumer.commit(offsets=[TopicPartition(TOPIC, p, RECORDS_PER_PARTITION) for p in range(PARTITIONS)],
                    asynchronous=False)
    committed = consumer.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    figures["committed"] = {str(tp.partition): tp.offset for tp in committed}
    consumer.close()
    figures["consumed_s"] = round(time.monotonic() - began, 2)

    by_node: dict[str, dict[str, list[Any]]] = {}
    cluster_ids, controller_ids = [], []
    for n, (host, port) in enumerate(addresses, start=1):
        answer = _metadata(host, port, None)
        by_node[str(n)] = {str(b.node_id): [b.host, b.port] for b in answer.brokers}
        cluster_ids.append(answer.cluster_id)
        controller_ids.append(answer.controller_id)
    figures.update(brokers_by_node=by_node, cluster_ids=cluster_ids, controller_ids=controller_ids)
    print(json.dumps(figures))


if __name__ == "__main__":
    client_main(sys.argv[1:])
