"""TimeIndex (Kafka's `TimeIndex`): max timestamp so far → the offset of the batch that holds it.

Entry on disk: (timestamp: int64, offset − base offset: int32), appended alongside offset-index
entries when the timestamp grew. ListOffsets-by-timestamp starts its scan at the floor entry.
"""

from __future__ import annotations

import struct

from cluster.log.sparse_index import SparseIndex


class TimeIndex(SparseIndex):
    """Sparse timestamp → offset index of one segment."""

    ENTRY = struct.Struct(">qi")

    def _encode(self, key: int, value: int) -> bytes:
        return self.ENTRY.pack(key, value - self.base_offset)

    def _decode(self, raw: tuple[int, int]) -> tuple[int, int]:
        return raw[0], raw[1] + self.base_offset

    def max_timestamp(self) -> int:
        """Largest timestamp indexed, or -1."""
        entry = self.last_entry()
        return entry[0] if entry else -1

    def truncate_to(self, offset: int) -> None:
        """Drop entries pointing at offsets ≥ ``offset``."""
        count = sum(1 for v in self._values if v < offset)
        self.truncate_entries(count)
