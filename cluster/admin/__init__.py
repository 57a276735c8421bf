"""The node admin endpoint: a small HTTP API beside the Kafka listener (Redpanda's admin API is the model).

``tracker``: what Produce requests said (acks, idempotence) per client id and topic, in bounded
memory. ``http``: a strict parser of HTTP/1.1 request heads and the JSON answers. ``server``: the
asyncio listener on the node's event loop (``nodes[].admin_port`` on ``admin.bind.address``).
"""
