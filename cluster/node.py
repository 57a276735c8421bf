"""A node process: one asyncio loop running the broker (and controller) until told to stop.

``pko node --config FILE --node-id N`` calls ``run_node``. SIGTERM and SIGINT stop it cleanly
(exit 0); a failure to start (port in use, incompatible data dir) is one log line and exit 1.
Logs go to stderr; the launcher sends them to ``<data_dir>/logs/node-N.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from pykafka_ops.config.cluster import ClusterConfig

log = logging.getLogger("pko.node")


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        stream=sys.stderr,
    )


async def _serve(cluster: ClusterConfig, node_id: int) -> None:
    from cluster.broker import Broker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = Broker(cluster, node_id)
    # a broker may wait long in start (for the quorum, for the controller to unfence it): a
    # signal meanwhile stops it there
    starting = asyncio.create_task(broker.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()  # a failure to start ends the process (run_node)
        await stopping
    else:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    log.info("stopping node %d", node_id)
    await broker.stop()


def run_node(cluster: ClusterConfig, node_id: int) -> None:
    """Run node ``node_id`` of ``cluster`` in the foreground; exits the process on failure."""
    from cluster.controller.metadata_image import MetadataReplayError
    from cluster.meta_properties import StorageFormatError
    from cluster.raft.log import LogError

    _configure_logging()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is optional on platforms without it
        runner = asyncio.run
    try:
        runner(_serve(cluster, node_id))
    except OSError as exc:  # a write with no file name (a full disk) names the node's data dir
        where = exc.filename or cluster.node_dir(node_id)
        log.error("node %d cannot start: %s (%s)", node_id, exc.strerror or exc, where)
        sys.exit(1)
    except (MetadataReplayError, LogError, StorageFormatError) as exc:  # data this code cannot read
        log.error("node %d cannot start: %s", node_id, exc)
        sys.exit(1)
    except Exception as exc:
        log.error("node %d failed: %s", node_id, exc, exc_info=True)
        sys.exit(1)
