"""RaftChannels: the client side of the controller listener — how the Raft core's requests reach
the other quorum members (Kafka's ``KafkaNetworkChannel`` over a ``NetworkClient``).

One connection per peer, opened on the first request and again after it breaks. A request is the
core's message encoded with Kafka's KRaft RPCs (``cluster.raft.kraft_rpc``) under the core's own
correlation id; the answer is decoded and stepped into the core as a response from that peer.
Nothing is queued while a peer is unreachable: the request is dropped, as a lost packet, and the
core retries on its own timers (``controller.quorum.retry.backoff.ms``, request timeout).

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cluster.raft import kraft_rpc
from cluster.raft.kraft_wire import KraftRpcError
from cluster.raft.messages import Message
from pykafka_ops.protocol import codec

if TYPE_CHECKING:
    from cluster.controller.raft_quorum import RaftQuorum

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
#: Largest answer a peer may send (a Fetch carries at most 8 MiB of entries, KafkaRaftClient's limit).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Seconds between two log lines about one unreachable peer.
LOG_INTERVAL_S = 10.0


class _Peer:
    """One peer's connection: the writer, and the requests waiting for an answer on it."""

    def __init__(self, node_id: int, address: tuple[str, int]) -> None:
        self.node_id = node_id
        self.address = address
        self.writer: asyncio.StreamWriter | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.pending: dict[int, tuple[int, int]] = {}  # correlation id → (api key, version)
        self.backlog: list[bytes] = []  # frames written once the connection is up
        self.last_complaint = float("-inf")


class RaftChannels:
    """Sends the core's requests to peers and steps their answers back into the quorum."""

    def __init__(self, node_id: int, peers: Mapping[int, tuple[str, int]]) -> None:
        self.node_id = node_id
        self._peers = {peer: _Peer(peer, address) for peer, address in peers.items() if peer != node_id}
        self.quorum: RaftQuorum | None = None
        """Set once the quorum exists: answers are stepped into it."""
        self._closed = False

    def send(self, message: Message) -> None:
        """Encode and send ``message`` (a request) to its destination; dropped if unreachable."""
        peer = self._peers.get(message.destination)
        if peer is None or self._closed:
            return
        cluster_id = self.quorum.cluster_id if self.quorum is not None else ""
        api_key, version, body = kraft_rpc.request_body(message.payload, cluster_id,
                                                        destination_id=message.destination)
        frame = codec.encode_request(api_key, version, message.correlation_id, f"raft-{self.node_id}", body)
        peer.pending[message.correlation_id] = (api_key, version)
        if peer.writer is not None and not peer.writer.is_closing():
            peer.writer.write(_SIZE.pack(len(frame)) + frame)
            return
        peer.backlog = [*peer.backlog[-16:], _SIZE.pack(len(frame)) + frame]  # a few, while connecting
        if peer.connecting is None or peer.connecting.done():
            peer.connecting = asyncio.get_running_loop().create_task(self._connect(peer))

    async def _connect(self, peer: _Peer) -> None:
        try:
            reader, writer = await asyncio.open_connection(*peer.address)
        except OSError as exc:
            self._complain(peer, f"cannot connect: {exc.strerror or exc}")
            peer.backlog.clear()
            peer.pending.clear()
            return
        peer.writer = writer
        for frame in peer.backlog:
            writer.write(frame)
        peer.backlog.clear()
        try:
            await self._read_answers(peer, reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._complain(peer, f"connection lost: {exc}")
        finally:
            writer.close()
            peer.writer = None
            peer.pending.clear()

    async def _read_answers(self, peer: _Peer, reader: asyncio.StreamReader) -> None:
        while not self._closed:
            (size,) = _SIZE.unpack(await reader.readexactly(4))
            if not 4 <= size <= MAX_RESPONSE_BYTES:
                raise ValueError(f"answer of {size} bytes")
            frame = await reader.readexactly(size)
            (correlation_id,) = _SIZE.unpack_from(frame, 0)
            sent = peer.pending.pop(correlation_id, None)
            if sent is None:
                continue
            api_key, version = sent
            header = codec.response_header_size(api_key, version)
            try:
                payload = kraft_rpc.payload_from_response(api_key, version,
                                                          codec.decode_response(api_key, version, frame, header))
            except (KraftRpcError, codec.CodecError, ValueError) as exc:
                log.warning("answer %d from node %d dropped: %s", correlation_id, peer.node_id, exc)
                continue  # as a lost answer: the core retries
            if self.quorum is not None:
                self.quorum.step(Message(peer.node_id, self.node_id, payload, correlation_id))

    def _complain(self, peer: _Peer, what: str) -> None:
        now = time.monotonic()
        if now - peer.last_complaint >= LOG_INTERVAL_S:
            peer.last_complaint = now
            log.warning("quorum peer %d at %s:%d: %s", peer.node_id, *peer.address, what)

    def close(self) -> None:
        """Close every connection (the node is stopping)."""
        self._closed = True
        for peer in self._peers.values():
            if peer.writer is not None:
                peer.writer.close()
            if peer.connecting is not None:
                peer.connecting.cancel()
