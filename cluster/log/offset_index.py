"""OffsetIndex (Kafka's `OffsetIndex`): a batch's last offset → the batch's position in ``.log``.

Entry on disk: (offset − base offset: int32, position: int32), added every
``index.interval.bytes`` of log. A lookup gives the position from which to scan batch headers
for the batch holding a wanted offset.
"""

from __future__ import annotations

import struct

from cluster.log.sparse_index import SparseIndex


class OffsetIndex(SparseIndex):
    """Sparse offset → file position index of one segment."""

    ENTRY = struct.Struct(">ii")

    def _encode(self, key: int, value: int) -> bytes:
        return self.ENTRY.pack(key - self.base_offset, value)

    def _decode(self, raw: tuple[int, int]) -> tuple[int, int]:
        return raw[0] + self.base_offset, raw[1]

    def lookup(self, offset: int) -> int:
        """File position to start scanning from for ``offset`` (0 when no entry is ≤ it)."""
        entry = self.floor(offset - 1)
        # The entry's key is a batch's *last* offset: a batch whose last offset is below the
        # wanted offset cannot hold it, but the batch right after it can, so start there.
        return entry[1] if entry else 0

    def truncate_to(self, offset: int) -> None:
        """Drop entries for batches ending at or after ``offset``."""
        self.truncate_keys_from(offset)
