"""Shared test set-up. The cluster fixtures (``pko_cluster``, ``pko_cluster_factory``) and
``start_cluster`` come from our pytest plugin, ``cluster.pytest_plugin``, which pytest loads
through its ``pytest11`` entry point once the package is installed (``pip install -e '.[test]'``)."""

from __future__ import annotations

import asyncio
import inspect

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pykafka_ops"):
        raise pytest.UsageError(
            "the pykafka_ops pytest plugin is not loaded: install the package with "
            "`pip install -e '.[test]'` (and do not set PYTEST_DISABLE_PLUGIN_AUTOLOAD)"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test in a fresh event loop (the TUI's Pilot tests; no plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True
