"""Recompression benchmark: produce into a topic whose compression.type differs from the producer's.

Not a test: run it by hand and read the figures (the machine is shared and noisy: compare
figures of one run, and run it twice).

    python tests/perf/bench_recompression.py                  # 1 M × 100 B per topic
    python tests/perf/bench_recompression.py --records 200000 # quicker

One node, one run: confluent-kafka produces the same records (lz4, linger.ms=5, acks=1, 6
partitions) into a ``compression.type=producer`` topic (stored as sent: Kafka's in-place path),
then into ``zstd`` and ``gzip`` topics (the leader decompresses and recompresses every batch:
Kafka's ``LogValidator.validateMessagesAndAssignOffsetsCompressed`` with a target codec). For each:
MB/s of record values, records/s, the node's CPU seconds per GB and the bytes stored. Then the
same three topics on Tansu (the peer, memory storage: no stored bytes), unless ``--skip-tansu``.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from bench_broker import PARTITIONS, Phase, measure, our_node, tansu
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC_CODECS = ("producer", "zstd", "gzip")
#: Distinct payloads (text-like, so that codecs have something to do, not one repeated value).
PAYLOADS = 1024


def payloads(size: int) -> list[bytes]:
    """``PAYLOADS`` values of ``size`` bytes drawn from a small vocabulary (compress about 2-3×)."""
    rng = random.Random(18)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(500)]
    return [b" ".join(rng.choices(words, k=size))[:size] for _ in range(PAYLOADS)]


def create_topic(bootstrap: str, topic: str, codec: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1, config={"compression.type": codec})])[topic].result(30)
    deadline = time.monotonic() + 10
    while len(admin.list_topics(topic, timeout=5).topics[topic].partitions) < PARTITIONS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic} has no partitions")
        time.sleep(0.05)


def produce(bootstrap: str, topic: str, values: list[bytes], records: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5, "compression.type": "lz4",
                         "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_097_151})
    failed: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    for i in range(records):
        while True:
            try:
                producer.produce(topic, values[i % PAYLOADS], on_delivery=report)
                break
            except BufferError:
                producer.poll(0.005)
    if producer.flush(300) or failed:
        raise RuntimeError(f"produce failed: {failed[:3]}")


def stored_bytes(data_dir: Path, topic: str) -> int:
    return sum(f.stat().st_size for f in data_dir.rglob(f"{topic}-*/*.log"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per topic")
    parser.add_argument("--size", type=int, default=100, help="bytes per record value")
    parser.add_argument("--skip-tansu", action="store_true", help="our node only")
    args = parser.parse_args()
    values = payloads(args.size)
    phases: list[Phase] = []
    stored: dict[tuple[str, str], int | None] = {}
    with tempfile.TemporaryDirectory(prefix="bench-recompression-") as tmp:
        workdir = Path(tmp)
        brokers = [("pko", our_node(workdir / "pko"))] + ([] if args.skip_tansu else [("tansu", tansu(workdir))])
        for name, started in brokers:
            with started as (bootstrap, proc):
                for codec in TOPIC_CODECS:
                    topic = f"recompress-{codec}"
                    create_topic(bootstrap, topic, codec)
                    with measure(proc, name, f"lz4 → {codec}", args.records, args.size, phases):
                        produce(bootstrap, topic, values, args.records)
                    stored[(name, codec)] = stored_bytes(workdir / "pko", topic) if name == "pko" else None
    base = {p.broker: p for p in reversed(phases)}  # each broker's producer-topic phase
    print(f"{'broker':<6} {'phase':<16} {'MB/s':>8} {'rec/s':>10} {'CPU-s/GB':>9} {'vs producer':>12} {'stored MB':>10}")
    for codec, p in zip(TOPIC_CODECS * len(brokers), phases):
        size = stored[(p.broker, codec)]
        print(f"{p.broker:<6} {p.name:<16} {p.mb_per_s:>8.1f} {p.records_per_s:>10.0f} {p.cpu_s_per_gb:>9.2f} "
              f"{p.cpu_s_per_gb / base[p.broker].cpu_s_per_gb:>11.2f}× "
              f"{'-' if size is None else f'{size / 1e6:.1f}':>10}")
    print(json.dumps({"bench": "recompression", "records": args.records, "size": args.size, "phases": [
        {"broker": p.broker, "topic_codec": codec, "producer_codec": "lz4", "mb_per_s": round(p.mb_per_s, 2),
         "records_per_s": round(p.records_per_s), "cpu_s_per_gb": round(p.cpu_s_per_gb, 3),
         "stored_bytes": stored[(p.broker, codec)]} for codec, p in zip(TOPIC_CODECS * len(brokers), phases)]}))


if __name__ == "__main__":
    main()
