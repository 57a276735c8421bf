"""The service layer: what `commands/` and `tui/` call. No printing here; results are dataclasses."""
