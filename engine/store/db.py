"""The workspace database: one SQLite file holding the town's data, imports and screening results.

Personal data (name, kana, address, birth_date) lives only here, in the coordinator's
workspace. Nothing that leaves the workspace (logs, e-mails, Prefect) may read those columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.store.migrations import (
    LATEST_VERSION,
    WorkspaceTooNew,
    WorkspaceTooOld,
    migrate,
    refuse_newer,
    schema_version,
)
from engine.store.schema import SCHEMA
from engine.support.private_files import own_folder

__all__ = [
    "BUSY_MESSAGE",
    "BUSY_TIMEOUT_S",
    "DB_FILENAME",
    "DEMO_MARK",
    "SCHEMA",
    "WorkspaceTooNew",
    "WorkspaceTooOld",
    "connect",
    "current_import_seq",
    "db_path",
    "is_busy",
    "migrate",
    "write_transaction",
]

DB_FILENAME = "engine.db"
DEMO_MARK = ".demo"  # `engine demo` makes its workspace with this file first (engine/cli/operations.py)
# How long a write waits for another command's write to finish (`engine run` and a coordinator's
# `engine accept` at the same time), then gives up with busy_message().
BUSY_TIMEOUT_S = 30
BUSY_MESSAGE = (
    f"the workspace database stayed busy for {BUSY_TIMEOUT_S} s: another engine command is writing to it "
    "(a nightly run, an import); run this again when it has finished"
)


def db_path(workspace: Path) -> Path:
    return Path(workspace) / DB_FILENAME


def connect(workspace: Path, *, readonly: bool = False, any_thread: bool = False) -> sqlite3.Connection:
    """Open (and create if needed) the workspace database, owner-readable only, migrated to the
    latest schema (engine/store/migrations.py). A read-only open migrates only a database of an
    earlier engine (once: what its first write would do), then reads. Either refuses
    (WorkspaceTooNew) a database written by a newer engine. `any_thread`: the connection may be
    used from another thread than the one that opened it, one at a time (a web request: FastAPI
    opens it in one worker thread and runs the route in another)."""
    workspace = Path(workspace)
    path = db_path(workspace)
    if readonly:
        if not path.exists():
            raise FileNotFoundError(
                f"no database at {path}: run `engine import` (or `engine demo`) with --workspace {workspace} first"
            )
        own_folder(workspace, "--workspace", (DB_FILENAME, DEMO_MARK))
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=not any_thread
        )
    else:
        own_folder(workspace, "--workspace", (DB_FILENAME, DEMO_MARK))
        if not path.exists():
            path.touch(mode=0o600)
        # Python's implicit BEGIN (before the first INSERT/UPDATE/DELETE) takes the write lock at
        # once: a deferred transaction that has read cannot wait for the lock (SQLite refuses the
        # upgrade at once when another write committed since its snapshot)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level="IMMEDIATE", check_same_thread=not any_thread
        )
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        if readonly:
            version = schema_version(conn)
            refuse_newer(conn, version)
            if version < LATEST_VERSION:  # a workspace of an earlier engine: brought up to date once,
                conn.close()  # as its first write would, then read as asked
                connect(workspace, any_thread=any_thread).close()
                return connect(workspace, readonly=True, any_thread=any_thread)
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """migrate(), or WorkspaceTooOld in words when a database of an earlier engine cannot be written."""
    try:
        migrate(conn)
    except sqlite3.OperationalError as err:
        if is_busy(err):
            raise
        raise WorkspaceTooOld(
            f"{path} は前の版の engine のデータベースです（版 {schema_version(conn)}、この engine は版 {LATEST_VERSION}）。"
            f"更新できませんでした（{err}）。書き込めるようにしてから開き直すか、前の版の engine で読んでください。"
        ) from None


def database_file(conn: sqlite3.Connection) -> str:
    """The file `conn`'s main database is in; empty for a database in memory."""
    return next((file for _, name, file in conn.execute("PRAGMA database_list") if name == "main"), "")


def current_import_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(import_seq), 0) FROM imports").fetchone()[0]


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that holds the write lock from its first read (BEGIN IMMEDIATE): what
    it reads stays current until it commits, since no other command can write meanwhile (they wait,
    up to BUSY_TIMEOUT_S). Commits on success, rolls back on any exception. Inside a transaction
    the caller already holds, it is part of that one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def is_busy(err: BaseException) -> bool:
    """`err` says another command held the database's write lock for longer than BUSY_TIMEOUT_S."""
    return isinstance(err, sqlite3.OperationalError) and str(err).startswith("database is locked")
