"""BrokerHeartbeatManager (Kafka's): when the active controller last heard from each broker.

Sans-io: every method takes the time (``now_ms``, a monotonic clock) from its caller, so the
fencing rule is a unit test with a fake clock. A broker whose last heartbeat is older than
``broker.session.timeout.ms`` has an expired session: the controller fences it. On becoming the
active controller, every unfenced broker gets a full session to reach it (Kafka's
``BrokerHeartbeatManager`` starts them at activation) — but counts as not heard yet, so a broker
process that restarted meanwhile may register again at once.

Concurrency: the controller's, on the node's event loop; not persisted (the next active
controller starts afresh, as Kafka's).
"""

from __future__ import annotations

from collections.abc import Iterable


class BrokerHeartbeatManager:
    """Last contact per broker and the sessions that expired."""

    def __init__(self, session_timeout_ms: int) -> None:
        self.session_timeout_ms = session_timeout_ms
        self._last_contact: dict[int, int] = {}
        self._heard: set[int] = set()

    def activate(self, unfenced: Iterable[int], now_ms: int) -> None:
        """This controller just became active: a fresh session for each unfenced broker."""
        self._last_contact = dict.fromkeys(unfenced, now_ms)
        self._heard = set()

    def touch(self, broker_id: int, now_ms: int) -> None:
        """A registration or heartbeat from ``broker_id`` arrived."""
        self._last_contact[broker_id] = now_ms
        self._heard.add(broker_id)

    def end_session(self, broker_id: int) -> None:
        """``broker_id`` shut down or was fenced: it has no session until it is heard again."""
        self._last_contact.pop(broker_id, None)
        self._heard.discard(broker_id)

    def has_valid_session(self, broker_id: int, now_ms: int) -> bool:
        """Whether this controller heard from ``broker_id`` within the session timeout (another
        process registering as that broker is then a duplicate: Kafka's
        DUPLICATE_BROKER_REGISTRATION)."""
        last = self._last_contact.get(broker_id)
        return broker_id in self._heard and last is not None and now_ms - last < self.session_timeout_ms

    def expired(self, now_ms: int) -> list[int]:
        """Brokers whose session timed out, by id."""
        return sorted(b for b, last in self._last_contact.items() if now_ms - last >= self.session_timeout_ms)

    def next_expiry_ms(self) -> int | None:
        """When the earliest session expires if no heartbeat comes (None: no session)."""
        if not self._last_contact:
            return None
        return min(self._last_contact.values()) + self.session_timeout_ms
