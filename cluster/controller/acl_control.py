"""AclControl (Kafka's ``AclControlManager``): CreateAcls and DeleteAcls on the active controller.

Creations are validated one by one (an invalid binding is INVALID_REQUEST with Kafka's message;
the others still go ahead); an ACL that exists already succeeds without a new record; the new
ones are committed in one batch of AccessControlEntryRecords with fresh UUIDs. A deletion filter
removes every ACL it matches (``AclBindingFilter.matches``) with RemoveAccessControlEntryRecords,
and answers the ACLs it matched; a filter with UNKNOWN elements is INVALID_REQUEST.

A mixin of ``QuorumController``. Concurrency: part of the controller, on the node's event loop;
writes go through its event queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cluster.controller.acl_image import acl_record, remove_acl_record
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.records import MetadataRecord
from cluster.security.acls import AclBinding, AclBindingFilter, validate_new_acl
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AclResult:
    """One creation's outcome, or one deletion filter's (with the ACLs it matched)."""

    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None
    matching: tuple[AclBinding, ...] = field(default=())


class AclControl(_Base):
    """ACL writes (CreateAcls, DeleteAcls)."""

    @_queued
    async def create_acls(self, acls: Sequence[AclBinding]) -> list[AclResult]:
        """Create ``acls``: one result per binding, in order (see module docstring)."""
        if not self.is_active:
            return [AclResult(ErrorCode.not_controller, "this controller is not the active one") for _ in acls]
        existing = set(self.image.acls.values())
        results: list[AclResult] = []
        records: list[MetadataRecord] = []
        written: list[int] = []
        for acl in acls:
            problem = validate_new_acl(acl)
            if problem is not None:
                results.append(AclResult(ErrorCode.invalid_request, problem))
                continue
            results.append(AclResult())
            if acl not in existing:
                existing.add(acl)
                records.append(acl_record(str(uuid.uuid4()), acl))
                written.append(len(results) - 1)
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                for i in written:
                    results[i] = AclResult(exc.error_code, str(exc))
                return results
            log.info("created %d ACL(s)", len(records))
        return results

    @_queued
    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[AclResult]:
        """Delete the ACLs each filter matches: one result per filter, with the ACLs it matched."""
        if not self.is_active:
            return [AclResult(ErrorCode.not_controller, "this controller is not the active one") for _ in filters]
        results: list[AclResult] = []
        removed: dict[str, None] = {}
        for acl_filter in filters:
            problem = acl_filter.unknown_element()
            if problem is not None:
                results.append(AclResult(ErrorCode.invalid_request, problem))
                continue
            matched = [(acl_id, acl) for acl_id, acl in self.image.acls.items() if acl_filter.matches(acl)]
            removed.update((acl_id, None) for acl_id, _ in matched)
            results.append(AclResult(matching=tuple(acl for _, acl in matched)))
        if removed:
            try:
                await self._commit([remove_acl_record(acl_id) for acl_id in removed])
            except MetadataCommitError as exc:
                return [AclResult(exc.error_code, str(exc)) if r.error_code == ErrorCode.none else r for r in results]
            log.info("deleted %d ACL(s)", len(removed))
        return results
