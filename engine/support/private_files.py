"""What the engine writes outside its database — agendas, the outbox folder, rejects reports,
the demo's files — is readable by its owner only, whatever the umask: every folder it creates
is 0700 (each missing level, not only the last one), every file 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from engine.support.errors import EngineError


class FolderRefused(EngineError):
    """A folder the engine would keep its files in that other users could change, or that holds
    files the engine did not make (said with the option that named it)."""

    exit_code = 2


def private_dir(path: Path) -> None:
    """Create `path` and each missing parent with mode 0700; existing folders are left alone."""
    missing = []
    path = Path(path)
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(folder, 0o700)


def own_folder(path: Path, option: str, marks: Iterable[str]) -> Path:
    """`path` as a folder for the engine's own files, created owner-only (0700) when absent, and
    refused (FolderRefused, naming `option`) when someone else could change what is in it: not
    yours, group- or world-writable (a 1777 shared folder), or not empty and not made by the
    engine (none of the files `marks` in it). A symbolic link is judged by the folder it points
    to, and must itself be yours. An existing folder is never chmodded."""
    path = Path(path)
    if not os.path.lexists(path):
        private_dir(path)
        return path
    if path.is_symlink() and os.lstat(path).st_uid not in (os.getuid(), 0):
        raise FolderRefused(f"{option} {path} is a link made by another user; give the folder itself")
    if not path.is_dir():
        raise FolderRefused(
            f"{option} {path} is {'a link to nothing' if not path.exists() else 'a file'}; give a folder"
        )
    where = f"{option} {path}" + (f" (a link to {path.resolve()})" if path.is_symlink() else "")
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise FolderRefused(
            f"{where}: other users can write to this folder (mode {stat.S_IMODE(info.st_mode):o}) and could change "
            "or replace the engine's files; give a new folder's name (the engine creates it, owner-only)"
        )
    if info.st_uid != os.getuid():
        raise FolderRefused(f"{where}: the folder belongs to another user; give a folder of your own or a new name")
    if not any((path / mark).exists() for mark in marks) and any(path.iterdir()):
        raise FolderRefused(
            f"{where}: the folder holds files the engine did not make; give an empty folder or a new folder's name"
        )
    return path


def open_private(path: Path, mode: str = "w", **kwargs) -> IO:
    """Create `path` anew for writing, mode 0600: an existing file (or a link in its place) is
    replaced, never written through or left with its old mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:  # the usual case first: the folder is there and the name is free
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        private_dir(Path(path).parent)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    return os.fdopen(fd, mode, **kwargs)


def write_private(path: Path, data: str | bytes, *, durable: bool = False, sync_folder: bool = True) -> None:
    """Write atomically (a temporary file renamed over `path`), readable by the owner only.
    `durable`: on disk before returning (file and folder fsync'd), for what must survive a power
    cut once reported as done — an e-mail written to the outbox folder. Without `sync_folder`,
    the caller syncs the folder itself (fsync_folder) before it reports the file as done."""
    tmp = f"{path}.tmp"
    try:
        with open_private(
            tmp, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else {"encoding": "utf-8"})
        ) as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # never a partial or stray copy beside what could not be written
        raise
    if durable and sync_folder:
        fsync_folder(Path(path).parent)


def fsync_folder(folder: Path) -> None:
    """fsync a folder: the files renamed into it are there after a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
