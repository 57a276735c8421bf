"""The authorizer: Kafka's ``StandardAuthorizer`` (``StandardAuthorizerData.authorize``) over the
ACLs of the metadata image. No I/O: it answers from the ACLs it is given.

Rules, as Kafka's:

* a super user (``super.users``, exact principal) is always allowed;
* the ACLs that apply to a resource are its LITERAL name, the LITERAL wildcard ``*`` and every
  PREFIXED pattern that is a prefix of its name, for the same resource type;
* an ACL applies to a request when its principal is the request's or ``User:*``, its host the
  request's or ``*``, and its operation the one asked or ALL; an ALLOW also grants the implied
  operations (DESCRIBE by READ, WRITE, DELETE, ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS);
* any applying DENY wins over every ALLOW; else an applying ALLOW allows;
* with no applying ACL: denied, unless no ACL at all exists for the resource and
  ``allow.everyone.if.no.acl.found`` is set.

Concurrency: one instance per node, used from the node's event loop only (its index cache is
rebuilt there when the image's ACL mapping changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cluster.security.acls import (
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    WILDCARD_RESOURCE,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    principal_problem,
)

#: Kafka's ``StandardAuthorizer`` class name, the only ``authorizer.class.name`` we accept.
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: Operations an ALLOW ACL grants besides its own (Kafka's ``StandardAuthorizerData`` IMPLIES_*).
_IMPLIED_BY = {
    AclOperation.DESCRIBE: frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE,
                                      AclOperation.DELETE, AclOperation.ALTER, AclOperation.ALL}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
                                              AclOperation.ALL}),
}
Acls = Mapping[str, AclBinding]


class _AclIndex:
    """ACLs by (resource type, pattern type, name), and the prefix lengths in use per type."""

    def __init__(self, acls: Iterable[AclBinding]) -> None:
        self.by_pattern: dict[tuple[int, int, str], list[AclBinding]] = {}
        self.prefix_lengths: dict[int, list[int]] = {}
        lengths: dict[int, set[int]] = {}
        for acl in acls:
            self.by_pattern.setdefault((acl.resource_type, acl.pattern_type, acl.resource_name), []).append(acl)
            if acl.pattern_type == PatternType.PREFIXED:
                lengths.setdefault(acl.resource_type, set()).add(len(acl.resource_name))
        self.prefix_lengths = {rtype: sorted(found) for rtype, found in lengths.items()}

    def applying(self, resource_type: int, name: str) -> list[AclBinding]:
        """Every ACL whose resource pattern covers ``name`` (literal, ``*``, prefixes)."""
        found: list[AclBinding] = []
        by_pattern = self.by_pattern
        found.extend(by_pattern.get((resource_type, PatternType.LITERAL, name), ()))
        if name != WILDCARD_RESOURCE:
            found.extend(by_pattern.get((resource_type, PatternType.LITERAL, WILDCARD_RESOURCE), ()))
        for length in self.prefix_lengths.get(resource_type, ()):
            if length > len(name):
                break
            found.extend(by_pattern.get((resource_type, PatternType.PREFIXED, name[:length]), ()))
        return found


class StandardAuthorizer:
    """Kafka's ``StandardAuthorizer`` decisions (see module docstring)."""

    def __init__(self, super_users: Iterable[str] = (), allow_everyone_if_no_acl_found: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._indexed: Acls | None = None
        self._index = _AclIndex(())

    def _index_of(self, acls: Acls) -> _AclIndex:
        if acls is not self._indexed:
            self._index = _AclIndex(acls.values())
            self._indexed = acls
        return self._index

    def authorize(self, acls: Acls, principal: str, host: str, operation: AclOperation,
                  resource_type: ResourceType, name: str) -> bool:
        """Whether ``principal`` from ``host`` may do ``operation`` on the resource."""
        if principal in self.super_users:
            return True
        applying = self._index_of(acls).applying(resource_type, name)
        if not applying:
            return self.allow_everyone_if_no_acl_found
        allowed = False
        implied = _IMPLIED_BY.get(operation)
        for acl in applying:
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.host != host and acl.host != WILDCARD_HOST:
                continue
            if acl.permission_type == AclPermissionType.DENY:
                if acl.operation == operation or acl.operation == AclOperation.ALL:
                    return False
            elif not allowed:
                allowed = (acl.operation == operation or acl.operation == AclOperation.ALL
                           or (implied is not None and acl.operation in implied))
        return allowed

    def authorize_by_resource_type(self, acls: Acls, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """Kafka's ``Authorizer.authorizeByResourceType`` (KIP-679): whether some resource of the
        type could be allowed — an ALLOW (literal or prefixed) for the operation (or ALL) not
        covered by a DENY of the same principal and host; super users, and the no-ACL rule on a
        hard-coded name, allow as in Kafka."""
        if self.authorize(acls, principal, host, operation, resource_type, "hardcode"):
            return True
        deny_literals: set[str] = set()
        deny_prefixes: set[str] = set()
        allows: list[AclBinding] = []
        for acl in acls.values():
            if acl.resource_type != resource_type or acl.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if acl.host not in (host, WILDCARD_HOST) or acl.operation not in (operation, AclOperation.ALL):
                continue
            if acl.permission_type == AclPermissionType.DENY:
                if acl.pattern_type == PatternType.LITERAL and acl.resource_name == WILDCARD_RESOURCE:
                    return False
                (deny_literals if acl.pattern_type == PatternType.LITERAL else deny_prefixes).add(acl.resource_name)
            else:
                allows.append(acl)
        for acl in allows:
            if any(acl.resource_name.startswith(prefix) for prefix in deny_prefixes):
                continue
            if acl.pattern_type == PatternType.LITERAL and acl.resource_name in deny_literals:
                continue
            return True
        return False


def parse_super_users(value: str | None) -> list[str]:
    """``super.users``: principals separated by semicolons (Kafka's ``StandardAuthorizer.getConfiguredSuperUsers``)."""
    return [part.strip() for part in (value or "").split(";") if part.strip()]


def authorizer_from_config(config: Mapping[str, Any]) -> StandardAuthorizer | None:
    """The node's authorizer from its broker settings, or None without ``authorizer.class.name``
    (then nothing is checked and the ACL APIs answer SECURITY_DISABLED). ValueError for a
    ``super.users`` entry that is not a ``Type:name`` principal."""
    if not config.get("authorizer.class.name"):
        return None
    super_users = parse_super_users(config.get("super.users"))
    for principal in super_users:
        problem = principal_problem(principal)
        if problem is not None:
            raise ValueError(f"super.users: {problem}")
    return StandardAuthorizer(super_users, bool(config.get("allow.everyone.if.no.acl.found")))
