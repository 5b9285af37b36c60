"""What the machine does wrong is told, not shown as a traceback (engine/cli/errors.py): a damaged or
foreign engine.db, a full disk, a read-only workspace, a path that cannot be written. A bug still
keeps its traceback: an integrity error is not taken for any of these."""

from __future__ import annotations

import sqlite3

import pytest

from engine.cli.errors import refusal
from engine.cli.main import app
from engine.store.db import connect
from tests.helpers.cli import runner


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    connect(ws).close()  # an empty workspace of the current schema
    return ws


@pytest.mark.parametrize("damage", ["truncated", "not a database"])
@pytest.mark.parametrize("command", [["cases"], ["audit", "--date", "2026-11-27"], ["backlog"]])
def test_a_damaged_or_foreign_database_is_told_with_what_to_do(workspace, damage, command):
    db = workspace / "engine.db"
    if damage == "truncated":  # a copy cut short: the header is there, the pages are not
        with db.open("r+b") as f:
            f.truncate(1_000_000 if db.stat().st_size > 1_000_000 else db.stat().st_size // 2)
    else:
        for extra in workspace.glob("engine.db-*"):
            extra.unlink()
        db.write_text("household_id,area\nH1,中央\n", encoding="utf-8")  # a CSV saved over it
    ran = runner.invoke(app, [*command, "--workspace", str(workspace)])
    assert ran.exit_code == 2, ran.output
    assert "Traceback" not in ran.output and (ran.exception is None or isinstance(ran.exception, SystemExit))
    assert "engine.db" in ran.output and "バックアップ" in ran.output, ran.output


@pytest.mark.parametrize(
    "text, code, says",
    [
        ("database or disk is full", 1, "the disk is full"),
        ("attempt to write a readonly database", 1, "read-only"),
        ("unable to open database file", 2, "cannot be opened"),
        ("database is locked", 1, "another"),
    ],
)
def test_what_sqlite_says_of_the_machine_becomes_a_sentence(text, code, says):
    told = refusal(sqlite3.OperationalError(text), "run", {"by": None})
    assert told is not None and told[1] == code and says in told[0], told


def test_a_bug_keeps_its_traceback():
    assert refusal(sqlite3.IntegrityError("UNIQUE constraint failed: cases.case_id"), "run", {}) is None
    assert refusal(sqlite3.OperationalError("no such column: x"), "run", {}) is None
    assert refusal(OSError("something without a file"), "run", {}) is None


def test_a_path_that_cannot_be_written_names_the_path(tmp_path, workspace):
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    ran = runner.invoke(app, ["export", str(blocker / "exports"), "--workspace", str(workspace)])
    assert ran.exit_code == 2 and str(blocker / "exports") in ran.output and "Traceback" not in ran.output


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:8399/"), ("::1", "http://[::1]:8399/")])
def test_engine_web_prints_an_address_a_browser_can_open(workspace, monkeypatch, host, url):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(kw))  # not started: only its address
    ran = runner.invoke(app, ["web", "--workspace", str(workspace), "--host", host, "--port", "8399"])
    assert ran.exit_code == 0 and f"engine web: {url}" in ran.output, ran.output
    assert served["host"] == host
