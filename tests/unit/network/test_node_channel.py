"""NodeChannel fails every way a node can be unreachable with NodeUnreachableError (what its
callers retry on), and forgets a request nobody waits for any more."""

from __future__ import annotations

import asyncio

import pytest

from cluster.network.node_channel import NodeChannel, NodeUnreachableError
from pykafka_ops.protocol.api_keys import ApiKey

API_VERSIONS_BODY = {"client_software_name": "test", "client_software_version": "0"}


def test_a_connection_that_does_not_open_in_time_is_unreachable() -> None:
    async def main() -> None:
        channel = NodeChannel(1, lambda _: ("127.0.0.1", 9))

        async def never(_target: int) -> None:
            await asyncio.sleep(60)

        channel._connection = never  # type: ignore[method-assign]
        with pytest.raises(NodeUnreachableError, match="no connection to node 2"):
            await channel.send(2, ApiKey.API_VERSIONS, 3, API_VERSIONS_BODY, 0.05)

    asyncio.run(main())


def test_an_unanswered_request_times_out_and_is_forgotten() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # reads the request, never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        channel = NodeChannel(1, lambda _: ("127.0.0.1", port))
        try:
            with pytest.raises(NodeUnreachableError, match="did not answer"):
                await channel.send(2, ApiKey.API_VERSIONS, 3, API_VERSIONS_BODY, 0.1)
            assert all(not c.pending for c in channel._connections.values())
            with pytest.raises(NodeUnreachableError, match="has no known address"):
                await NodeChannel(1, lambda _: None).send(2, ApiKey.API_VERSIONS, 3, API_VERSIONS_BODY, 0.1)
        finally:
            channel.close()
            server.close()

    asyncio.run(main())
