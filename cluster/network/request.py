"""RequestContext: what a handler knows about the request besides its body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.security.acls import ANONYMOUS, AclOperation, ResourceType

if TYPE_CHECKING:
    from cluster.broker import Broker


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Header fields, the client's address and the broker serving the request."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_address: str
    broker: Broker
    received_at: float
    """Event-loop time (seconds) when the whole frame had arrived."""
    listener: str = "broker"
    """The listener the request came in on (``broker`` or ``controller``, cluster.handlers)."""
    principal: str = ANONYMOUS
    """The connection's principal: User:ANONYMOUS on PLAINTEXT (Kafka's, until SASL arrives)."""

    @property
    def authorizing(self) -> bool:
        """Whether the node has an authorizer (hot paths skip their checks when it has none; test
        doubles of the broker may have no ``authorizer`` at all)."""
        return getattr(self.broker, "authorizer", None) is not None

    def authorized(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """Whether the connection's principal may do ``operation`` on the resource (always without
        an authorizer): Kafka's ``AuthHelper.authorize``."""
        authorizer = getattr(self.broker, "authorizer", None)
        return authorizer is None or authorizer.authorize(
            self.broker.image.acls, self.principal, self.client_address.rsplit(":", 1)[0], operation,
            resource_type, name)

    def authorized_on_cluster(self, operation: AclOperation) -> bool:
        """``authorized`` on the CLUSTER resource (``kafka-cluster``)."""
        return self.authorized(operation, ResourceType.CLUSTER, "kafka-cluster")

    def authorized_on_any(self, operation: AclOperation, resource_type: ResourceType) -> bool:
        """Whether some resource of the type may be allowed (Kafka's ``authorizeByResourceType``,
        KIP-679)."""
        authorizer = getattr(self.broker, "authorizer", None)
        return authorizer is None or authorizer.authorize_by_resource_type(
            self.broker.image.acls, self.principal, self.client_address.rsplit(":", 1)[0], operation,
            resource_type)
