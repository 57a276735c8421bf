"""Leader elections on any Kafka cluster (kafka-leader-election's operation, KIP-460).

ElectLeaders goes through confluent-kafka's ``AdminClient.elect_leaders`` (librdkafka sends it to
the controller the Metadata answer names; a KRaft broker forwards it to the active controller).
Each partition's answer is sorted as Kafka's ``LeaderElectionCommand`` sorts it: elected,
ELECTION_NOT_NEEDED ("valid replica already elected"), or failed with Kafka's error. With no
partitions named the cluster elects on every partition and leaves out those that needed nothing.

``parse_election_json`` reads kafka-leader-election's ``--path-to-json-file`` format:
``{"partitions": [{"topic": "t", "partition": 0}, ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import in_thread, result
from pykafka_ops.errors import error_name

ELECTION_TYPES = ("PREFERRED", "UNCLEAN")
ELECTED, NOT_NEEDED, FAILED = "elected", "not_needed", "failed"
#: Kafka's ``Errors`` default messages for the codes ElectLeaders answers without a message of its
#: own (librdkafka would say "Broker: Preferred leader not available").
KAFKA_MESSAGES = {
    "PREFERRED_LEADER_NOT_AVAILABLE": "The preferred leader was not available.",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE": "Eligible topic partition leaders are not available.",
    "ELECTION_NOT_NEEDED": "Leader election not needed for topic partition.",
    "UNKNOWN_TOPIC_OR_PARTITION": "This server does not host this topic-partition.",
    "NOT_CONTROLLER": "This is not the correct controller for this cluster.",
    "INVALID_REQUEST": "This most likely occurs because of a request being malformed by the client library "
                       "or the message was sent to an incompatible broker. See the broker logs for more details.",
}


class ElectionDataError(ValueError):
    """A ``--path-to-json-file`` that does not hold partitions (the message is Kafka's)."""


@dataclass(frozen=True)
class PartitionElection:
    """One partition's outcome: ``status`` is ``elected``, ``not_needed`` or ``failed``."""

    topic: str
    partition: int
    status: str
    error: str | None = None
    """Kafka's error constant (``PREFERRED_LEADER_NOT_AVAILABLE``) when the election failed."""
    message: str | None = None

    @property
    def name(self) -> str:
        """Kafka's ``TopicPartition.toString``: ``topic-partition``."""
        return f"{self.topic}-{self.partition}"

    @property
    def exception(self) -> str:
        """The error as the Java tool prints it (``Throwable.toString``): Kafka's exception class
        for the constant, then the message."""
        kind = "".join(part.capitalize() for part in (self.error or "UNKNOWN_SERVER_ERROR").split("_"))
        return f"org.apache.kafka.common.errors.{kind}Exception: {self.message}"


@dataclass(frozen=True)
class ElectionReport:
    """Every partition's outcome, sorted by topic then partition."""

    election_type: str
    partitions: tuple[PartitionElection, ...]

    def having(self, status: str) -> list[PartitionElection]:
        """The partitions with ``status``."""
        return [p for p in self.partitions if p.status == status]


def parse_election_json(text: str) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a kafka-leader-election JSON file (Kafka's
    ``parseReplicaElectionData``); ElectionDataError with Kafka's message otherwise."""
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise ElectionDataError(f"Replica election data is not valid JSON: {exc}") from None
    if data is None:
        raise ElectionDataError("Replica election data is empty")
    if not isinstance(data, dict) or "partitions" not in data:
        raise ElectionDataError('Replica election data is missing "partitions" field')
    entries = data["partitions"]
    if not isinstance(entries, list):
        raise ElectionDataError('Replica election data: "partitions" must be a list')
    pairs = []
    for entry in entries:
        topic = entry.get("topic") if isinstance(entry, dict) else None
        partition = entry.get("partition") if isinstance(entry, dict) else None
        if not isinstance(topic, str) or not isinstance(partition, int) or isinstance(partition, bool):
            raise ElectionDataError(f'Replica election data: each partition needs "topic" (a string) and '
                                    f'"partition" (an integer), got {json.dumps(entry)}')
        pairs.append((topic, partition))
    duplicates = sorted({f"{t}-{p}" for t, p in pairs if pairs.count((t, p)) > 1})
    if duplicates:
        raise ElectionDataError(f"Replica election data contains duplicate partitions: {','.join(duplicates)}")
    return pairs


def _outcome(topic: str, partition: int, error: Any) -> PartitionElection:
    """A confluent-kafka per-partition answer (None, or a KafkaException / KafkaError)."""
    if error is None:
        return PartitionElection(topic, partition, ELECTED)
    kafka_error = error.args[0] if getattr(error, "args", None) and hasattr(error.args[0], "name") else error
    code = kafka_error.code() if hasattr(kafka_error, "code") else -1
    # a broker's error is Kafka's code (librdkafka's names are abbreviated: UNKNOWN_TOPIC_OR_PART)
    name = error_name(code) if code > 0 else (kafka_error.name() if hasattr(kafka_error, "name") else "UNKNOWN")
    if name == "ELECTION_NOT_NEEDED":
        return PartitionElection(topic, partition, NOT_NEEDED)
    text = kafka_error.str() if hasattr(kafka_error, "str") else str(kafka_error)
    if text.startswith("Broker: ") or not text:  # librdkafka's own words: the broker sent no message
        text = KAFKA_MESSAGES.get(name, text)
    return PartitionElection(topic, partition, FAILED, name, text)


def _elect(settings: ClientSettings, election_type: str, partitions: Sequence[tuple[str, int]] | None) -> ElectionReport:
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import AdminClient

    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused or no route to host")
    # confluent-kafka 2.16 refuses elect_leaders' own request_timeout/operation_timeout keywords (its C
    # argument list is wrong): both default to socket.timeout.ms, set to the command's timeout instead
    admin = AdminClient(settings.librdkafka(socket_timeout_ms=max(int(settings.timeout_s * 1000), 10)))
    wanted = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
    future = admin.elect_leaders(ElectionType[election_type], wanted)
    answers = result(future, settings, "ElectLeaders")
    outcomes = sorted((_outcome(tp.topic, tp.partition, error) for tp, error in answers.items()),
                      key=lambda o: (o.topic, o.partition))
    return ElectionReport(election_type, tuple(outcomes))


async def elect_leaders(settings: ClientSettings, election_type: str,
                        partitions: Sequence[tuple[str, int]] | None = None) -> ElectionReport:
    """Elect leaders of ``partitions`` (None: every partition) with ``election_type``
    (``PREFERRED`` or ``UNCLEAN``); a top-level Kafka error raises ``KafkaCallError``, a cluster
    that does not answer ``ClusterUnreachableError``."""
    if election_type not in ELECTION_TYPES:
        raise ValueError(f"election type {election_type!r} is not one of {', '.join(ELECTION_TYPES)}")
    return await in_thread(_elect, settings, election_type, partitions)
