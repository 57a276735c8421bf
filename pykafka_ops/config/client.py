"""`--command-config FILE`: a Java-style properties file (as the Kafka tools take) → client settings.

Java properties syntax: ``key=value`` or ``key: value``, ``#``/``!`` comments, ``\\`` line
continuations. Names shared by the Java client and librdkafka pass through unchanged; a few Java
names are translated (``sasl.jaas.config`` with PlainLoginModule/ScramLoginModule credentials →
``sasl.username``/``sasl.password``); Java-only keystore settings are refused with a reason.
"""

from __future__ import annotations

import re
from pathlib import Path

_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"([^"]*)"')

#: Java client settings librdkafka has no equivalent for.
_JAVA_ONLY = {
    "ssl.truststore.location": "use ssl.ca.location (a PEM file) with librdkafka",
    "ssl.truststore.password": "use ssl.ca.location (a PEM file) with librdkafka",
    "ssl.keystore.location": "use ssl.certificate.location and ssl.key.location (PEM files)",
    "ssl.keystore.password": "use ssl.key.password with a PEM key",
}


class PropertiesError(ValueError):
    """A properties file that cannot be used; the message names the file and line."""


def parse_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    """Parse Java properties text into a dict (later keys win, as in Java)."""
    result: dict[str, str] = {}
    logical: list[str] = []
    start_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip() if not logical else raw.lstrip()
        if not logical:
            start_line = number
            if not line or line[0] in "#!":
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical.append(line[:-1])
            continue
        logical.append(line)
        entry = "".join(logical)
        logical = []
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", entry)
        if not match:
            raise PropertiesError(f"{source}: line {start_line}: expected key=value, got {entry!r}")
        result[match.group(1)] = match.group(2)
    return result


def load_client_properties(path: Path) -> dict[str, str]:
    """Read ``path`` and translate it to librdkafka settings."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PropertiesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return to_librdkafka(parse_properties(text, str(path)), str(path))


def to_librdkafka(properties: dict[str, str], source: str = "<properties>") -> dict[str, str]:
    """Translate Java client names to librdkafka ones where they differ."""
    result: dict[str, str] = {}
    for key, value in properties.items():
        if key in _JAVA_ONLY:
            raise PropertiesError(f"{source}: {key} is a Java-only setting: {_JAVA_ONLY[key]}")
        if key == "sasl.jaas.config":
            options = dict(_JAAS_OPTION.findall(value))
            if "username" in options:
                result["sasl.username"] = options["username"]
            if "password" in options:
                result["sasl.password"] = options["password"]
            continue
        result[key] = value
    return result
