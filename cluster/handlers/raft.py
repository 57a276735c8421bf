"""The KRaft RPCs on the controller listener: Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54)
and Fetch (1) of ``__cluster_metadata-0`` by a quorum member (KIP-595), and FetchSnapshot (59) by
one too far behind the leader's log start (KIP-630).

Each request is checked as Kafka's ``KafkaRaftClient`` does (cluster id, then the request's shape:
``cluster.raft.kraft_rpc``), handed to this node's Raft core through ``RaftQuorum.handle_request``,
and answered with what the core answers — a Fetch may wait in the leader's purgatory until there
is something to send or ``fetch_max_wait`` passes. A request the core cannot take is answered with
Kafka's error response for the API (``RaftUtil.errorResponse``). These APIs exist only on the
controller listener: the client listener's ApiVersions never lists them.

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import CONTROLLER, handles
from cluster.network.request import RequestContext
from cluster.raft import kraft_fetch_rpc, kraft_rpc
from cluster.raft.kraft_wire import KraftRpcError
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode, known_versions


def _versions(api_key: int, highest_read: int) -> tuple[int, int]:
    """What we accept: from our lowest sent version up to what we can read (and kio knows)."""
    known = known_versions(api_key)
    assert known is not None
    return kraft_rpc.MIN_VERSIONS[api_key], min(highest_read, known[1])


async def _serve(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's ControllerApis: CLUSTER_ACTION
        return kraft_rpc.error_response_body(ctx.api_key, ErrorCode.cluster_authorization_failed)
    quorum = ctx.broker.controller.quorum
    error = kraft_rpc.check_cluster_id(getattr(request, "cluster_id", None), quorum.cluster_id)
    if error is None:
        error = kraft_rpc.check_voter_id(request, quorum.node_id)
    if error is not None:
        return kraft_rpc.error_response_body(ctx.api_key, error)
    try:
        payload = kraft_rpc.payload_from_request(ctx.api_key, ctx.api_version, request)
    except KraftRpcError as exc:
        return kraft_rpc.error_response_body(ctx.api_key, exc.error)
    response = await quorum.handle_request(kraft_rpc.request_sender(payload), payload)
    if response is None:  # the core let it go unanswered (it stopped, or timed out): the sender retries
        return kraft_rpc.error_response_body(ctx.api_key, ErrorCode.request_timed_out)
    return kraft_rpc.response_body(response)


@handles(ApiKey.VOTE, versions=_versions(ApiKey.VOTE, 2), listeners=(CONTROLLER,))
async def handle_vote(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A candidate asks for this voter's vote (or, Vote v2 ``PreVote``, a prospective asks whether
    this voter would vote for it: KIP-996; v0/v1 requests are real votes)."""
    return await _serve(ctx, request)


@handles(ApiKey.BEGIN_QUORUM_EPOCH, versions=_versions(ApiKey.BEGIN_QUORUM_EPOCH, 1), listeners=(CONTROLLER,))
async def handle_begin_quorum_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A new leader announces its epoch."""
    return await _serve(ctx, request)


@handles(ApiKey.END_QUORUM_EPOCH, versions=_versions(ApiKey.END_QUORUM_EPOCH, 1), listeners=(CONTROLLER,))
async def handle_end_quorum_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A leader that resigns names the voters it would like to follow it."""
    return await _serve(ctx, request)


@handles(ApiKey.FETCH, versions=_versions(ApiKey.FETCH, 18), listeners=(CONTROLLER,))
async def handle_metadata_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A voter or observer replicates the metadata log (only replica fetches of
    ``__cluster_metadata-0`` are served here)."""
    if not kraft_fetch_rpc.is_replica_fetch(request):
        return kraft_rpc.error_response_body(ApiKey.FETCH, ErrorCode.invalid_request)
    return await _serve(ctx, request)


@handles(ApiKey.FETCH_SNAPSHOT, versions=_versions(ApiKey.FETCH_SNAPSHOT, 1), listeners=(CONTROLLER,))
async def handle_fetch_snapshot(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A replica too far behind reads the leader's latest snapshot, chunk by chunk."""
    return await _serve(ctx, request)
