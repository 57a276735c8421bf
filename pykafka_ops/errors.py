"""Kafka error codes as exceptions: one class per code, named after Kafka's constant.

The table (code, constant, retriable flag) is Kafka's `Errors.java`, as carried by
the codec's ``ErrorCode`` enum; the classes are generated from it so the two never drift apart.
``for_code(3)`` is ``UnknownTopicOrPartitionError``; ``UnknownTopicOrPartitionError.errno == 3``.
"""

from __future__ import annotations

from pykafka_ops.protocol.codec import ErrorCode

__all__ = ["ErrorCode", "KafkaError", "for_code", "error_name"]


class KafkaError(Exception):
    """Base of every Kafka error; ``errno`` is the wire code, ``name`` Kafka's constant."""

    errno: int = -1
    name: str = "UNKNOWN_SERVER_ERROR"
    retriable: bool = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.name)


def _class_name(code: ErrorCode) -> str:
    return "".join(part.capitalize() for part in code.name.split("_")) + "Error"


def error_name(code: int) -> str:
    """Kafka's constant for ``code`` (``UNKNOWN_TOPIC_OR_PARTITION``), or ``UNKNOWN(<code>)``."""
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"UNKNOWN({code})"


_BY_CODE: dict[int, type[KafkaError]] = {}
for _code in ErrorCode:
    if _code == ErrorCode.none:
        continue
    _cls = type(
        _class_name(_code),
        (KafkaError,),
        {
            "errno": int(_code),
            "name": _code.name.upper(),
            "retriable": _code.retriable,
            "__module__": __name__,
        },
    )
    _BY_CODE[int(_code)] = _cls
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)


def for_code(code: int, message: str | None = None) -> KafkaError:
    """An exception instance for a wire error code (an unknown code gives a plain KafkaError)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = KafkaError(message or f"Kafka error code {code}")
        err.errno = code
        return err
    return cls(message)
