"""`pko skew --keys-file F --partitions N --partitioner P`: place a list of keys with no cluster.

One key per line (``\\n`` or ``\\r\\n``), taken as bytes; an empty line is an empty
key. The file is read in blocks, so memory stays bounded whatever its size. Each distinct key of
a block is hashed once; keys the partitioner does not hash (the sticky cases) are dealt evenly
over the partitions. A record's offset, for ``{offset}`` in what-if templates, is its position
in its predicted partition, as if the topic were empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

from pykafka_ops.partitioner import Partitioner, partition
from pykafka_ops.services.skew_keystats import KeyStats
from pykafka_ops.services.skew_scan import Progress
from pykafka_ops.services.skew_whatif import KeyTemplate, RecordView

#: Bytes read per block.
BLOCK = 1 << 22


def read_keys_file(path: Path, partitions: int, partitioner: Partitioner, templates: Sequence[KeyTemplate] = (),
                   progress: Progress | None = None) -> KeyStats:
    """The statistics of ``path``'s keys placed on ``partitions`` partitions by ``partitioner``."""
    size = path.stat().st_size
    stats = KeyStats(_count_lines(path), templates)
    dealt = 0
    done = 0
    for block, block_bytes in _blocks(path):
        placed = {k: partition(k, partitions, partitioner) for k in Counter(block)}
        by_partition: dict[int, list[bytes]] = defaultdict(list)
        for key in block:
            p = placed[key]
            if p is None:
                p, dealt = dealt % partitions, dealt + 1
            by_partition[p].append(key)
        for p, keys in sorted(by_partition.items()):
            base = stats.scanned[p]
            picked = range(len(keys))[stats.sample_slice(p, len(keys))]
            stats.add(p, keys, [RecordView(p, keys[i], base + i, size=len(keys[i])) for i in picked])
        done += block_bytes
        if progress is not None:
            progress(done, size)
    return stats


def _blocks(path: Path) -> Iterator[tuple[list[bytes], int]]:
    """(keys, bytes consumed) per block; a line cut by the block end moves to the next block."""
    with path.open("rb") as f:
        carry = b""
        while chunk := f.read(BLOCK):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1  # a "\r\n" is never split: its "\r" comes first
            carry = data[cut:]
            if not cut:
                continue
            yield data[:cut].splitlines(), cut
        if carry:
            yield carry.splitlines() or [b""], len(carry)


def _count_lines(path: Path) -> int:
    """Lines in ``path`` (a last line without a line break counts), for the sample stride."""
    with path.open("rb") as f:
        lines = 0
        last = b"\n"
        while chunk := f.read(BLOCK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")
