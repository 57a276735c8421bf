"""Durable file replacement: what makes a rename survive a power cut (fsync the file, rename it,
fsync the directory that holds the name). Used by the log cleaner's segment swap and the Raft
quorum-state file.

Concurrency: plain functions; callers serialise writes to the same path.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (fsync is per inode: it covers what every descriptor
    wrote; on a directory it makes renames and new names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a crash at any point leaves the old content or the new one.

    Written to ``<path>.tmp``, fsynced, renamed over ``path``, then the directory is fsynced."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_path(path.parent)
