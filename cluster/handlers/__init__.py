"""Handler registry and dispatcher: one module per Kafka API, registered with ``@handles``.

ApiVersions is generated from this registry (kfake's ``regKey``), so a version range is typed
exactly once, next to the code that implements it. A handler receives the RequestContext and
the decoded request (a kio dataclass) — or, with ``raw=True``, the frame as a memoryview and
the offset of the body (the zero-copy Produce path). It returns:

* a ``dict`` — the response body, encoded by the codec for the request's version;
* a ``list`` of buffers — a body already encoded (the Fetch fast path);
* ``None`` — no response at all (Produce with acks=0);
* or an awaitable resolving to one of these (long polls, waits for replication).

Raising closes the connection (``CloseConnection`` for an expected reason, e.g. a body that does
not parse; anything else is logged as a bug); per-partition problems are Kafka error codes.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import known_versions

Body = dict[str, Any] | list[bytes | memoryview] | None
HandlerResult = Body | Awaitable[Body]
HandlerFn = Callable[..., HandlerResult]

#: Handler modules, one per Kafka API (imported by ``load_handlers``).
HANDLER_MODULES = (
    "api_versions",
    "metadata",
    "produce",
    "fetch",
    "list_offsets",
    "offset_for_leader_epoch",
    "create_topics",
    "delete_topics",
    "create_partitions",
    "delete_records",
    "describe_configs",
    "alter_configs",
    "incremental_alter_configs",
    "describe_cluster",
    "init_producer_id",
    "add_partitions_to_txn",
    "add_offsets_to_txn",
    "end_txn",
    "find_coordinator",
    "join_group",
    "sync_group",
    "heartbeat",
    "leave_group",
    "offset_commit",
    "offset_fetch",
    "txn_offset_commit",
    "list_groups",
    "describe_groups",
    "delete_groups",
    "offset_delete",
    "raft",
    "broker_registration",
    "broker_heartbeat",
    "allocate_producer_ids",
    "alter_partition",
    "describe_quorum",
    "elect_leaders",
    "alter_partition_reassignments",
    "list_partition_reassignments",
    "write_txn_markers",
    "describe_producers",
    "describe_transactions",
    "list_transactions",
    "describe_topic_partitions",
    "list_config_resources",
    "describe_log_dirs",
    "alter_replica_log_dirs",
    "acls",
)


@dataclass(frozen=True)
class Handler:
    """A registered API: its version range and the function that serves it."""

    api_key: ApiKey
    min_version: int
    max_version: int
    fn: HandlerFn
    raw: bool

    @property
    def module(self) -> str:
        """The handler's module name (``pko`` lists key → module)."""
        return self.fn.__module__.rsplit(".", 1)[-1]


#: Kafka's listener types: clients reach the ``broker`` listener; quorum members and brokers reach
#: a controller on its ``controller`` listener, whose APIs (Vote, BeginQuorumEpoch, ...) clients
#: never see in ApiVersions (Kafka's ``ApiMessageType.ListenerType``).
BROKER, CONTROLLER = "broker", "controller"
#: listener → api key → handler.
REGISTRY: dict[str, dict[int, Handler]] = {BROKER: {}, CONTROLLER: {}}


class CloseConnection(Exception):
    """Raised by a handler (or the decoder) when Kafka would close the connection."""


def handles(api_key: ApiKey, versions: tuple[int, int], raw: bool = False,
            listeners: tuple[str, ...] = (BROKER,)) -> Callable[[HandlerFn], HandlerFn]:
    """Register the decorated function as the handler of ``api_key`` for ``versions`` (inclusive)
    on ``listeners``."""

    def register(fn: HandlerFn) -> HandlerFn:
        low, high = versions
        known = known_versions(api_key)
        if known is None or low < known[0] or high > known[1]:
            raise RuntimeError(f"{api_key.name} versions {versions} are outside what the codec knows ({known})")
        for listener in listeners:
            taken = REGISTRY[listener].get(api_key)
            if taken is not None:
                raise RuntimeError(f"{api_key.name} is registered twice on the {listener} listener "
                                   f"({taken.fn.__module__}, {fn.__module__})")
            REGISTRY[listener][api_key] = Handler(api_key, low, high, fn, raw)
        return fn

    return register


def load_handlers(listener: str = BROKER) -> dict[int, Handler]:
    """Import every handler module (filling the registry) and return ``listener``'s handlers."""
    for name in HANDLER_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY[listener]
