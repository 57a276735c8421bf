"""The node under fuzz: its process (alive, memory, open files), its health, its log.

``NodeWatch`` follows one ``pko node`` process by PID: whether it still runs, its RSS and open
files, and the ERROR lines of its log (handler tracebacks are product defects even when the
node survives them). ``health_check`` is the probe run every 100 frames: on a new connection,
ApiVersions, a Produce (acks=1) of one record, a Fetch that reads it back. ``own_node`` starts a
fresh single node for runs outside pytest.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
from integration.integration_helpers import build_batch, fetch_raw, fetched_records, produce_raw

from cluster.pytest_plugin import TEST_CLUSTER_YAML, RunningCluster, start_cluster
from fuzz.frames import BATCH_TOPIC
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey

#: The topic of the health check's Produce and Fetch (not a name fuzzed requests use).
HEALTH_TOPIC = "pko-fuzz-health"
#: Address space the node may take beyond what it has mapped when the run starts: enough for
#: every legal request, small enough that a length-sized allocation fails on any host.
ADDRESS_SPACE_HEADROOM = 2 * 2**30


@dataclass(frozen=True)
class Usage:
    """Resources of the node process at one moment. Open files are split by what they are:
    sockets; segment and index files that still exist (each partition holds 3 per segment, so
    they follow the topics that fuzzed requests create and the segments they roll); files
    deleted on disk but still open (a leak); anything else (pipes, eventfds, ...)."""

    rss: int
    vms: int
    fds: int
    sockets: int
    log_files: int
    deleted_files: int

    @property
    def others(self) -> int:
        """Open descriptors that are neither sockets nor files of the data dir."""
        return self.fds - self.sockets - self.log_files - self.deleted_files

    @property
    def leak_prone(self) -> int:
        """Descriptors whose growth over a run means a leak: sockets, deleted files, others."""
        return self.fds - self.log_files


class NodeWatch:
    """One node process, by PID (``pid`` may be replaced after a restart)."""

    def __init__(self, host: str, port: int, pid: int | None, log_path: Path | None = None) -> None:
        self.host, self.port, self.pid = host, port, pid
        self.log_path = log_path
        self._log_start = log_path.stat().st_size if log_path is not None and log_path.exists() else 0

    def _process(self) -> psutil.Process | None:
        if self.pid is None:
            return None
        try:
            proc = psutil.Process(self.pid)
            return None if proc.status() == psutil.STATUS_ZOMBIE else proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        """Whether the node process still runs (True when its PID is unknown)."""
        return self.pid is None or self._process() is not None

    def usage(self) -> Usage | None:
        """RSS, VMS, open fds and sockets of the node, or None if it is gone or unknown."""
        proc = self._process()
        if proc is None:
            return None
        try:
            memory = proc.memory_info()
            targets = []
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                try:
                    targets.append(os.readlink(fd))
                except OSError:
                    continue  # closed meanwhile
        except (psutil.Error, OSError):
            return None
        deleted = sum(1 for t in targets if t.endswith(" (deleted)"))
        return Usage(memory.rss, memory.vms, len(targets), sum(1 for t in targets if t.startswith("socket:")),
                     sum(1 for t in targets if t.startswith("/") and not t.endswith(" (deleted)")), deleted)

    def limit_address_space(self, headroom: int = ADDRESS_SPACE_HEADROOM) -> int | None:
        """Set the node's RLIMIT_AS to its current VMS + ``headroom``, so that an allocation of
        what a lying length claims fails on any host (not only where overcommit refuses it)."""
        proc = self._process()
        if proc is None:
            return None
        limit = proc.memory_info().vms + headroom
        proc.rlimit(psutil.RLIMIT_AS, (limit, limit))
        return limit

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines the node logged since the watch began, native stack frames
        (indented lines of a Rust or C backtrace) left out."""
        kept = [line for line in self._log_text().splitlines() if not line.startswith("  ")]
        return "\n".join(kept[-lines:])

    def log_errors(self) -> dict[str, int]:
        """ERROR lines and fatal messages since the watch began, by signature (peer addresses
        removed, the exception's last traceback line appended): the count of each."""
        found: Counter[str] = Counter()
        lines = self._log_text().splitlines()
        for i, line in enumerate(lines):
            if " ERROR " not in line and "memory allocation of" not in line and "Fatal" not in line:
                continue
            message = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "<peer>", line.split(" ERROR ", 1)[-1])
            message = re.sub(r"\d{6,}|0x[0-9a-f]+", "<n>", message)
            cause = next((later for later in lines[i + 1: i + 60] if re.match(r"^[\w.]+(Error|Exception|error)\b", later)),
                         "")
            found[f"{message} | {cause[:160]}" if cause else message] += 1
        return dict(found)

    def _log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode("utf-8", "replace")


def pid_listening(port: int) -> int | None:
    """The PID of the process listening on TCP ``port`` of this host, if it can be seen."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except psutil.Error:
        return None
    return None


def advertised(host: str, port: int, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """API key → (min, max) version, as the node's ApiVersions v0 answer advertises them."""
    with WireClient(host, port, timeout) as client:
        answer = client.request(ApiKey.API_VERSIONS, 0, {})
    return {entry.api_key: (entry.min_version, entry.max_version) for entry in answer.api_keys}


def prepare_topics(host: str, port: int, timeout: float = 15.0) -> None:
    """Create the health-check topic and the bad-batch topic (1 partition each)."""
    with WireClient(host, port, timeout) as client:
        answer = client.request(ApiKey.CREATE_TOPICS, 7, {"timeout": 10_000, "validate_only": False, "topics": [
            {"name": name, "num_partitions": 1, "replication_factor": 1} for name in (HEALTH_TOPIC, BATCH_TOPIC)]})
    for topic in answer.topics:
        assert topic.error_code in (0, 36), f"cannot create {topic.name}: error {topic.error_code}"


def partition_count(host: str, port: int, timeout: float = 10.0) -> int:
    """Partitions of every topic the node knows (fuzzed requests create topics)."""
    with WireClient(host, port, timeout) as client:
        answer = client.request(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False})
    return sum(len(topic.partitions) for topic in answer.topics)


def health_check(host: str, port: int, timeout: float = 10.0) -> None:
    """On a new connection: ApiVersions, Produce (acks=1) of one record, a Fetch reading it
    back. Raises (AssertionError, WireError) when any step fails."""
    marker = uuid.uuid4().bytes
    with WireClient(host, port, timeout, client_id="fuzz-health") as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0, "ApiVersions failed"
        produced = produce_raw(client, HEALTH_TOPIC, 0, build_batch([marker]), acks=1)
        assert produced.error_code == 0, f"Produce answered error {produced.error_code}"
        fetched = fetch_raw(client, HEALTH_TOPIC, 0, produced.base_offset)
        assert fetched.error_code == 0, f"Fetch answered error {fetched.error_code}"
        values = [r.value for r in fetched_records(fetched) if r.offset == produced.base_offset]
        assert values == [marker], f"Fetch at {produced.base_offset} returned {values!r}"


def describe_quorum(client: WireClient) -> tuple[int, int, int]:
    """(top-level error, partition error, leader id) of a DescribeQuorum v0 of ``__cluster_metadata``."""
    answer = client.request(ApiKey.DESCRIBE_QUORUM, 0, {"topics": [
        {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    partition = answer.topics[0].partitions[0] if answer.topics and answer.topics[0].partitions else None
    if partition is None:
        return int(answer.error_code), -1, -1
    return int(answer.error_code), int(partition.error_code), int(partition.leader_id)


def controller_health_check(host: str, port: int, timeout: float = 10.0) -> None:
    """The health probe of a controller listener: on a new connection, ApiVersions, then a
    DescribeQuorum answered without a request-level error (a partition error NOT_LEADER_OR_FOLLOWER
    is legal while a fuzzed Vote or BeginQuorumEpoch has the quorum re-elect). Raises on failure."""
    with WireClient(host, port, timeout, client_id="fuzz-health") as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0, "ApiVersions failed"
        error, partition_error, _ = describe_quorum(client)
        assert error == 0 and partition_error in (0, 6), f"DescribeQuorum answered errors {error}/{partition_error}"


def quorum_leader(host: str, port: int, within_s: float = 15.0) -> int:
    """The leader DescribeQuorum names, waiting up to ``within_s`` for one (-1: none by then)."""
    deadline = time.monotonic() + within_s
    leader = -1
    while time.monotonic() < deadline:
        try:
            with WireClient(host, port, 5.0, client_id="fuzz-health") as client:
                error, partition_error, leader = describe_quorum(client)
            if error == 0 and partition_error == 0 and leader >= 0:
                return leader
        except Exception:  # noqa: BLE001,S110 - asked again until the deadline
            pass
        time.sleep(0.2)
    return leader


def own_node(tmp_dir: str | Path) -> RunningCluster:
    """A fresh single node for a fuzz run: the plugin's test settings, and no initial
    rebalance delay (a fuzzed JoinGroup would otherwise wait 3 s)."""
    return start_cluster(TEST_CLUSTER_YAML, tmp_dir, group_initial_rebalance_delay_ms=0)


def watch_cluster(cluster: RunningCluster, port: int | None = None) -> NodeWatch:
    """A NodeWatch on node 1 of ``cluster`` (log included), at its client ``port`` unless another
    of its listeners' is given."""
    (status,) = cluster.status()
    return NodeWatch(cluster.config.host, port or cluster.config.node(1).port, status.pid,
                     cluster.config.data_dir / "logs" / "node-1.log")
