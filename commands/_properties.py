"""``k=v`` flags shared by `pko produce`, `pko consume` and `pko perf` (-H, -X, --property …)."""

from __future__ import annotations

from commands._exit import USAGE, CliError


def key_values(pairs: list[str], flag: str) -> list[tuple[str, str | None]]:
    """Repeated ``k=v`` flags → pairs; a bare ``k`` has no value (None)."""
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise CliError(f"{flag} expects name=value, got {pair!r}", USAGE)
        result.append((key, value if sep else None))
    return result


def properties(pairs: list[str], flag: str) -> dict[str, str]:
    """Repeated ``k=v`` flags → a dict; every entry needs a value."""
    result = {}
    for key, value in key_values(pairs, flag):
        if value is None:
            raise CliError(f"{flag} expects name=value, got {key!r}", USAGE)
        result[key] = value
    return result
