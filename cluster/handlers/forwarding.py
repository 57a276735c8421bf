"""Forwarding of admin requests to the active controller (Kafka's ``ForwardingManager``, KIP-590).

A handler decorated with ``@forwarded`` runs here only on the node that is the active controller
(or on the controller listener, where the controller answers NOT_CONTROLLER if it does not lead);
on any other broker the request goes unchanged to the active controller and its answer goes
back to the client as it came. An answer that names NOT_CONTROLLER — from a controller that lost
its leadership, or from this node while it leads the quorum without being active yet — is asked
again until the request's timeout (Kafka's ``NodeToControllerRequestThread``). If no controller answers within the request timeout, the client
gets the API's error answer with REQUEST_TIMED_OUT, as from Kafka.

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from cluster.controller.metadata_image import MetadataImage
from cluster.controller_requests import names_not_controller
from cluster.handlers import BROKER, HandlerFn
from cluster.network.node_channel import NodeUnreachableError
from cluster.network.request import RequestContext
from pykafka_ops.protocol.codec import ErrorCode

ErrorResponse = Callable[[Any, ErrorCode, str], dict[str, Any]]
Settled = Callable[[Any, MetadataImage], bool]


def forwarded(error_response: ErrorResponse, settled: Settled | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Serve the decorated handler on the active controller only (see module docstring).
    ``error_response(request, code, message)`` is the API's answer when no controller answers;
    ``settled(answer, image)`` tells when a forwarded change has reached this broker's metadata
    (the answer waits for it, briefly, so that the client's next Metadata request sees it)."""

    def wrap(fn: HandlerFn) -> HandlerFn:
        @functools.wraps(fn)
        async def handler(ctx: RequestContext, request: Any) -> Any:
            requests = ctx.broker.requests
            deadline = time.monotonic() + requests.forward_timeout_s(request)
            while True:
                if ctx.listener == BROKER and not requests.local:
                    try:
                        forwarded_answer = await requests.forward(ctx.api_key, ctx.api_version, request)
                    except NodeUnreachableError as exc:
                        return error_response(request, ErrorCode.request_timed_out, str(exc))
                    if forwarded_answer is not None:
                        answer, body = forwarded_answer
                        if settled is not None:
                            await requests.settle(lambda image: settled(answer, image))
                        return [body]
                result = fn(ctx, request)
                result = await result if hasattr(result, "__await__") else result
                # this node leads the quorum but is not active yet (or no longer): a client of the
                # broker listener waits for the active controller, as a forwarded request does
                if ctx.listener != BROKER or not names_not_controller(result) or time.monotonic() >= deadline:
                    return result
                await asyncio.sleep(requests.backoff_s)

        return handler

    return wrap
