"""Hot partitions: produce rate above the topic's mean + k·σ (klag's rule), hottest first, with the
largest lag a group has on them."""

from __future__ import annotations

from textual.reactive import reactive

from pykafka_ops.models.monitor import HotPartition
from pykafka_ops.services.monitor_rows import HOT_COLUMNS, hot_cells
from tui.widgets.lag_table import LagTable


class HotPartitions(LagTable):
    """Set ``partitions`` to show them; Enter posts ``LagTable.Chosen`` with ``topic:partition``
    (Kafka topic names cannot hold a colon)."""

    partitions: reactive[tuple[HotPartition, ...]] = reactive((), always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(HOT_COLUMNS, id=id)

    def watch_partitions(self, partitions: tuple[HotPartition, ...]) -> None:
        """One row per hot partition."""
        self.entries = tuple((f"{h.topic}:{h.partition}", hot_cells(h)) for h in partitions)
