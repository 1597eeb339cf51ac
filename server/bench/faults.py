"""Disk faults on demand: a small tmpfs that fills up or turns read-only mid-show.

Used by the soak bench and the fault tests. Mounting needs root in a mount
namespace of its own (scripts/test and the soak bench run in `unshare -n -m`),
so nothing here touches the machine's real mounts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

PRIVATE_MOUNTS_ENV = "GANVJ_PRIVATE_MOUNTS"  # "1" where the run has a mount namespace of its own


def can_mount() -> str | None:
    """None if a tmpfs can be mounted here, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (scripts/test runs in a user or root namespace)"
    if shutil.which("mount") is None:
        return "no `mount` command"
    # scripts/test and the soak bench say so; else compare with init's namespace if visible.
    private = os.environ.get(PRIVATE_MOUNTS_ENV) == "1"
    if not private:
        try:
            private = os.readlink("/proc/self/ns/mnt") != os.readlink("/proc/1/ns/mnt")
        except OSError:
            private = False
    if not private:
        return "not in a private mount namespace (run under `unshare -m`, as scripts/test does)"
    return None


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """Mount a `size_kb` tmpfs at `path` for the duration."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file until the file system is full; returns it (delete it to free)."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:
        block = b"\0" * 4096
        try:
            while True:
                handle.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def set_read_only(path: Path, read_only: bool) -> None:
    """Remount the tmpfs at `path` read-only or read-write."""
    mode = "ro" if read_only else "rw"
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)
