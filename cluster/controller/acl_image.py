"""ACLs in the metadata log: Kafka's ``AccessControlEntryRecord`` and ``RemoveAccessControlEntryRecord``
replayed onto the image's ``acls`` (ACL id → AclBinding; Kafka's ``AclsImage``/``AclsDelta``), and
the records that rebuild them in a snapshot.

Record fields (JSON, as every metadata record here): ``id`` (a UUID string), ``resource_type``,
``resource_name``, ``pattern_type``, ``principal``, ``host``, ``operation``, ``permission_type``
(Kafka's int8 codes, ``cluster.security.acls``); the remove record carries the ``id`` only.

Concurrency: plain functions, called by a MetadataDelta's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cluster.security.acls import AclBinding

if TYPE_CHECKING:
    from cluster.controller.metadata_image import MetadataDelta

ACL_RECORD, REMOVE_ACL_RECORD = "AccessControlEntryRecord", "RemoveAccessControlEntryRecord"


def acl_record(acl_id: str, acl: AclBinding) -> dict[str, Any]:
    """The AccessControlEntryRecord that creates ``acl`` with id ``acl_id``."""
    return {"type": ACL_RECORD, "id": acl_id, "resource_type": acl.resource_type,
            "resource_name": acl.resource_name, "pattern_type": acl.pattern_type, "principal": acl.principal,
            "host": acl.host, "operation": acl.operation, "permission_type": acl.permission_type}


def remove_acl_record(acl_id: str) -> dict[str, Any]:
    """The RemoveAccessControlEntryRecord that deletes ACL ``acl_id``."""
    return {"type": REMOVE_ACL_RECORD, "id": acl_id}


def replay_acl(delta: MetadataDelta, r: Mapping[str, Any]) -> None:
    """Apply an AccessControlEntryRecord (Kafka's ``AclsDelta.replay``)."""
    delta._working("acls")[r["id"]] = AclBinding(
        int(r["resource_type"]), r["resource_name"], int(r["pattern_type"]), r["principal"], r["host"],
        int(r["operation"]), int(r["permission_type"]))


def replay_remove_acl(delta: MetadataDelta, r: Mapping[str, Any]) -> None:
    """Apply a RemoveAccessControlEntryRecord; an unknown id does not apply (ValueError)."""
    acls = delta._working("acls")
    if r["id"] not in acls:
        raise ValueError(f"RemoveAccessControlEntryRecord for unknown ACL id {r['id']}")
    del acls[r["id"]]


def acl_records(acls: Mapping[str, AclBinding]) -> list[dict[str, Any]]:
    """The records that rebuild ``acls`` (a snapshot's share), by id."""
    return [acl_record(acl_id, acls[acl_id]) for acl_id in sorted(acls)]
