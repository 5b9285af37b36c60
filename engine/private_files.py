"""What the engine writes outside its database — agendas, the outbox folder, rejects reports,
the demo's files — is readable by its owner only, whatever the umask: every folder it creates
is 0700 (each missing level, not only the last one), every file 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def private_dir(path: Path) -> Path:
    """Create `path` and each missing parent with mode 0700; existing folders are left alone."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)
    return path if not missing else missing[0]


def open_private(path: Path, mode: str = "w", **kwargs) -> IO:
    """Open `path` for writing from scratch, mode 0600 even if it existed with another mode."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, **kwargs)


def write_private(path: Path, data: str | bytes) -> None:
    """Write atomically (a temporary file renamed over `path`), readable by the owner only."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as f:
        f.write(data)
    os.replace(tmp, path)
