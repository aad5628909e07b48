"""Every run file is opened here: a regular file in a real run folder, never through a symbolic link.

A run folder can come from elsewhere (a tarball, a shared disk), and a link in it would make a
writer append to, cut ("repair") or replace a file outside the folder, and a reader show another
file as the run's. So every reader and writer of a run file (``manifest.json``, ``problems.jsonl``,
``samples.jsonl``, ``batches.jsonl``, ``grades.parquet``, ``samples_meta.parquet``,
``grade_cache.json``, ``.lock`` and their temporary files), in ``rundir``, ``pipeline`` and the
viewer alike, goes through these functions, which refuse with one line naming the path:

- the run folder itself is looked at with ``lstat``: a link, or something that is not a folder;
- the file is looked at with ``lstat``: a link, or anything but a regular file (a folder, a FIFO,
  a device), whether it is to be read or written;
- then it is opened with ``O_NOFOLLOW`` (a link swapped in since is refused by the kernel) and the
  open descriptor is checked again (so is a FIFO; reads open non-blocking, a FIFO never hangs one);
- a temporary file is removed and created anew (``O_EXCL``), so a planted ``manifest.json.tmp``
  link cannot redirect a write either, and a replace checks its target first.

The folders above the run folder (where results live) are the user's to choose and may be links.
Refusals are ``UnsafeRunFile`` (a ``StoreError``); any other ``OSError`` passes through for the
caller to word (the store turns a failed write into ``StoreWriteError``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from m1eval.rundir.errors import UnsafeRunFile

PathLike = str | os.PathLike[str]


def _link_error(path: Path, what: str = "") -> UnsafeRunFile:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return UnsafeRunFile(
        f"{path}{what} is a symbolic link (to {target}); run files are read and written only as regular "
        "files inside a real run folder, never through a link (replace it with a copy)"
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _not_regular(path: Path, mode: int) -> UnsafeRunFile:
    return UnsafeRunFile(f"{path} is {_kind(mode)}, not a regular file; run files are neither read nor written as such")


def check_folder(folder: PathLike) -> Path:
    """``folder`` when it is a real folder or does not exist yet; ``UnsafeRunFile`` when it is a link or a file."""
    folder = Path(folder)
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return folder
    if stat.S_ISLNK(info.st_mode):
        raise _link_error(folder, " (the run folder)")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRunFile(f"{folder} is {_kind(info.st_mode)}, not a run folder")
    return folder


def file_stat(path: PathLike) -> os.stat_result | None:
    """The ``lstat`` of a run file, None when it is absent; ``UnsafeRunFile`` when it (or its folder) is unsafe."""
    path = Path(path)
    check_folder(path.parent)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(info.st_mode):
        raise _link_error(path)
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    return info


def file_exists(path: PathLike) -> bool:
    """True when ``path`` is a regular file, False when absent; ``UnsafeRunFile`` otherwise (never follows a link)."""
    return file_stat(path) is not None


def _open(path: PathLike, flags: int, mode: int = 0o666) -> int:
    path = Path(path)
    file_stat(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link put there since the lstat
            raise _link_error(path) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_read(path: PathLike) -> BinaryIO:
    """A run file opened for reading (binary); ``FileNotFoundError`` when it is absent."""
    return os.fdopen(_open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")


def open_append(path: PathLike) -> BinaryIO:
    """A run file opened for appending, made if absent; unbuffered, so a failed write leaves nothing pending."""
    return os.fdopen(_open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab", buffering=0)


def open_update(path: PathLike) -> BinaryIO:
    """An existing run file opened for reading and writing in place (the torn-tail repair); unbuffered."""
    return os.fdopen(_open(path, os.O_RDWR), "r+b", buffering=0)


def open_lock(path: PathLike) -> int:
    """The descriptor of a lock file, made if absent (read and write)."""
    return _open(path, os.O_RDWR | os.O_CREAT)


def read_bytes(path: PathLike) -> bytes:
    with open_read(path) as handle:
        return handle.read()


def open_new(path: PathLike) -> BinaryIO:
    """A temporary file created anew: whatever had its name (a link included) is removed first."""
    path = Path(path)
    check_folder(path.parent)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise _not_regular(path, info.st_mode)
        os.unlink(path)  # a link is removed, not followed
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666), "wb")


def replace(tmp: PathLike, target: PathLike) -> None:
    """Move ``tmp`` over ``target`` (atomic); a link or a folder at ``target`` is refused, not replaced."""
    file_stat(target)
    os.replace(tmp, target)


def write_replace(target: PathLike, write: Callable[[BinaryIO], object], *, tmp: PathLike | None = None) -> None:
    """Write ``target`` whole and atomically: ``write`` fills a fresh temporary file, which is fsynced
    and moved over ``target``; on any failure the temporary file is removed and ``target`` is as it was."""
    target = Path(target)
    file_stat(target)  # refuse before any work
    tmp = Path(tmp) if tmp is not None else target.with_name(target.name + ".tmp")
    try:
        with open_new(tmp) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        replace(tmp, target)
    except BaseException:
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        except OSError:
            pass
        raise
