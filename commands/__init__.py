"""The `pko` command line: one Typer module per command group, loaded lazily by `main`."""
