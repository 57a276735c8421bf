"""The persisted quorum state (Kafka's ``QuorumStateData`` / ``ElectionState``): the epoch, the
vote cast in it and the leader known for it.

A voter must never forget a vote or go back to an older epoch, or it could vote twice in one
epoch. The core therefore hands every change to the caller (``Ready.quorum_state``), which
writes it with a :class:`QuorumStateStore` before sending any message of the same ``Ready``.

:class:`FileQuorumStateStore` keeps Kafka's ``quorum-state`` file, JSON with Kafka's field names::

    {"leaderId": 1, "leaderEpoch": 2, "votedId": -1, "data_version": 1}

written to ``quorum-state.tmp``, fsynced, renamed over ``quorum-state`` and the directory fsynced,
so a crash at any point leaves the old content or the new one; a leftover temporary file is never
read. It reads Kafka's version 0 and 1 files (unknown fields such as ``clusterId``,
``appliedOffset``, ``currentVoters`` and ``votedDirectoryId`` are ignored).

Concurrency: not thread-safe; one store per node, written by the node's single driver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cluster.durable import write_durably

__all__ = ["FileQuorumStateStore", "MemoryQuorumStateStore", "QuorumStateData", "QuorumStateError",
           "QuorumStateStore"]

#: Kafka's ``FileQuorumStateStore.DEFAULT_FILE_NAME``.
DEFAULT_FILE_NAME = "quorum-state"
_LOWEST_VERSION, _HIGHEST_VERSION = 0, 1


@dataclass(frozen=True, slots=True)
class QuorumStateData:
    """What a node persists: ``leader_epoch`` (the current epoch), ``voted_id`` (the candidate it
    voted for in that epoch, -1 if none) and ``leader_id`` (the leader of that epoch, -1 if none
    is known)."""

    leader_epoch: int = 0
    leader_id: int = -1
    voted_id: int = -1


class QuorumStateError(Exception):
    """The quorum-state file cannot be read (unreadable JSON, unsupported data_version...)."""


class QuorumStateStore(Protocol):
    """Where a node keeps its quorum state."""

    def read(self) -> QuorumStateData | None:
        """The last state written, or None if nothing was ever written."""
        ...

    def write(self, state: QuorumStateData) -> None:
        """Replace the state durably (returns once it would survive a crash)."""
        ...


class MemoryQuorumStateStore:
    """A store in memory (simulation and tests): it survives a simulated crash because the
    simulation keeps the store object and hands it to the restarted node."""

    def __init__(self, state: QuorumStateData | None = None) -> None:
        self.state = state
        self.writes = 0

    def read(self) -> QuorumStateData | None:
        return self.state

    def write(self, state: QuorumStateData) -> None:
        self.state = state
        self.writes += 1


class FileQuorumStateStore:
    """Kafka's ``quorum-state`` file in ``directory`` (the metadata log directory)."""

    def __init__(self, directory: Path | str, file_name: str = DEFAULT_FILE_NAME) -> None:
        self.directory = Path(directory)
        self.path = self.directory / file_name
        self.temp_path = self.directory / (file_name + ".tmp")

    def read(self) -> QuorumStateData | None:
        """The state in the file; a leftover ``.tmp`` (a write cut short) is ignored."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise QuorumStateError(f"{self.path}: cannot read the quorum state: {error}") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise QuorumStateError(f"{self.path}: the quorum state is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise QuorumStateError(f"{self.path}: the quorum state is not a JSON object")
        version = data.get("data_version")
        if not isinstance(version, int) or not _LOWEST_VERSION <= version <= _HIGHEST_VERSION:
            raise QuorumStateError(f"{self.path}: data_version ({version}) is not within the min "
                                   f"({_LOWEST_VERSION}) and max ({_HIGHEST_VERSION}) supported version")
        try:
            return QuorumStateData(leader_epoch=_int(data, "leaderEpoch"), leader_id=_int(data, "leaderId"),
                                   voted_id=_int(data, "votedId"))
        except QuorumStateError as error:
            raise QuorumStateError(f"{self.path}: {error}") from error

    def write(self, state: QuorumStateData) -> None:
        """Write to the temporary file, fsync it, rename it over the state file, fsync the directory."""
        body = json.dumps({"leaderId": state.leader_id, "leaderEpoch": state.leader_epoch,
                           "votedId": state.voted_id, "data_version": _HIGHEST_VERSION})
        self.directory.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, body.encode("utf-8"))


def _int(data: dict[str, object], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise QuorumStateError(f"{key} is missing or not an integer: {value!r}")
    return value
