"""Shared test set-up. The cluster fixtures (``pko_cluster``, ``pko_cluster_factory``) and
``start_cluster`` come from our pytest plugin, ``cluster.pytest_plugin``, which pytest loads
through its ``pytest11`` entry point once the package is installed (``pip install -e '.[test]'``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pykafka_ops"):
        raise pytest.UsageError(
            "the pykafka_ops pytest plugin is not loaded: install the package with "
            "`pip install -e '.[test]'` (and do not set PYTEST_DISABLE_PLUGIN_AUTOLOAD)"
        )
