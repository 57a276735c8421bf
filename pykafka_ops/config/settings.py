"""The Kafka config names we implement: broker settings and topic settings, typed, with defaults.

Names, types and defaults are Apache Kafka's (`KafkaConfig`, `ServerLogConfigs`,
`TopicConfig`). A real Kafka name that we do not implement yet is listed in
``NOT_SUPPORTED_YET`` so that a config using it is refused with that reason, never silently
ignored; any other unknown name is treated as a typo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
#: Most partitions one topic may have (CreateTopics, CreatePartitions and the YAML ``topics:``).
MAX_PARTITIONS_PER_TOPIC = 10_000
#: Settings whose Kafka type is INT (int32); every other integer setting is a LONG (int64).
INT32_SETTINGS = frozenset({
    "num.partitions", "default.replication.factor", "min.insync.replicas", "log.retention.hours",
    "log.retention.minutes", "log.segment.bytes", "log.roll.hours", "log.index.interval.bytes",
    "message.max.bytes", "socket.request.max.bytes", "fetch.max.bytes", "max.connections",
    "max.connections.per.ip", "producer.id.expiration.ms", "offsets.topic.num.partitions",
    "offsets.topic.replication.factor", "offsets.commit.timeout.ms",
    "offsets.retention.minutes", "group.initial.rebalance.delay.ms", "group.min.session.timeout.ms",
    "group.max.session.timeout.ms", "log.open.files.max", "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms", "controller.quorum.election.backoff.max.ms",
    "controller.quorum.request.timeout.ms", "controller.quorum.retry.backoff.ms", "segment.bytes",
    "broker.session.timeout.ms", "broker.heartbeat.interval.ms",
    "index.interval.bytes", "max.message.bytes", "replica.fetch.max.bytes", "replica.fetch.min.bytes",
    "replica.fetch.wait.max.ms", "replica.fetch.response.max.bytes", "replica.fetch.backoff.ms",
    "replica.socket.timeout.ms", "num.replica.fetchers", "leader.imbalance.per.broker.percentage",
    "transaction.state.log.num.partitions", "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr", "transaction.max.timeout.ms", "transactional.id.expiration.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "replication.quota.window.num", "replication.quota.window.size.seconds",
})
#: cleanup.policy values (Kafka takes a list: "compact,delete" keeps both behaviours).
CLEANUP_POLICIES = ("delete", "compact", "compact,delete", "delete,compact")


@dataclass(frozen=True)
class Setting:
    """One config name: its type, default and allowed values."""

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None
    """A Kafka ``ConfigDef.Validator``: given the converted value, None or why it is refused."""


def _settings(*items: Setting) -> dict[str, Setting]:
    return {s.name: s for s in items}


_THROTTLED_REPLICA = re.compile(r"([0-9]+:[0-9]+)?")


def _throttled_replica_list(name: str) -> Callable[[Any], str | None]:
    """Kafka's ``ThrottledReplicaListValidator`` (KIP-73) for a LIST value: every comma-separated
    element, trimmed, is ``partitionId:brokerId`` (or empty), or the whole list is ``*``."""
    def check(value: Any) -> str | None:
        elements = [element.strip() for element in value.split(",")]
        if all(_THROTTLED_REPLICA.fullmatch(e) for e in elements) or "".join(elements) == "*":
            return None
        return (f"{name} must be the literal '*' or a list of replicas in the following format: "
                "[partitionId]:[brokerId],[partitionId]:[brokerId],...")
    return check


# Topic and broker compression (Kafka's ``BrokerCompressionType``, KIP-390 levels since Kafka 3.8):
# the codec batches are stored in, ``producer`` = as sent; the leader recompresses the others.
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
GZIP_LEVELS, LZ4_LEVELS, ZSTD_LEVELS = range(1, 10), range(1, 18), range(-131072, 23)


def _one_of(values: tuple[str, ...]) -> Callable[[Any], str | None]:
    """Kafka's ``ConfigDef.ValidString.in``."""
    return lambda value: None if value in values else f"String must be one of: {', '.join(values)}"


def _between(levels: range, default: int | None = None) -> Callable[[Any], str | None]:
    """Kafka's ``ConfigDef.Range.between`` (gzip: ``GzipCompression.LevelValidator``, which also takes -1)."""
    def check(value: Any) -> str | None:
        if value in levels or value == default:
            return None
        if default is not None:
            return f"Value must be between {levels[0]} and {levels[-1]} or equal to {default}"
        if value < levels[0]:
            return f"Value must be at least {levels[0]}"
        return f"Value must be no more than {levels[-1]}"
    return check


COMPRESSION_SETTINGS = (
    Setting("compression.type", str, "producer", "codec batches are stored in; producer = as the producer sent them",
            check=_one_of(COMPRESSION_TYPES)),
    Setting("compression.gzip.level", int, -1, "gzip level when the broker compresses (-1: zlib's default)",
            check=_between(GZIP_LEVELS, -1)),
    Setting("compression.lz4.level", int, 9, "lz4 level when the broker compresses", check=_between(LZ4_LEVELS)),
    Setting("compression.zstd.level", int, 3, "zstd level when the broker compresses", check=_between(ZSTD_LEVELS)),
)


BROKER_SETTINGS: dict[str, Setting] = _settings(
    Setting("num.partitions", int, 1, "partitions of an auto-created topic", minimum=1),
    Setting("default.replication.factor", int, 1, "replication factor of an auto-created topic", minimum=1),
    Setting("min.insync.replicas", int, 1, "replicas that must acknowledge an acks=all write", minimum=1),
    Setting("auto.create.topics.enable", bool, True, "create a topic when Metadata asks for an unknown one"),
    Setting("delete.topic.enable", bool, True, "allow DeleteTopics"),
    Setting("log.retention.hours", int, 168, "retention time in hours", minimum=-1),
    Setting("log.retention.minutes", int, None, "retention time in minutes (overrides hours)", nullable=True),
    Setting("log.retention.ms", int, None, "retention time in ms (overrides minutes); -1 = forever", nullable=True),
    Setting("log.retention.bytes", int, -1, "retained bytes per partition; -1 = unlimited", minimum=-1),
    Setting("log.retention.check.interval.ms", int, 300_000, "how often retention runs", minimum=1),
    Setting("log.segment.bytes", int, 1_073_741_824, "segment size before a roll", minimum=14),
    Setting("log.roll.hours", int, 168, "segment age before a roll, in hours", minimum=1),
    Setting("log.roll.ms", int, None, "segment age before a roll, in ms (overrides hours)", nullable=True),
    Setting("log.index.interval.bytes", int, 4096, "bytes between offset-index entries", minimum=0),
    Setting("log.flush.interval.messages", int, INT64_MAX, "fsync after this many records", minimum=1),
    Setting("log.flush.interval.ms", int, None, "fsync a log at least this often", nullable=True),
    Setting("log.message.timestamp.type", str, "CreateTime", "timestamp type of new topics",
            choices=("CreateTime", "LogAppendTime")),
    Setting("log.cleanup.policy", str, "delete", "cleanup policy of new topics", choices=CLEANUP_POLICIES),
    Setting("log.cleaner.backoff.ms", int, 15_000, "how often the log cleaner looks for logs to compact", minimum=0),
    Setting("message.max.bytes", int, 1_048_588, "largest record batch a topic accepts", minimum=0),
    Setting("socket.request.max.bytes", int, 104_857_600, "largest request frame", minimum=1),
    Setting("fetch.max.bytes", int, 57_671_680, "most record bytes in one Fetch response", minimum=0),
    # Kafka's default is -1 (unbounded); a node must bound what clients can make it hold
    Setting("queued.max.request.bytes", int, 209_715_200,
            "request bytes the node holds before it stops reading (-1: unbounded)", minimum=-1),
    Setting("max.connections", int, 2_147_483_647, "open client connections (also capped at half the fd limit)",
            minimum=0),
    Setting("max.connections.per.ip", int, 2_147_483_647, "open connections from one client address", minimum=0),
    # not a Kafka setting: Kafka keeps every segment open and needs a high ulimit (see file_handles.py)
    Setting("log.open.files.max", int, 512,
            "segment and index files open at once, least recently used closed first (also capped at "
            "half the fd limit)", minimum=16),
    # not Kafka settings: the node's HTTP admin endpoint (cluster/admin/, nodes[].admin_port)
    Setting("admin.bind.address", str, "127.0.0.1",
            "address the admin endpoint listens on (0.0.0.0 exposes it to every network)",
            check=lambda value: None if value.strip() == value and value else "expected a host name or address"),
    Setting("admin.produce.clients.window.ms", int, 300_000,
            "how far back GET /v1/produce-clients reports the acks and idempotence of Produce requests",
            minimum=1_000),
    Setting("connections.max.idle.ms", int, 600_000, "close connections idle this long (-1: never)", minimum=-1),
    # KRaft's quorum timers (Kafka's QuorumConfig, same names and defaults)
    Setting("controller.quorum.election.timeout.ms", int, 1_000,
            "a voter that hears of no leader for this long (plus up to as much again at random) stands",
            minimum=1),
    Setting("controller.quorum.fetch.timeout.ms", int, 2_000,
            "a follower that cannot fetch from its leader for this long stands for election", minimum=1),
    Setting("controller.quorum.election.backoff.max.ms", int, 1_000,
            "longest wait before a candidate that lost stands again", minimum=1),
    Setting("controller.quorum.request.timeout.ms", int, 2_000,
            "a quorum request (and a metadata write) unanswered for this long fails", minimum=1),
    Setting("controller.quorum.retry.backoff.ms", int, 20, "wait before a failed quorum request is retried",
            minimum=0),
    # broker registration and fencing (Kafka's KRaft broker settings, same names and defaults)
    Setting("broker.session.timeout.ms", int, 9_000,
            "the active controller fences a broker that sends no heartbeat for this long", minimum=1),
    Setting("broker.heartbeat.interval.ms", int, 2_000, "time between two heartbeats of a broker to the controller",
            minimum=1),
    Setting("metadata.log.max.record.bytes.between.snapshots", int, 20_971_520,
            "metadata record bytes committed before each controller snapshots its image (the log before the "
            "snapshot is then deleted)", minimum=1),
    # replication (Kafka's ReplicationConfigs, same names and defaults)
    Setting("replica.lag.time.max.ms", int, 30_000,
            "a follower that has not fetched, or not caught up to the leader's log end offset, for this long "
            "leaves the ISR", minimum=1),
    Setting("replica.fetch.max.bytes", int, 1_048_576,
            "record bytes a follower asks for per partition (the first batch is returned even if larger)",
            minimum=0),
    Setting("replica.fetch.min.bytes", int, 1,
            "bytes a follower's fetch waits for, up to replica.fetch.wait.max.ms", minimum=0),
    Setting("replica.fetch.wait.max.ms", int, 500,
            "longest wait of a follower's fetch (at most replica.lag.time.max.ms, so that quiet partitions do "
            "not shrink the ISR)", minimum=0),
    Setting("replica.fetch.response.max.bytes", int, 10_485_760,
            "record bytes a follower asks for in one fetch, all partitions together", minimum=0),
    Setting("replica.fetch.backoff.ms", int, 1_000, "wait before a follower fetches again after an error",
            minimum=0),
    Setting("replica.socket.timeout.ms", int, 30_000,
            "longest wait for a leader's answer to a follower's fetch (at least replica.fetch.wait.max.ms)",
            minimum=1),
    # Kafka runs this many fetcher threads per source broker; pko runs one fetcher per source broker
    Setting("num.replica.fetchers", int, 1,
            "fetchers per source broker (accepted; pko runs one fetcher per source broker)", minimum=1),
    Setting("unclean.leader.election.enable", bool, False,
            "elect a replica outside the ISR when no ISR member is alive, as a last resort (may lose "
            "committed records)"),
    # replication throttles (KIP-73; Kafka's QuotaConfig, same names and defaults): the rates are
    # per-broker dynamic configs (kafka-configs --entity-type brokers), INT64_MAX = unthrottled
    Setting("leader.replication.throttled.rate", int, INT64_MAX,
            "bytes/s this broker sends as leader to out-of-sync followers of the replicas in "
            "leader.replication.throttled.replicas (set dynamically)", minimum=0),
    Setting("follower.replication.throttled.rate", int, INT64_MAX,
            "bytes/s this broker fetches as an out-of-sync follower of the replicas in "
            "follower.replication.throttled.replicas (set dynamically)", minimum=0),
    # moving replicas between a broker's log dirs (Kafka's ReplicationConfigs / KIP-113), dynamic
    Setting("replica.alter.log.dirs.io.max.bytes.per.second", int, INT64_MAX,
            "bytes/s copied (read and written) by the moves of replicas between this broker's log dirs "
            "(AlterReplicaLogDirs)", minimum=0),
    Setting("replication.quota.window.num", int, 11, "samples the replication throttle rates are measured over",
            minimum=1),
    Setting("replication.quota.window.size.seconds", int, 1, "seconds of each replication throttle sample",
            minimum=1),
    # preferred leaders (Kafka's ReplicationConfigs; see cluster/controller/leader_election.py)
    Setting("auto.leader.rebalance.enable", bool, True,
            "the active controller moves leadership back to each partition's preferred replica (the first of "
            "its assignment) once it is in sync again"),
    Setting("leader.imbalance.check.interval.seconds", int, 300,
            "how long after leadership leaves a preferred replica the controller tries to move it back", minimum=1),
    Setting("leader.imbalance.per.broker.percentage", int, 10,
            "accepted; as Kafka's KRaft controller, pko balances every imbalanced partition and does not use it",
            minimum=0),
    Setting("authorizer.class.name", str, None, "the authorizer: Kafka's StandardAuthorizer (ACLs in the metadata "
            "log) or none", choices=("org.apache.kafka.metadata.authorizer.StandardAuthorizer",), nullable=True),
    Setting("super.users", str, "", "principals allowed everything, separated by ';' (e.g. User:ANONYMOUS)",
            check=lambda value: next((f"{p.strip()!r} is not a principal (Type:name)" for p in value.split(";")
                                      if p.strip() and not all(p.strip().partition(":")[::2])), None)),
    Setting("allow.everyone.if.no.acl.found", bool, False, "allow a resource that has no ACL at all"),
    *COMPRESSION_SETTINGS,
    Setting("producer.id.expiration.ms", int, 86_400_000, "forget an idle idempotent producer", minimum=1),
    Setting("offsets.topic.num.partitions", int, 50, "partitions of __consumer_offsets (fixed once created)",
            minimum=1),
    Setting("offsets.topic.replication.factor", int, 3,
            "replicas of __consumer_offsets; it is created only once this many brokers are registered "
            "(FindCoordinator answers COORDINATOR_NOT_AVAILABLE until then)", minimum=1),
    Setting("offsets.commit.timeout.ms", int, 5_000,
            "longest wait for an offset commit (or a group's new generation) to reach every in-sync replica "
            "of __consumer_offsets", minimum=1),
    Setting("offsets.retention.minutes", int, 10_080, "keep committed offsets of an empty group this long", minimum=1),
    Setting("offsets.retention.check.interval.ms", int, 600_000, "how often expired offsets are removed", minimum=1),
    Setting("group.initial.rebalance.delay.ms", int, 3_000, "wait for more members before the first rebalance",
            minimum=0),
    Setting("group.min.session.timeout.ms", int, 6_000, "smallest session.timeout.ms a member may ask for", minimum=0),
    Setting("group.max.session.timeout.ms", int, 1_800_000, "largest session.timeout.ms a member may ask for",
            minimum=0),
    # the transaction coordinator (Kafka's TransactionLogConfig / TransactionStateManagerConfig)
    Setting("transaction.state.log.num.partitions", int, 50, "partitions of __transaction_state (fixed once created)",
            minimum=1),
    Setting("transaction.state.log.replication.factor", int, 3,
            "replicas of __transaction_state; it is created only once this many brokers are registered "
            "(FindCoordinator for a transaction answers COORDINATOR_NOT_AVAILABLE until then)", minimum=1),
    Setting("transaction.state.log.min.isr", int, 2, "min.insync.replicas of __transaction_state", minimum=1),
    Setting("transaction.max.timeout.ms", int, 900_000,
            "largest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT above)", minimum=1),
    Setting("transactional.id.expiration.ms", int, 604_800_000,
            "forget a transactional id with no transaction for this long", minimum=1),
    Setting("transaction.abort.timed.out.transaction.cleanup.interval.ms", int, 10_000,
            "how often transactions open past their timeout are aborted", minimum=1),
    Setting("transaction.remove.expired.transaction.cleanup.interval.ms", int, 3_600_000,
            "how often expired transactional ids are removed", minimum=1),
)

TOPIC_SETTINGS: dict[str, Setting] = _settings(
    Setting("cleanup.policy", str, "delete", "delete old segments, compact them to the last value per key, or both",
            choices=CLEANUP_POLICIES),
    Setting("delete.retention.ms", int, 86_400_000, "how long a compacted topic keeps tombstones", minimum=0),
    Setting("retention.ms", int, 604_800_000, "retention time; -1 = forever", minimum=-1),
    Setting("retention.bytes", int, -1, "retained bytes per partition; -1 = unlimited", minimum=-1),
    Setting("segment.bytes", int, 1_073_741_824, "segment size before a roll", minimum=14),
    Setting("segment.ms", int, 604_800_000, "segment age before a roll", minimum=1),
    Setting("index.interval.bytes", int, 4096, "bytes between offset-index entries", minimum=0),
    Setting("max.message.bytes", int, 1_048_588, "largest record batch accepted", minimum=0),
    Setting("message.timestamp.type", str, "CreateTime", "CreateTime or LogAppendTime",
            choices=("CreateTime", "LogAppendTime")),
    Setting("min.insync.replicas", int, 1, "replicas that must acknowledge an acks=all write", minimum=1),
    Setting("unclean.leader.election.enable", bool, False,
            "elect a replica outside the ISR when no ISR member is alive, as a last resort (may lose "
            "committed records)"),
    Setting("flush.messages", int, INT64_MAX, "fsync after this many records", minimum=1),
    Setting("flush.ms", int, INT64_MAX, "fsync at least this often", minimum=0),
    *COMPRESSION_SETTINGS,
    # KIP-73: the replicas each broker's leader.replication.throttled.rate / follower.* apply to
    Setting("leader.replication.throttled.replicas", str, "",
            "replicas throttled on the leader side: partitionId:brokerId,... or * (every replica)",
            check=_throttled_replica_list("leader.replication.throttled.replicas")),
    Setting("follower.replication.throttled.replicas", str, "",
            "replicas throttled on the follower side: partitionId:brokerId,... or * (every replica)",
            check=_throttled_replica_list("follower.replication.throttled.replicas")),
)

#: Topic setting → the broker setting its default comes from (Kafka's `ServerTopicConfigSynonyms`).
TOPIC_DEFAULT_FROM_BROKER: dict[str, str] = {
    "cleanup.policy": "log.cleanup.policy",
    "retention.bytes": "log.retention.bytes",
    "segment.bytes": "log.segment.bytes",
    "index.interval.bytes": "log.index.interval.bytes",
    "max.message.bytes": "message.max.bytes",
    "message.timestamp.type": "log.message.timestamp.type",
    "min.insync.replicas": "min.insync.replicas",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "flush.messages": "log.flush.interval.messages",
    **{s.name: s.name for s in COMPRESSION_SETTINGS},
}

NOT_SUPPORTED_YET: frozenset[str] = frozenset(
    {
        "zookeeper.connect", "broker.rack",
        "log.cleaner.enable",
        "ssl.keystore.location", "ssl.truststore.location", "sasl.enabled.mechanisms",
        "num.network.threads", "num.io.threads",
        "num.recovery.threads.per.data.dir", "queued.max.requests",
        "max.connections.per.ip.overrides",
        "message.timestamp.difference.max.ms", "log.message.timestamp.before.max.ms",
        "log.message.timestamp.after.max.ms",
        # topic-level names
        "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms", "min.compaction.lag.ms",
        "max.compaction.lag.ms", "min.cleanable.dirty.ratio", "segment.jitter.ms", "preallocate",
        "local.retention.ms", "local.retention.bytes", "remote.storage.enable", "message.downconversion.enable",
    }
)


class SettingError(ValueError):
    """A value that does not fit its setting; the message says why."""


def coerce(setting: Setting, value: Any) -> Any:
    """Check and convert a value from YAML or from a client request (strings allowed)."""
    if value is None:
        if setting.nullable:
            return None
        raise SettingError("must not be empty")
    if setting.type is bool:
        if isinstance(value, bool):
            result: Any = value
        elif isinstance(value, str) and value.lower() in ("true", "false"):
            result = value.lower() == "true"
        else:
            raise SettingError(f"expected true or false, got {value!r}")
    elif setting.type is int:
        if isinstance(value, bool):
            raise SettingError(f"expected an integer, got {value!r}")
        try:
            result = int(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: .inf
            raise SettingError(f"expected an integer, got {value!r}") from None
        if isinstance(value, float) and value != result:
            raise SettingError(f"expected an integer, got {value!r}")
        if setting.minimum is not None and result < setting.minimum:
            raise SettingError(f"must be at least {setting.minimum}, got {result}")
        maximum = INT32_MAX if setting.name in INT32_SETTINGS else INT64_MAX
        if result > maximum:
            kind = "an INT (int32)" if maximum == INT32_MAX else "a LONG (int64)"
            raise SettingError(f"must be at most {maximum} ({kind} in Kafka), got {result}")
    else:
        if not isinstance(value, str):
            raise SettingError(f"expected a string, got {value!r}")
        result = value
    if setting.check is not None and (reason := setting.check(result)) is not None:
        raise SettingError(f"Invalid value {result} for configuration {setting.name}: {reason}")
    if setting.choices is not None and result not in setting.choices:
        supported = ", ".join(map(str, setting.choices))
        raise SettingError(f"{result!r} is not supported (supported: {supported})")
    return result


def broker_defaults() -> dict[str, Any]:
    """Every broker setting at Kafka's default."""
    return {name: s.default for name, s in BROKER_SETTINGS.items()}


def retention_ms(broker: Mapping[str, Any]) -> int:
    """Kafka's precedence: log.retention.ms, else minutes, else hours."""
    if broker.get("log.retention.ms") is not None:
        return int(broker["log.retention.ms"])
    if broker.get("log.retention.minutes") is not None:
        return int(broker["log.retention.minutes"]) * 60_000
    hours = int(broker["log.retention.hours"])
    return -1 if hours < 0 else hours * 3_600_000


def roll_ms(broker: Mapping[str, Any]) -> int:
    """Kafka's precedence: log.roll.ms, else log.roll.hours."""
    if broker.get("log.roll.ms") is not None:
        return int(broker["log.roll.ms"])
    return int(broker["log.roll.hours"]) * 3_600_000


def flush_ms(broker: Mapping[str, Any]) -> int:
    """log.flush.interval.ms, or never (INT64_MAX)."""
    value = broker.get("log.flush.interval.ms")
    return INT64_MAX if value is None else int(value)


_DERIVED: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "retention.ms": retention_ms,
    "segment.ms": roll_ms,
    "flush.ms": flush_ms,
}


def topic_defaults(broker: Mapping[str, Any]) -> dict[str, Any]:
    """Topic settings as the broker's settings make them, before per-topic overrides."""
    result = {name: s.default for name, s in TOPIC_SETTINGS.items()}
    for topic_name, broker_name in TOPIC_DEFAULT_FROM_BROKER.items():
        result[topic_name] = broker[broker_name]
    for topic_name, derive in _DERIVED.items():
        result[topic_name] = derive(broker)
    return result


def check_topic_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate per-topic overrides; raises SettingError naming the key."""
    result = {}
    for key, value in overrides.items():
        setting = TOPIC_SETTINGS.get(key)
        if setting is None:
            if key in NOT_SUPPORTED_YET:
                raise SettingError(f"{key}: not supported yet")
            raise SettingError(f"{key}: unknown topic config")
        try:
            result[key] = coerce(setting, value)
        except SettingError as exc:
            raise SettingError(f"{key}: {exc}") from None
    return result
