"""Exclusive use of an output folder: an flock on FOLDER/.optbench.lock while a process works in it.

The kernel drops the lock when its process ends, kill -9 included, so a lock is never stale.
A folder this process created and left without results is removed again on an early error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from optbench.errors import LockedError
from optbench.io import check_writable_dir

LOCK_FILE = ".optbench.lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path, field: str = "out") -> Iterator[Path]:
    """Hold the folder's lock, or raise LockedError naming the pid that holds it."""
    folder = Path(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockedError(f"in use by another optbench process (pid {holder}); wait for it to finish or stop it",
                          file=folder, field=field) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete half-written `.NAME.*.tmp` files that a killed writer left (call with the lock held)."""
    gone = []
    for path in [*folder.glob(".*.tmp"), *folder.glob("*/.*.tmp")]:
        path.unlink(missing_ok=True)
        gone.append(path)
    return gone


def _make_folder(folder: Path) -> bool:
    """Create `folder`; True only for the one process whose mkdir made it (two may race)."""
    if folder.exists():
        return False
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except OSError:  # FileExistsError: another process won; others: check_writable_dir names them
        return False
    return True


@contextlib.contextmanager
def claimed_folder(folder: str | Path, keep: tuple[str, ...], field: str = "out") -> Iterator[Path]:
    """Create (if needed) and lock `folder`; on an error, remove it again when this call created it
    and none of the `keep` entries (results, checkpoints) was written.

    A process that finds the folder locked leaves it alone: it belongs to the lock holder.
    """
    folder = Path(folder)
    created = _make_folder(folder)
    check_writable_dir(folder, f"--{field}")
    with folder_lock(folder, field):  # LockedError propagates before anything is removed
        try:
            yield folder
        except BaseException:
            if created and not any((folder / name).exists() for name in keep):
                shutil.rmtree(folder, ignore_errors=True)
            raise
