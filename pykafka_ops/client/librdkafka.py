"""confluent-kafka (librdkafka) calls for the services: off the event loop, errors as one line.

Blocking calls run in a worker thread (``asyncio.to_thread``, as kaskade's ``make_it_async``).
Long loops (produce, consume, perf) run through ``run_stoppable``: Ctrl-C cancels the awaiting
task, the loop sees its stop event, finishes cleanly (flush, close) and still returns its result.
A cluster that does not answer becomes ``ClientSettings.unreachable`` (one line naming the
bootstrap servers); any other Kafka error becomes ``KafkaCallError`` with Kafka's error name.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pykafka_ops.client.connection import ClientSettings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient, ClusterMetadata

T = TypeVar("T")

#: librdkafka error names that mean "nobody answered", not "the cluster said no".
UNREACHABLE = frozenset({"_TRANSPORT", "_TIMED_OUT", "_TIMED_OUT_QUEUE", "_ALL_BROKERS_DOWN", "_RESOLVE", "_WAIT_COORD"})


class KafkaCallError(RuntimeError):
    """A Kafka error answered to a client call; ``name`` is Kafka's (or librdkafka's) constant."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def error_text(error: Any) -> str:
    """One line for a confluent-kafka ``KafkaError``: ``NAME: description``."""
    return f"{error.name()}: {error.str()}"


def call_error(exc: BaseException, settings: ClientSettings, what: str) -> Exception:
    """The exception to raise for ``exc`` raised by confluent-kafka while doing ``what``."""
    from confluent_kafka import KafkaException

    if not isinstance(exc, KafkaException) or not exc.args:
        return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
    error = exc.args[0]
    if not hasattr(error, "name"):
        return KafkaCallError("UNKNOWN", f"{what}: {error}")
    if error.name() in UNREACHABLE:
        return settings.unreachable(error.str())
    return KafkaCallError(error.name(), f"{what}: {error_text(error)}")


def admin_client(settings: ClientSettings) -> AdminClient:
    """An AdminClient for ``settings``."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(settings.librdkafka())


def metadata(client: Any, settings: ClientSettings, topic: str | None = None) -> ClusterMetadata:
    """Metadata through any confluent-kafka client (its ``list_topics``), blocking.

    This is also the reachability check: a cluster that refuses connections is reported as
    unreachable at once, one that does not answer within the timeout after it; the message names
    the bootstrap servers.
    """
    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused or no route to host")
    try:
        return client.list_topics(topic, timeout=settings.timeout_s)
    except Exception as exc:  # KafkaException, mapped by call_error
        raise call_error(exc, settings, "metadata") from None


def result(future: Any, settings: ClientSettings, what: str) -> Any:
    """The result of an admin future (waiting at most the timeout), Kafka errors made one line."""
    import concurrent.futures

    try:
        return future.result(timeout=settings.timeout_s)
    except concurrent.futures.TimeoutError:
        raise settings.unreachable(f"no answer to {what}") from None
    except Exception as exc:  # KafkaException, mapped by call_error
        raise call_error(exc, settings, what) from None


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the blocking ``fn`` in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def run_stoppable(fn: Callable[[threading.Event], T]) -> T:
    """Run the blocking loop ``fn(stop)`` in a worker thread; on cancellation (Ctrl-C under
    ``asyncio.run``) set ``stop`` and return what the loop returns once it has wound down."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(fn, stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        return await task
