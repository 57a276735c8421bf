"""`pko acls`: kafka-acls' add, list and remove (Kafka's ``AclCommand``): CreateAcls, DescribeAcls
and DeleteAcls with pko's own wire client (``client.wire_admin``) on PLAINTEXT listeners — a
broker answer that does not decode is then one line, where librdkafka asserts and aborts the
process (Tansu 0.6's CreateAcls answer) — and through confluent-kafka's AdminClient on TLS or
SASL listeners.

ACLs are plain ``Acl`` rows (Kafka's names: TOPIC, LITERAL, READ, ALLOW …). ``acl_plan`` expands
kafka-acls' flags into ACLs (``--producer``/``--consumer`` as ``AclCommand`` expands them) and
filters. Kafka's errors become ``AclsError`` (``NoAuthorizerError`` for SECURITY_DISABLED); a
cluster that does not answer becomes ``ClusterUnreachableError`` naming the bootstrap servers.

Concurrency: plain functions; each call opens and closes its own client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pykafka_ops.client.connection import ClientSettings

#: Kafka's names of the ACL enums (``ResourceType`` … ``AclPermissionType``), by wire code.
RESOURCE_TYPES = {1: "ANY", 2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID", 6: "DELEGATION_TOKEN",
                  7: "USER"}
PATTERN_TYPES = {1: "ANY", 2: "MATCH", 3: "LITERAL", 4: "PREFIXED"}
OPERATIONS = {1: "ANY", 2: "ALL", 3: "READ", 4: "WRITE", 5: "CREATE", 6: "DELETE", 7: "ALTER", 8: "DESCRIBE",
              9: "CLUSTER_ACTION", 10: "DESCRIBE_CONFIGS", 11: "ALTER_CONFIGS", 12: "IDEMPOTENT_WRITE",
              13: "CREATE_TOKENS", 14: "DESCRIBE_TOKENS"}
PERMISSIONS = {1: "ANY", 2: "DENY", 3: "ALLOW"}
CLUSTER_NAME = "kafka-cluster"
SECURITY_DISABLED = 54
#: The newest CreateAcls/DescribeAcls/DeleteAcls version asked for (Kafka 4.x serves 1-3).
ACL_VERSION = 3


class AclsError(Exception):
    """A request Kafka refused, or bad flags (the message is one line)."""


class NoAuthorizerError(AclsError):
    """SECURITY_DISABLED: the cluster runs without an authorizer."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ACL, or (with ANY/MATCH and empty fields) a filter; Kafka's names for the enums."""

    resource_type: str
    resource_name: str | None
    pattern_type: str
    principal: str | None
    host: str | None
    operation: str
    permission_type: str

    @property
    def resource(self) -> str:
        """kafka-acls' ``ResourcePattern(...)`` text."""
        return (f"ResourcePattern(resourceType={self.resource_type}, name={self.resource_name}, "
                f"patternType={self.pattern_type})")

    @property
    def entry(self) -> str:
        """kafka-acls' access control entry text."""
        return (f"(principal={self.principal}, host={self.host}, operation={self.operation}, "
                f"permissionType={self.permission_type})")


@dataclass(frozen=True)
class AclFlags:
    """kafka-acls' resource and entry flags."""

    topics: Sequence[str] = ()
    groups: Sequence[str] = ()
    transactional_ids: Sequence[str] = ()
    cluster: bool = False
    pattern_type: str = "LITERAL"
    allow_principals: Sequence[str] = ()
    deny_principals: Sequence[str] = ()
    allow_hosts: Sequence[str] = ()
    deny_hosts: Sequence[str] = ()
    operations: Sequence[str] = ()
    producer: bool = False
    consumer: bool = False
    idempotent: bool = False


def _resources(flags: AclFlags) -> list[tuple[str, str]]:
    return ([("TOPIC", t) for t in flags.topics] + [("GROUP", g) for g in flags.groups]
            + [("TRANSACTIONAL_ID", t) for t in flags.transactional_ids]
            + ([("CLUSTER", CLUSTER_NAME)] if flags.cluster else []))


def _operations_by_resource(flags: AclFlags) -> list[tuple[str, str, list[str]]]:
    """(resource type, name, operations): ``--operation`` on every resource, or AclCommand's
    ``--producer`` (topics WRITE, DESCRIBE, CREATE; transactional ids WRITE, DESCRIBE; cluster
    IDEMPOTENT_WRITE with ``--idempotent``) and ``--consumer`` (topics READ, DESCRIBE; groups READ)."""
    if not (flags.producer or flags.consumer):
        return [(rtype, name, list(flags.operations) or ["ALL"]) for rtype, name in _resources(flags)]
    if flags.consumer and not flags.groups:
        raise AclsError("--consumer needs --group")
    if not flags.topics:
        raise AclsError(f"--{'producer' if flags.producer else 'consumer'} needs --topic")
    found: dict[tuple[str, str], list[str]] = {}
    for topic in flags.topics:
        ops = found.setdefault(("TOPIC", topic), [])
        ops += (["WRITE", "DESCRIBE", "CREATE"] if flags.producer else []) + (
            ["READ", "DESCRIBE"] if flags.consumer else [])
    if flags.producer:
        for tid in flags.transactional_ids:
            found[("TRANSACTIONAL_ID", tid)] = ["WRITE", "DESCRIBE"]
        if flags.idempotent:
            found[("CLUSTER", CLUSTER_NAME)] = ["IDEMPOTENT_WRITE"]
    if flags.consumer:
        for group in flags.groups:
            found[("GROUP", group)] = ["READ"]
    return [(rtype, name, list(dict.fromkeys(ops))) for (rtype, name), ops in found.items()]


def acls_to_add(flags: AclFlags) -> list[Acl]:
    """The ACLs ``--add`` creates; AclsError for flags that name no resource or no principal."""
    if flags.pattern_type not in ("LITERAL", "PREFIXED"):
        raise AclsError(f"--resource-pattern-type {flags.pattern_type.lower()} is not allowed with --add "
                        "(use literal or prefixed)")
    if not _resources(flags):
        raise AclsError("--add needs a resource: --topic, --group, --transactional-id or --cluster")
    if not (flags.allow_principals or flags.deny_principals):
        raise AclsError("--add needs --allow-principal or --deny-principal")
    entries = [(p, h, "ALLOW") for p in flags.allow_principals for h in (flags.allow_hosts or ["*"])] + [
        (p, h, "DENY") for p in flags.deny_principals for h in (flags.deny_hosts or ["*"])]
    return [Acl(rtype, name, flags.pattern_type, principal, host, op, permission)
            for rtype, name, ops in _operations_by_resource(flags) for principal, host, permission in entries
            for op in ops]


def acl_filters(flags: AclFlags) -> list[Acl]:
    """The filters ``--list`` or ``--remove`` use: every ACL of the named resources (all ACLs when
    none is named), narrowed to the principals, hosts and operations given."""
    resources: list[tuple[str, str | None]] = list(_resources(flags)) or [("ANY", None)]
    pattern = flags.pattern_type if _resources(flags) else "ANY"
    principals = [(p, "ALLOW", flags.allow_hosts) for p in flags.allow_principals] + [
        (p, "DENY", flags.deny_hosts) for p in flags.deny_principals]
    operations = list(flags.operations) or ["ANY"]
    if not principals:
        return [Acl(rtype, name, pattern, None, None, op, "ANY") for rtype, name in resources for op in operations]
    return [Acl(rtype, name, pattern, p, host, op, permission) for rtype, name in resources
            for p, permission, hosts in principals for host in (hosts or [None]) for op in operations]


# -- confluent-kafka ---------------------------------------------------------------------------

def _to_binding(acl: Acl, filter_: bool) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    rtype = ResourceType.BROKER if acl.resource_type == "CLUSTER" else ResourceType[acl.resource_type]
    cls = AclBindingFilter if filter_ else AclBinding
    return cls(rtype, acl.resource_name, ResourcePatternType[acl.pattern_type], acl.principal, acl.host,
               AclOperation[acl.operation], AclPermissionType[acl.permission_type])


def _from_binding(binding: Any) -> Acl:
    rtype = binding.restype.name
    return Acl("CLUSTER" if rtype == "BROKER" else rtype, binding.name, binding.resource_pattern_type.name,
               binding.principal, binding.host, binding.operation.name, binding.permission_type.name)


def _result(settings: ClientSettings, future: Any) -> Any:
    from confluent_kafka import KafkaError, KafkaException

    try:
        return future.result(settings.timeout_s)
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() == KafkaError.SECURITY_DISABLED:
            raise NoAuthorizerError(_no_authorizer(settings)) from None
        if error.code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN):
            raise settings.unreachable(error.str()) from None
        raise AclsError(f"{error.name()}: {error.str()}") from None
    except TimeoutError:
        raise settings.unreachable("timed out") from None


def _no_authorizer(settings: ClientSettings) -> str:
    return (f"the cluster at {settings.bootstrap_servers} has no authorizer (SECURITY_DISABLED): set "
            "authorizer.class.name to use ACLs")


def _admin(settings: ClientSettings) -> Any:
    from confluent_kafka.admin import AdminClient

    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused")
    return AdminClient(settings.librdkafka())


def _code(names: dict[int, str], name: str) -> int:
    return next(code for code, n in names.items() if n == name)


def _wire_fields(acl: Acl, filter_: bool) -> dict[str, Any]:
    """An ACL (or filter) as CreateAcls/DescribeAcls/DeleteAcls fields (``_filter`` names for filters)."""
    suffix = "_filter" if filter_ else ""
    return {f"resource_type{suffix}": _code(RESOURCE_TYPES, acl.resource_type),
            f"resource_name{suffix}": acl.resource_name,
            f"{'pattern_type_filter' if filter_ else 'resource_pattern_type'}": _code(PATTERN_TYPES, acl.pattern_type),
            f"principal{suffix}": acl.principal, f"host{suffix}": acl.host,
            "operation": _code(OPERATIONS, acl.operation), "permission_type": _code(PERMISSIONS, acl.permission_type)}


def _wire_acl(resource_type: int, name: str, pattern_type: int, entry: Any) -> Acl:
    return Acl(RESOURCE_TYPES.get(resource_type, str(resource_type)), name,
               PATTERN_TYPES.get(pattern_type, str(pattern_type)), entry.principal, entry.host,
               OPERATIONS.get(entry.operation, str(entry.operation)),
               PERMISSIONS.get(entry.permission_type, str(entry.permission_type)))


def _wire_check(settings: ClientSettings, error_code: int, message: str | None, what: str = "") -> None:
    """NoAuthorizerError for SECURITY_DISABLED, AclsError for another error."""
    from pykafka_ops.errors import error_name

    if error_code == SECURITY_DISABLED:
        raise NoAuthorizerError(_no_authorizer(settings))
    if error_code:
        name = error_name(error_code)
        raise AclsError(f"{what}{name}: {message or name}")


def _wire(settings: ClientSettings, api_key: str, body: dict[str, Any]) -> Any:
    from pykafka_ops.client.wire_admin import send_admin_request
    from pykafka_ops.protocol.api_keys import ApiKey

    return send_admin_request(settings, ApiKey[api_key], body, ACL_VERSION)


def _plaintext(settings: ClientSettings) -> bool:
    """Whether our wire client can reach the cluster (no TLS or SASL)."""
    return settings.properties.get("security.protocol", "plaintext").lower() == "plaintext"


def add_acls(settings: ClientSettings, acls: Sequence[Acl]) -> None:
    """CreateAcls: every ACL or an AclsError naming the first refused one."""
    if _plaintext(settings):
        answer = _wire(settings, "CREATE_ACLS", {"creations": [_wire_fields(a, False) for a in acls]})
        for acl, result in zip(acls, answer.results, strict=True):
            _wire_check(settings, result.error_code, result.error_message, f"{acl.resource} {acl.entry}: ")
        return
    admin = _admin(settings)
    bindings = [_to_binding(acl, False) for acl in acls]
    futures = admin.create_acls(bindings, request_timeout=settings.timeout_s)
    for acl, binding in zip(acls, bindings, strict=True):
        try:
            _result(settings, futures[binding])
        except AclsError as exc:
            if isinstance(exc, NoAuthorizerError):
                raise
            raise AclsError(f"{acl.resource} {acl.entry}: {exc}") from None


def list_acls(settings: ClientSettings, filters: Sequence[Acl]) -> list[Acl]:
    """DescribeAcls for each filter: the matching ACLs, sorted, without duplicates. (librdkafka,
    used for TLS and SASL listeners, drops the answer's SECURITY_DISABLED: an empty list there.)"""
    found: set[Acl] = set()
    if _plaintext(settings):
        for acl_filter in filters:
            answer = _wire(settings, "DESCRIBE_ACLS", _wire_fields(acl_filter, True))
            _wire_check(settings, answer.error_code, answer.error_message)
            found.update(_wire_acl(r.resource_type, r.resource_name, r.pattern_type, a)
                         for r in answer.resources for a in r.acls)
        return sorted(found)
    admin = _admin(settings)
    for acl_filter in filters:
        found.update(_from_binding(b) for b in _result(settings, admin.describe_acls(
            _to_binding(acl_filter, True), request_timeout=settings.timeout_s)))
    return sorted(found)


def remove_acls(settings: ClientSettings, filters: Sequence[Acl]) -> list[Acl]:
    """DeleteAcls: the ACLs removed, sorted."""
    removed: set[Acl] = set()
    if _plaintext(settings):
        answer = _wire(settings, "DELETE_ACLS", {"filters": [_wire_fields(f, True) for f in filters]})
        for result in answer.filter_results:
            _wire_check(settings, result.error_code, result.error_message)
            removed.update(_wire_acl(m.resource_type, m.resource_name, m.pattern_type, m)
                           for m in result.matching_acls if not m.error_code)
        return sorted(removed)
    admin = _admin(settings)
    bindings = [_to_binding(f, True) for f in filters]
    futures = admin.delete_acls(bindings, request_timeout=settings.timeout_s)
    for binding in bindings:
        removed.update(_from_binding(b) for b in _result(settings, futures[binding]))
    return sorted(removed)
