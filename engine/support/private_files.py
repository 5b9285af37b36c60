"""What the engine writes outside its database — agendas, the outbox folder, rejects reports,
the demo's files — is readable by its owner only, whatever the umask: every folder it creates
is 0700 (each missing level, not only the last one), every file 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


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


def open_private(path: Path, mode: str = "w", **kwargs) -> IO:
    """Create `path` anew for writing, mode 0600: an existing file (or a link in its place) is
    replaced, never written through or left with its old mode."""
    path = Path(path)
    private_dir(path.parent)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    return os.fdopen(fd, mode, **kwargs)


def write_private(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """Write atomically (a temporary file renamed over `path`), readable by the owner only.
    `durable`: on disk before returning (file and folder fsync'd), for what must survive a power
    cut once reported as done — an e-mail written to the outbox folder."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(
        tmp, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else {"encoding": "utf-8"})
    ) as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
