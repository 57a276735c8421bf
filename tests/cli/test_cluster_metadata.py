"""`pko cluster metadata` (kafka-metadata-shell's spirit): a node's committed metadata, read offline
from its data dir, while the node runs and after it stopped; the real `pko` binary, a real node."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from group_clients import create_topic, unique

from cluster.pytest_plugin import ClusterFactory
from pykafka_ops.client.wire import WireClient

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]


def pko(*args: object) -> subprocess.CompletedProcess[str]:
    """The real `pko` binary; stdout is a pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("PKO_BOOTSTRAP", "PKO_DEBUG")}
    return subprocess.run([*PKO, *map(str, args)], check=False, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)


def _topic_id(bootstrap: str, name: str) -> str:
    """The topic id `pko topics --describe` shows (Kafka's base64 form)."""
    result = pko("topics", "--describe", "--topic", name, "-b", bootstrap)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("TopicId: ")[1].split("\t")[0]


def _files(directory: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


def test_metadata_shows_topics_partitions_and_works_after_the_node_stops(
        pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(num_partitions=1)
    bootstrap, port = cluster.bootstrap_servers, cluster.config.nodes[0].port
    name = unique("meta")
    create_topic(bootstrap, name, 3)
    altered = pko("configs", "--alter", "--topic", name, "--add-config", "retention.ms=86400000", "-b", bootstrap)
    assert altered.returncode == 0, altered.stderr
    topic_id = _topic_id(bootstrap, name)
    with WireClient("127.0.0.1", port, 10) as client:
        cluster_id = client.request(60, 0, {}).cluster_id

    running = pko("cluster", "metadata", "-c", cluster.config_path)
    assert running.returncode == 0, running.stderr
    lines = running.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["offset", "cluster.id", "next.producer.id", "broker"]
    assert int(lines[0].split()[1]) > 0 and lines[1] == f"cluster.id {cluster_id}"
    assert re.fullmatch(rf"broker 1 host=127\.0\.0\.1 port={port} rack=- epoch=\d+ fenced=false", lines[3])
    mine = [line for line in lines if line.startswith(f"topic {name} ")]
    assert mine == [f"topic {name} id={topic_id} internal=false partitions=3",
                    f"topic {name} config retention.ms=86400000",
                    *(f"topic {name} partition {p} leader=1 leaderEpoch=0 partitionEpoch=0 replicas=1 isr=1"
                      for p in range(3))]
    topics = [line.split()[1] for line in lines if line.startswith("topic ")]
    assert topics == sorted(topics)  # diff-friendly: a stable order

    as_json = pko("cluster", "metadata", "-c", cluster.config_path, "--node", "1", "--output", "json")
    assert as_json.returncode == 0, as_json.stderr
    image = json.loads(as_json.stdout)
    assert (image["cluster_id"], image["offset"]) == (cluster_id, int(lines[0].split()[1]))
    assert image["brokers"] == [{"id": 1, "host": "127.0.0.1", "port": port, "rack": None,
                                 "epoch": int(lines[3].split("epoch=")[1].split()[0]), "fenced": False}]
    (topic,) = [t for t in image["topics"] if t["name"] == name]
    assert topic == {"name": name, "topic_id": topic_id, "internal": False, "configs": {"retention.ms": 86400000},
                     "partitions": [{"partition": p, "leader": 1, "leader_epoch": 0, "partition_epoch": 0,
                                     "replicas": [1], "isr": [1]} for p in range(3)]}

    cluster.down()
    data = cluster.config.node_dir(1)
    before = _files(data)
    stopped = pko("cluster", "metadata", "-c", cluster.config_path)
    assert stopped.returncode == 0, stopped.stderr
    # a controlled shutdown fenced the broker: its partitions have no leader until it is back
    fenced = running.stdout.replace("fenced=false", "fenced=true").replace(" leader=1 ", " leader=-1 ")
    assert _without_epochs(stopped.stdout) == _without_epochs(fenced)
    assert _files(data) == before  # read-only: nothing written, created or touched


def _without_epochs(text: str) -> list[str]:
    """The lines after the offset, without partition and leader epochs (a fence changes them)."""
    return re.sub(r" leaderEpoch=\d+ partitionEpoch=\d+", "", text).splitlines()[1:]


def test_metadata_yaml_output(pko_cluster_factory: ClusterFactory) -> None:
    import yaml

    cluster = pko_cluster_factory()
    result = pko("cluster", "metadata", "-c", cluster.config_path, "--output", "yaml")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["brokers"][0]["id"] == 1


def test_unknown_node_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("cluster: {name: meta, data_dir: data}\nnodes:\n  - {id: 1, port: 1}\n")
    result = pko("cluster", "metadata", "-c", path, "--node", "7")
    assert result.returncode == 2
    assert result.stderr == f"pko: --node: no node 7 in {path} (nodes: 1)\n"


def test_a_node_that_never_started_is_one_line_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("cluster: {name: meta, data_dir: data}\nnodes:\n  - {id: 1, port: 1}\n")
    result = pko("cluster", "metadata", "-c", path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "node 1 has no metadata log at" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing created


@pytest.mark.parametrize("args", [["--bogus"], ["--output", "xml"], ["--node", "one"]])
def test_bad_flags_are_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = pko("cluster", "metadata", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("pko: ")
