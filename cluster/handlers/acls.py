"""DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), versions 1-3 (Kafka 4.x's
range: v1 adds pattern types, KIP-290; v2 is flexible; v3 adds the USER resource type).

As Kafka's ``AclApis``: without an authorizer every answer is SECURITY_DISABLED ("No Authorizer
is configured."); DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER
(else CLUSTER_AUTHORIZATION_FAILED). DescribeAcls is answered from this broker's metadata image
(as Kafka's brokers answer from their authorizer's copy); CreateAcls and DeleteAcls are forwarded
to the active controller (``forwarding``), which validates and commits them (``AclControl``).
Our forwarding carries no principal (Kafka wraps it in an Envelope): the controller checks the
forwarding connection's, which on PLAINTEXT is User:ANONYMOUS as the client's.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.acl_control import AclResult
from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclBinding, AclBindingFilter, AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

NO_AUTHORIZER = "No Authorizer is configured."
CLUSTER_DENIED = "Cluster authorization failed."


def _filter(f: Any) -> AclBindingFilter:
    """A kio DescribeAcls request or DeleteAcls filter as an AclBindingFilter."""
    return AclBindingFilter(
        int(f.resource_type_filter), f.resource_name_filter, int(getattr(f, "pattern_type_filter", 3)),
        f.principal_filter, f.host_filter, int(f.operation), int(f.permission_type))


def _describe_error(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": []}


@handles(ApiKey.DESCRIBE_ACLS, versions=(1, 3))
def handle_describe_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """The ACLs matching the request's filter, grouped by resource pattern."""
    if not ctx.authorizing:
        return _describe_error(ErrorCode.security_disabled, NO_AUTHORIZER)
    if not ctx.authorized_on_cluster(AclOperation.DESCRIBE):
        return _describe_error(ErrorCode.cluster_authorization_failed, CLUSTER_DENIED)
    acl_filter = _filter(request)
    problem = acl_filter.unknown_element()
    if problem is not None:
        return _describe_error(ErrorCode.invalid_request, problem)
    resources: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for acl in sorted(ctx.broker.image.acls.values(), key=_order):
        if acl_filter.matches(acl):
            resources.setdefault((acl.resource_type, acl.resource_name, acl.pattern_type), []).append(
                {"principal": acl.principal, "host": acl.host, "operation": acl.operation,
                 "permission_type": acl.permission_type})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "resources": [
        {"resource_type": rtype, "resource_name": name, "pattern_type": ptype, "acls": acls}
        for (rtype, name, ptype), acls in resources.items()]}


def _order(acl: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.host, acl.operation,
            acl.permission_type)


def _alter_refusal(ctx: RequestContext) -> tuple[ErrorCode, str] | None:
    """Why CreateAcls/DeleteAcls is refused: no authorizer (SECURITY_DISABLED), or no ALTER on the
    cluster (CLUSTER_AUTHORIZATION_FAILED); None when it may go ahead."""
    if not ctx.authorizing:
        return ErrorCode.security_disabled, NO_AUTHORIZER
    if not ctx.authorized_on_cluster(AclOperation.ALTER):
        return ErrorCode.cluster_authorization_failed, CLUSTER_DENIED
    return None


def _create_error(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [{"error_code": code, "error_message": message}
                                            for _ in request.creations]}


@handles(ApiKey.CREATE_ACLS, versions=(1, 3), listeners=(BROKER, CONTROLLER))
@forwarded(_create_error)
async def handle_create_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Create ACLs through the controller: one result per creation."""
    refusal = _alter_refusal(ctx)
    if refusal is not None:
        return _create_error(request, *refusal)
    acls = [AclBinding(int(c.resource_type), c.resource_name, int(getattr(c, "resource_pattern_type", 3)),
                       c.principal, c.host, int(c.operation), int(c.permission_type)) for c in request.creations]
    results = await ctx.broker.controller.create_acls(acls)
    return {"throttle_time": 0, "results": [{"error_code": r.error_code, "error_message": r.error_message}
                                            for r in results]}


def _delete_error(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "filter_results": [{"error_code": code, "error_message": message,
                                                    "matching_acls": []} for _ in request.filters]}


@handles(ApiKey.DELETE_ACLS, versions=(1, 3), listeners=(BROKER, CONTROLLER))
@forwarded(_delete_error)
async def handle_delete_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Delete the ACLs each filter matches, through the controller."""
    refusal = _alter_refusal(ctx)
    if refusal is not None:
        return _delete_error(request, *refusal)
    results = await ctx.broker.controller.delete_acls([_filter(f) for f in request.filters])
    return {"throttle_time": 0, "filter_results": [_filter_result(r) for r in results]}


def _filter_result(result: AclResult) -> dict[str, Any]:
    return {"error_code": result.error_code, "error_message": result.error_message, "matching_acls": [
        {"error_code": ErrorCode.none, "error_message": None, "resource_type": acl.resource_type,
         "resource_name": acl.resource_name, "pattern_type": acl.pattern_type, "principal": acl.principal,
         "host": acl.host, "operation": acl.operation, "permission_type": acl.permission_type}
        for acl in result.matching]}
