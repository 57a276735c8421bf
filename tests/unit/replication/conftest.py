"""Fixtures of the replication tests (builders in ``replication_builders``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from replication_builders import partition_factory


@pytest.fixture
def make_partition(tmp_path: Path):
    """``make_partition(replicas=(1, 2, 3), isr=..., min_isr=1)``: broker 1 leads at epoch 5."""
    return partition_factory(tmp_path)
