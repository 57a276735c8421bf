"""Exit codes and the one wrapper that turns exceptions into one-line messages.

0 ok · 1 runtime failure (unreachable cluster, Kafka error, missing group) · 2 usage error (bad
flags, bad config file) · 3 a `--fail-on-*` threshold was hit. A traceback is printed only when
``PKO_DEBUG=1`` (or `--debug` where a command offers it).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

OK, FAILURE, USAGE, THRESHOLD = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An error whose message is shown as is, with an exit code."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.code = code


def exit_with_error(message: str, code: int = FAILURE) -> NoReturn:
    """Print ``pko: message`` on stderr and exit with ``code``."""
    typer.echo(f"pko: {message}", err=True)
    raise typer.Exit(code)


def _code_for(exc: BaseException) -> int:
    from pykafka_ops.client.connection import BootstrapNotFoundError
    from pykafka_ops.config.client import PropertiesError
    from pykafka_ops.config.cluster import ConfigError

    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, (ConfigError, BootstrapNotFoundError, PropertiesError)):
        return USAGE
    return FAILURE


def handle_errors(fn: F) -> F:
    """Wrap a command: known errors → one line + exit code; others → one line, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("pko: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # the single place that decides what a user sees
            if os.environ.get("PKO_DEBUG") == "1":
                traceback.print_exc(file=sys.stderr)
            message = str(exc) or type(exc).__name__
            exit_with_error(message, _code_for(exc))

    return wrapper  # type: ignore[return-value]
