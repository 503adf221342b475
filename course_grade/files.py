"""Course files read and written without following what a submission left behind: links,
pipes, devices and hard links are never followed or read."""
from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath


def _safe(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"refusing a file name that leaves its folder: {rel!r}")
    return path


def write_files(folder: Path, files: dict[str, bytes], modes: dict[str, int] | None = None) -> None:
    """Write `files` (relative path -> bytes) under `folder`, each with its permission bits in
    `modes` if given there (a file nbgrader made read-only stays so)."""
    for rel, data in files.items():
        target = folder.joinpath(*_safe(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if modes and rel in modes:
            os.chmod(target, modes[rel] & 0o777)


def read_regular(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file with no other name; None for a link (never
    followed), a pipe, a device, a folder or a hard link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _regular_files(folder: Path) -> list[Path]:
    """The regular files below `folder`, found without following a link."""
    found = []
    for top, _dirs, files in os.walk(folder):
        found += [Path(top, name) for name in files if stat.S_ISREG(os.lstat(os.path.join(top, name)).st_mode)]
    return sorted(found)


def read_files(folder: Path) -> dict[str, bytes]:
    """Every regular file below `folder` (relative path -> bytes); links and special files are
    never followed or read."""
    out = {}
    for path in _regular_files(folder):
        data = read_regular(path)
        if data is not None:
            out[path.relative_to(folder).as_posix()] = data
    return out


def file_modes(folder: Path) -> dict[str, int]:
    """The permission bits of every file under `folder` (as read_files names them)."""
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(os.lstat(p).st_mode) for p in _regular_files(folder)}
