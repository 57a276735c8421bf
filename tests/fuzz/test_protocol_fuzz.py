"""T8: the protocol fuzzer against a fresh node (specs/reliability.md §3 and §5.3).

Seeded and time-boxed: ``PKO_FUZZ_SECONDS`` (default 20; CI keeps the default; longer runs by hand) and
``PKO_FUZZ_SEED`` (default ``runner.DEFAULT_SEED``). Every API and version the node advertises
is fuzzed (``fuzz.frames``); the node must never exit, every frame must be answered or its
connection closed within the timeout, the health check (ApiVersions + Produce + Fetch on a
fresh connection) must pass every 100 frames, and RSS and open descriptors must stay within
their bounds. A failure names the seed, the case and the frame in hex; replay it with
``cd tests && python -m fuzz.runner --replay HEX --bootstrap HOST:PORT``. The run's figures
are printed as one JSON line (``pytest -s`` shows it).

The same run targets the controller listener (``fuzz.listeners.CONTROLLER``) of a controller-only
node for ``PKO_FUZZ_CONTROLLER_SECONDS`` (default a third of ``PKO_FUZZ_SECONDS``: 7 s in CI):
every API its ApiVersions advertises (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot,
DescribeQuorum, BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, AlterPartition and the
forwarded admin requests), the Raft RPCs' valid bodies built by ``kraft_rpc.request_body``; its
health check is ApiVersions + DescribeQuorum, and after the run the node must lead its quorum again.
Replay a controller frame with ``--listener controller``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fuzz.listeners import CLIENT, CONTROLLER, CONTROLLER_APIS, Listener
from fuzz.node import watch_cluster
from fuzz.runner import DEFAULT_SEED, Fuzzer, Settings

SECONDS = float(os.environ.get("PKO_FUZZ_SECONDS", "20"))
CONTROLLER_SECONDS = float(os.environ.get("PKO_FUZZ_CONTROLLER_SECONDS", str(SECONDS / 3)))
SEED = int(os.environ.get("PKO_FUZZ_SEED", str(DEFAULT_SEED)))
#: ``PKO_FUZZ_CORPUS=0`` skips the fixed corpus (to see what the generated cases find alone).
CORPUS = os.environ.get("PKO_FUZZ_CORPUS", "1") != "0"


@pytest.mark.parametrize(("listener", "seconds"), [
    pytest.param(CLIENT, SECONDS, id="client"),
    pytest.param(CONTROLLER, CONTROLLER_SECONDS, id="controller"),
])
@pytest.mark.timeout(max(SECONDS, CONTROLLER_SECONDS) + 150)
def test_protocol_fuzz_keeps_the_node_alive_and_answering(tmp_path: Path, listener: Listener, seconds: float) -> None:
    with listener.start(tmp_path / "node") as cluster:
        def restart() -> int | None:
            cluster.restart(1)
            return cluster.status()[0].pid

        fuzzer = Fuzzer(watch_cluster(cluster, listener.port(cluster)),
                        Settings(seed=SEED, seconds=seconds, corpus=CORPUS), restart, listener, listener.bodies(cluster))
        stats = fuzzer.run()
        print(stats.as_json())

    culprits = [c for f in stats.failures for c in f.get("culprits", [])]
    summary = f"seed {SEED}: " + json.dumps(culprits or stats.failures)[:4000]
    assert stats.node_exits == 0, f"the node exited ({summary})"
    assert stats.hangs == 0, f"frames neither answered nor closed ({summary})"
    assert stats.health_failures == 0, f"health checks failed ({summary})"
    assert not stats.failures, summary
    assert stats.resources.get("rss_after") is not None, "the node's resources were not measured"
    assert not stats.pairs_missing, f"never reached the body decoders: {stats.pairs_missing}"
    assert stats.health_checks >= 10, f"only {stats.health_checks} health checks ran"
    assert stats.answers and stats.closes, "a run answers some frames and closes on others"
    assert not stats.node_log_errors, (f"seed {SEED}: ERROR lines (handler tracebacks) in the node log: "
                                       f"{json.dumps(stats.node_log_errors)[:4000]}")
    if listener is CONTROLLER:
        missing = CONTROLLER_APIS - set(fuzzer.advertised)
        assert not missing, f"the controller listener does not advertise {sorted(missing)}"
