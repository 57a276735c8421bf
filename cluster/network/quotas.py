"""ConnectionQuotas: ``max.connections`` and ``max.connections.per.ip`` (Kafka's ``ConnectionQuotas``).

A connection over either limit is closed as soon as it is accepted, as Kafka does for
``max.connections.per.ip`` (TooManyConnectionsException). Refusals are logged at most once per
``LOG_INTERVAL_S`` with how many there were, so a flood cannot flood the log too.

Connections also never take more than half of the node's file descriptors (``RLIMIT_NOFILE``):
the other half is for log segments and indexes, so a connection flood cannot stop the node from
opening its own files.

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter

log = logging.getLogger(__name__)

#: Seconds between two log lines about refused connections.
LOG_INTERVAL_S = 10.0


def fd_connection_budget() -> int:
    """Half of the soft RLIMIT_NOFILE (after raising it to the hard limit, as servers do)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return max(1, soft // 2) if soft != resource.RLIM_INFINITY else 1 << 30


class ConnectionQuotas:
    """Counts open connections per client address and in total."""

    def __init__(self, max_connections: int, max_per_ip: int) -> None:
        self.max_connections = min(max_connections, fd_connection_budget())
        self.max_per_ip = max_per_ip
        self.total = 0
        self._per_ip: Counter[str] = Counter()
        self._refused = 0
        self._last_log = float("-inf")

    def admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (and nothing counted) if a limit is reached."""
        if self._per_ip[ip] >= self.max_per_ip:
            self._log_refusal(f"max.connections.per.ip={self.max_per_ip} reached for {ip}")
            return False
        if self.total >= self.max_connections:
            self._log_refusal(f"max.connections={self.max_connections} reached")
            return False
        self._per_ip[ip] += 1
        self.total += 1
        return True

    def release(self, ip: str) -> None:
        """An admitted connection from ``ip`` closed."""
        self.total -= 1
        self._per_ip[ip] -= 1
        if not self._per_ip[ip]:
            del self._per_ip[ip]

    def _log_refusal(self, reason: str) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._last_log >= LOG_INTERVAL_S:
            log.warning("refused %d connection(s) since the last report: %s", self._refused, reason)
            self._refused = 0
            self._last_log = now
