"""ACL vocabulary as Kafka's: resource types, pattern types, operations, permissions, bindings and
binding filters, with Kafka's matching and validation rules.

The numeric codes are Kafka's wire values (``ResourceType``, ``PatternType``, ``AclOperation``,
``AclPermissionType`` in ``org.apache.kafka.common``). ``AclBinding`` is one ACL;
``AclBindingFilter`` is what DescribeAcls and DeleteAcls send (Kafka's ``AclBindingFilter.matches``
with ``ResourcePatternFilter`` and ``AccessControlEntryFilter``).

Concurrency: pure values and functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ResourceType(IntEnum):
    """Kafka's ``ResourceType``."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    """Kafka's ``PatternType``: LITERAL and PREFIXED are stored; ANY and MATCH only filter."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    """Kafka's ``AclOperation``."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(IntEnum):
    """Kafka's ``AclPermissionType``."""

    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


#: The only name of the CLUSTER resource (Kafka's ``Resource.CLUSTER_NAME``).
CLUSTER_NAME = "kafka-cluster"
#: Kafka's ``ResourcePattern.WILDCARD_RESOURCE``, ``AclEntry.WildcardPrincipalString``, ``WildcardHost``.
WILDCARD_RESOURCE, WILDCARD_PRINCIPAL, WILDCARD_HOST = "*", "User:*", "*"
ANONYMOUS = "User:ANONYMOUS"


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: a resource pattern and an access control entry (Kafka's ``AclBinding``)."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """What DescribeAcls and DeleteAcls select (Kafka's ``AclBindingFilter``); None is "any"."""

    resource_type: int = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: int = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: int = AclOperation.ANY
    permission_type: int = AclPermissionType.ANY

    def matches(self, acl: AclBinding) -> bool:
        """Kafka's ``AclBindingFilter.matches``: the resource pattern filter and the entry filter."""
        return self._matches_pattern(acl) and self._matches_entry(acl)

    def _matches_pattern(self, acl: AclBinding) -> bool:
        """Kafka's ``ResourcePatternFilter.matches``: MATCH selects the patterns that apply to
        the named resource (its literal name, the ``*`` wildcard, prefixes of it)."""
        if self.resource_type != ResourceType.ANY and self.resource_type != acl.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH) and self.pattern_type != acl.pattern_type:
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type != PatternType.MATCH:
            return self.resource_name == acl.resource_name
        if acl.pattern_type == PatternType.LITERAL:
            return acl.resource_name in (self.resource_name, WILDCARD_RESOURCE)
        if acl.pattern_type == PatternType.PREFIXED:
            return self.resource_name.startswith(acl.resource_name)
        return False

    def _matches_entry(self, acl: AclBinding) -> bool:
        """Kafka's ``AccessControlEntryFilter.matches``: exact values or "any"."""
        return ((self.principal is None or self.principal == acl.principal)
                and (self.host is None or self.host == acl.host)
                and (self.operation == AclOperation.ANY or self.operation == acl.operation)
                and (self.permission_type == AclPermissionType.ANY or self.permission_type == acl.permission_type))

    def unknown_element(self) -> str | None:
        """What makes the filter unusable (Kafka's ``AclBindingFilter.findIndefiniteField`` for
        UNKNOWN values, and values outside the enums), or None."""
        for label, value, kind in (("resourceType", self.resource_type, ResourceType),
                                   ("patternType", self.pattern_type, PatternType),
                                   ("operation", self.operation, AclOperation),
                                   ("permissionType", self.permission_type, AclPermissionType)):
            if value not in kind._value2member_map_ or value == 0:
                return f"Unknown {label} {_name(kind, value)}."
        return None


def _name(kind: type[IntEnum], value: int) -> str:
    return kind(value).name if value in kind._value2member_map_ else str(value)


def validate_new_acl(acl: AclBinding) -> str | None:
    """Why ``acl`` cannot be created, or None: Kafka's ``AclControlManager.validateNewAcl`` and
    ``AclApis.handleCreateAcls`` (the answer is INVALID_REQUEST with this message)."""
    if acl.resource_type not in ResourceType._value2member_map_ or acl.resource_type in (
            ResourceType.ANY, ResourceType.UNKNOWN):
        return f"Invalid resourceType {_name(ResourceType, acl.resource_type)}"
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {_name(PatternType, acl.pattern_type)}"
    if acl.operation not in AclOperation._value2member_map_ or acl.operation in (AclOperation.ANY,
                                                                                  AclOperation.UNKNOWN):
        return f"Invalid operation {_name(AclOperation, acl.operation)}"
    if acl.permission_type not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        return f"Invalid permissionType {_name(AclPermissionType, acl.permission_type)}"
    if not acl.resource_name:
        return "Resource name should not be empty"
    if acl.resource_type == ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    principal_error = principal_problem(acl.principal)
    if principal_error is not None:
        return principal_error
    if not acl.host:
        return "Invalid host: the host should not be empty"
    return None


def principal_problem(principal: str) -> str | None:
    """Kafka's ``SecurityUtils.parseKafkaPrincipal``: ``Type:name``, both parts non-empty."""
    kind, sep, name = principal.partition(":")
    if not sep:
        return f"Could not parse principal from `{principal}` (no colon is found between the principal type and name)"
    if not kind or not name:
        return f"Invalid principal `{principal}`: the principal type and name must not be empty"
    return None
