"""The workspace database: one SQLite file holding the town's data, imports and screening results.

Personal data (name, kana, address, birth_date) lives only here, in the coordinator's
workspace. Nothing that leaves the workspace (logs, e-mails, Prefect) may read those columns.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from engine.store.migrations import WorkspaceTooNew, migrate, refuse_newer, schema_version
from engine.store.schema import SCHEMA

__all__ = ["DB_FILENAME", "SCHEMA", "WorkspaceTooNew", "connect", "current_import_seq", "db_path", "migrate"]

DB_FILENAME = "engine.db"


def db_path(workspace: Path) -> Path:
    return Path(workspace) / DB_FILENAME


def connect(workspace: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and create if needed) the workspace database, owner-readable only, migrated to the
    latest schema (engine/store/migrations.py). A read-only open does not migrate. Either refuses
    (WorkspaceTooNew) a database written by a newer engine."""
    workspace = Path(workspace)
    path = db_path(workspace)
    if readonly:
        if not path.exists():
            raise FileNotFoundError(
                f"no database at {path}: run `engine import` (or `engine demo`) with --workspace {workspace} first"
            )
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    else:
        workspace.mkdir(parents=True, exist_ok=True)
        os.chmod(workspace, 0o700)
        if not path.exists():
            path.touch(mode=0o600)
        conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        if readonly:
            refuse_newer(conn, schema_version(conn))
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def current_import_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(import_seq), 0) FROM imports").fetchone()[0]
