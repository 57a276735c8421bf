"""Frozen dataclasses that cross layers: the service layer returns them, the CLI and the TUI render them.

One module per domain (``groups.py`` …); nothing here imports a client library, so a TUI test
can build these objects by hand.
"""
