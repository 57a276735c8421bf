"""Nodes at a glance: address, state (running / FENCED / DOWN), roles, part in the metadata
quorum, leaders, replicas, URP and, for a cluster started by `pko cluster up`, each node's PID,
CPU and RSS."""

from __future__ import annotations

from textual.reactive import reactive

from pykafka_ops.models.monitor import BrokerView
from pykafka_ops.services.monitor_rows import BROKER_COLUMNS, broker_cells
from tui.widgets.lag_table import LagTable


class BrokerPanel(LagTable):
    """Set ``brokers`` to show them; Enter posts ``LagTable.Chosen`` with the node id."""

    brokers: reactive[tuple[BrokerView, ...]] = reactive((), always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(BROKER_COLUMNS, id=id)

    def watch_brokers(self, brokers: tuple[BrokerView, ...]) -> None:
        """One row per node."""
        self.entries = tuple((str(b.id), broker_cells(b)) for b in brokers)
