"""What reading a silo file refuses: the whole file (`FileRefused`) or one row (`Reject`).

A refused file is an EngineError: its message is what a person reads (it names the file, and the
line where there is one, and says how to fix it); its `problems` hold the same refusal located
(file, line, field) for callers that want it structured. A refused import is `ImportRefused`
(engine/intake/importer.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from engine.support.errors import EngineError, Problem


class FileRefused(EngineError):
    """The whole file cannot be used; the message names the file and says how to fix it."""

    @classmethod
    def at(cls, path: Path, reason: str, *, line: int | None = None, field: str = "") -> FileRefused:
        """The refusal `<path>: <reason>`, located in the file (at `line`, in `field`, when known)."""
        return cls(f"{path}: {reason}", [Problem(file=str(path), line=line, field=field, message=reason)])


class Reject(BaseModel):
    """One row that was not imported, and why (`field` is None for whole-row problems)."""

    file: str
    line: int
    field: str | None = None
    reason: str
