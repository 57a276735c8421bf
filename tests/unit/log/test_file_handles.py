"""FileHandleCache: log files share a bounded number of descriptors (issue "Data safety" item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.log.file_handles import FileHandleCache, LogFile


def _open_fds(directory: Path) -> int:
    """Descriptors of this process open on files in ``directory`` (not the process's total: other
    threads of a test worker — clients left by earlier tests — open and close sockets meanwhile)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory))
        except OSError:  # closed since the listing
            continue
    return count


def test_no_more_than_capacity_descriptors_stay_open(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=4)
    files = [LogFile(tmp_path / f"f{i}", cache) for i in range(50)]
    for i, log_file in enumerate(files):
        with log_file as fd:
            os.write(fd, f"file {i}".encode())
    assert cache.open_count == 4
    assert _open_fds(tmp_path) == 4
    for i, log_file in enumerate(files):  # evicted files reopen and kept their bytes
        with log_file as fd:
            assert os.pread(fd, 100, 0) == f"file {i}".encode()
    assert cache.open_count == 4


def test_the_least_recently_used_descriptor_is_closed_first(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=2)
    a, b, c = (LogFile(tmp_path / name, cache) for name in "abc")
    for log_file in (a, b, a, c):
        log_file.create()
    assert a._fd >= 0 and c._fd >= 0 and b._fd < 0
    opened = cache.opened
    a.create()  # still open: no new open()
    assert cache.opened == opened


def test_a_pinned_descriptor_is_never_closed_under_its_user(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=1)
    a, b = LogFile(tmp_path / "a", cache), LogFile(tmp_path / "b", cache)
    with a as fd_a:
        with b as fd_b:
            assert cache.open_count == 2  # over capacity while both are pinned
            os.write(fd_a, b"a")
            os.write(fd_b, b"b")
        assert cache.open_count == 1 and b._fd < 0  # back to capacity: b, unpinned, is closed
        os.write(fd_a, b"a")  # a, still pinned, stayed open
    assert cache.open_count == 1
    assert (tmp_path / "a").read_bytes() == b"aa"


def test_closing_a_pinned_file_waits_for_its_user(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=8)
    a = LogFile(tmp_path / "a", cache)
    with a as fd:
        a.close()
        os.write(fd, b"still open")
    assert a._fd < 0 and cache.open_count == 0
    assert (tmp_path / "a").read_bytes() == b"still open"


def test_a_file_deleted_under_the_node_is_not_created_again(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=8)
    a = LogFile(tmp_path / "a", cache)
    a.create()
    a.close()
    (tmp_path / "a").unlink()
    with pytest.raises(FileNotFoundError):
        a.create()
    assert not (tmp_path / "a").exists()


def test_configure_closes_what_is_over_the_new_capacity(tmp_path: Path) -> None:
    cache = FileHandleCache(capacity=10)
    for i in range(10):
        LogFile(tmp_path / f"f{i}", cache).create()
    cache.configure(3)
    assert cache.open_count == 3
