"""Writers at the same time (engine/store/db.py): a write waits for another command's write (busy
timeout BUSY_TIMEOUT_S), says so in one line past it, and every state change reads what it changes
under the write lock, so two commands at once leave what the same two leave one after the other.

Interleavings are forced, not hoped for: the test holds the write lock (BEGIN IMMEDIATE on its own
connection), starts the commands, waits until each is at its first write (a trace callback and an
authorizer on the command's connection say so), then lets go."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import threading
import traceback
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.casework.audit import run_audit
from engine.casework.handshake import HandshakeError, accept, decline
from engine.cli.main import app
from engine.store import db
from engine.store.db import connect
from engine.support import clock
from tests.helpers.casework import DAY, LEAD, PLAN, add_8050, decide, open_cases, plan_text, status_of
from tests.helpers.paths import CONFIG_DIR, ROOT, RULES_DIR

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=clock.TOKYO)  # the Monday after the meeting: answers, sweep, a run
ON = DAY.isoformat()
EXTRACT = ROOT / "tests" / "reliability" / "hostile" / "csv" / "base"
CLOSE = f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n"
DEADLINE_S = 120  # for a command to reach its first write, or to finish (polled, never slept)


# --- the commands, each in its own process ------------------------------------------------------------
def _hooked(ready) -> None:
    """Make every writable connection of this process set `ready` at its first write to the database
    (BEGIN IMMEDIATE, or an INSERT/UPDATE/DELETE of a main table when the transaction began deferred)."""
    plain = sqlite3.connect

    def connect_(target, *args, **kwargs):
        conn = plain(target, *args, **kwargs)
        if "mode=ro" in str(target):
            return conn

        def writes(action, _a, _b, database, _source):
            if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE) and database == "main":
                ready.set()
            return sqlite3.SQLITE_OK

        conn.set_authorizer(writes)
        conn.set_trace_callback(lambda sql: ready.set() if sql.lstrip().upper().startswith("BEGIN IMMEDIATE") else None)
        return conn

    sqlite3.connect = connect_


def _command(argv: list[str], ready, results) -> None:
    """Child process: `engine ARGV` on the pinned day NOW; (exit code, output) to `results`."""
    os.environ[clock.ENV] = NOW.isoformat()
    _hooked(ready)
    ran = CliRunner().invoke(app, argv, env={"COLUMNS": "250"})
    crash = ran.exception if ran.exception and not isinstance(ran.exception, SystemExit) else None
    tb = "".join(traceback.format_exception(crash)) if crash else ""
    results.put((argv[0], ran.exit_code, ran.output + tb))


def at_once(ws: Path, *commands: list[str]) -> list[tuple[str, int, str]]:
    """Run the commands in separate processes while this test holds the write lock; let go once each
    has reached its first write (or ended); their (command, exit code, output)."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    holder = sqlite3.connect(ws / "engine.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = []
    try:
        for argv in commands:
            ready = ctx.Event()
            proc = ctx.Process(target=_command, args=(argv, ready, results))
            proc.start()
            started.append((proc, ready))
        deadline = clock.monotonic() + DEADLINE_S
        while not all(ready.is_set() or not proc.is_alive() for proc, ready in started):
            assert clock.monotonic() < deadline, "a command did not reach its first write"
            started[0][1].wait(0.05)
    finally:
        holder.execute("COMMIT")
        holder.close()
    out = [results.get(timeout=DEADLINE_S) for _ in commands]
    for proc, _ in started:
        proc.join(DEADLINE_S)
    return out


def one_after_the_other(ws: Path, *commands: list[str]) -> None:
    with clock.pinned(NOW):
        for argv in commands:
            ran = CliRunner().invoke(app, argv, env={"COLUMNS": "250", clock.ENV: NOW.isoformat()})
            assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.output
            assert ran.exit_code in (0, 1), ran.output


def state(ws: Path) -> dict:
    """What the commands leave: the rows of every table, the cases, requests and queued e-mails."""
    conn = sqlite3.connect(f"file:{ws / 'engine.db'}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: dict = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        for what in (
            "SELECT case_id, household_id, status, meeting_id, lead_agency_id, lead_confirmed_on FROM cases ORDER BY 1",
            "SELECT case_id, agency_id, status, requested_on FROM lead_requests ORDER BY request_id",
            "SELECT household_id, rule_id, status FROM flags ORDER BY 1, 2, 3",
            "SELECT message_key, status FROM outbox ORDER BY 1",
        ):
            out[what] = conn.execute(what).fetchall()
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def town(tmp_path_factory, rules, cfg):
    """Cases C-2026-00001 (a plan: its lead request to houkatsu_chuo pending) and C-2026-00002 (on
    the 支援会議 of 2026-12-04, its outcome not recorded yet), and a new 8050 household H3 that the
    next run convenes."""
    ws = tmp_path_factory.mktemp("concurrency") / "ws"
    conn = connect(ws)
    (c1, meeting), (c2, _) = open_cases(conn, ws, rules, cfg, "H1", "H2")
    decide(conn, ws, rules, cfg, c1, meeting, DAY, PLAN)
    add_8050(conn, "H3")
    conn.execute("UPDATE households SET changed_seq = 1 WHERE household_id = 'H3'")
    conn.execute("INSERT INTO imports VALUES (1, '2026-12-06T00:00:00+00:00', 'x', 'utf-8', '{}')")
    conn.commit()
    conn.close()
    outcome = ws.parent / "continue.yaml"
    outcome.write_text("decision: continue\n", encoding="utf-8")
    return {"ws": ws, "c1": c1, "c2": c2, "meeting": meeting, "outcome": outcome}


def commands(t: dict, ws: Path) -> dict[str, list[str]]:
    common = ["--workspace", str(ws), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR), "--date", ON]
    return {
        "run": ["run", *common, "--no-send"],
        "import": ["import", str(EXTRACT), "--workspace", str(ws)],
        "accept": ["accept", t["c1"], "--agency", LEAD, *common, "--by", "tester"],
        "sweep": ["sweep", *common],
        "outcome": ["outcome", t["meeting"], t["c2"], "--file", str(t["outcome"]), *common, "--by", "tester"],
    }


@pytest.mark.parametrize("pair", [("run", "run"), ("run", "import"), ("run", "accept"), ("sweep", "outcome")])
def test_two_writers_at_once_leave_what_one_after_the_other_leaves(pair, town, tmp_path, cfg):
    ws = tmp_path / "ws"
    shutil.copytree(town["ws"], ws)
    first, second = (commands(town, ws)[c] for c in pair)
    ran = at_once(ws, first, second)
    for command, code, output in ran:
        assert "Traceback" not in output and code == 0, (command, code, output)
    serial = []
    for order in ((first, second), (second, first)):
        ref = tmp_path / f"ref{len(serial)}"
        shutil.copytree(town["ws"], ref)
        one_after_the_other(ref, *([a if a != str(ws) else str(ref) for a in argv] for argv in order))
        serial.append(state(ref))
    assert state(ws) in serial
    conn = connect(ws, readonly=True)
    try:
        assert run_audit(conn, cfg, DAY).violations == []
    finally:
        conn.close()


# --- an answer against a decline -----------------------------------------------------------------------
def test_an_accept_waiting_behind_a_decline_rereads_the_request_and_is_refused(conn, workspace, rules, cfg):
    """The issue's race: the accept read the pending request, the decline committed, the accept wrote:
    the case closed with the declining agency as lead and the next agency's request still queued."""
    ((case_id, meeting),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting, DAY, CLOSE)
    conn.execute("BEGIN IMMEDIATE")  # the decline's transaction, opened before the accept starts
    waiting, outcome = threading.Event(), {}

    def accepting():
        mine = connect(workspace)
        mine.set_trace_callback(
            lambda sql: waiting.set() if sql.lstrip().upper().startswith(("BEGIN", "UPDATE")) else None
        )
        try:
            outcome["result"] = accept(mine, cfg, case_id, DAY, "tester", LEAD)
        except HandshakeError as err:
            outcome["refused"] = str(err)
        finally:
            waiting.set()
            mine.close()

    thread = threading.Thread(target=accepting)
    thread.start()
    assert waiting.wait(DEADLINE_S)  # the accept has read what it wanted and waits for the lock
    nxt = decline(conn, rules, cfg, case_id, "担当件数が上限のため", DAY, "tester", LEAD).next_agency
    if conn.in_transaction:
        conn.commit()
    thread.join(DEADLINE_S)
    assert nxt and nxt != LEAD
    assert "result" not in outcome and nxt in outcome["refused"]
    assert status_of(conn, case_id) == "lead_pending"
    assert (
        conn.execute("SELECT lead_agency_id, lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()[1]
        is None
    )
    assert conn.execute(
        "SELECT agency_id, status FROM lead_requests WHERE case_id = ? ORDER BY request_id", (case_id,)
    ).fetchall() == [(LEAD, "declined"), (nxt, "pending")]
    assert run_audit(conn, cfg, DAY).violations == []


def test_an_accept_without_agency_on_the_day_of_a_re_request_is_refused(conn, workspace, rules, cfg):
    """`decline` then `accept` without --agency the same day accepted for the next agency, which had
    not even been sent the request: the accept must name it."""
    ((case_id, meeting),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting, DAY, plan_text())
    nxt = decline(conn, rules, cfg, case_id, "担当件数が上限のため", DAY, "tester").next_agency
    with pytest.raises(HandshakeError, match=f"--agency {nxt}"):
        accept(conn, cfg, case_id, DAY, "tester")
    assert status_of(conn, case_id) == "lead_pending"
    assert accept(conn, cfg, case_id, DAY, "tester", nxt).status == "active"  # named: recorded


def test_a_case_moved_by_another_command_after_it_was_read_is_not_moved_again(conn, workspace, rules, cfg):
    """Log.move writes only over the state it read (its check and its write can be apart)."""
    from engine.store.lifecycle import InvalidTransition, Log

    ((case_id, _),) = open_cases(conn, workspace, rules, cfg)
    log = Log(conn, DAY, "tester")
    other = connect(workspace)
    real_check = log.check

    def check_then_other_moves(case, to):
        current = real_check(case, to)
        with other:
            other.execute("UPDATE cases SET status = 'suspended', is_open = 1 WHERE case_id = ?", (case,))
        return current

    log.check = check_then_other_moves
    with pytest.raises(InvalidTransition, match="他の操作で変わった"):
        with conn:
            log.move(case_id, "closed", "テスト")
    other.close()
    assert status_of(conn, case_id) == "suspended"


# --- the lock held too long ----------------------------------------------------------------------------
def test_writes_wait_a_generous_while_for_the_lock(workspace):
    conn = connect(workspace)
    try:
        waits_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        assert waits_ms >= 30_000 and waits_ms == db.BUSY_TIMEOUT_S * 1000
    finally:
        conn.close()


def test_a_write_that_waited_past_the_busy_timeout_says_so_in_one_line(convened, monkeypatch):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2, raising=False)
    convened.outcome(PLAN)
    holder = sqlite3.connect(convened.workspace / "engine.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        argv = ["accept", convened.case, "--workspace", str(convened.workspace), "--rules", str(RULES_DIR)]
        argv += ["--config", str(CONFIG_DIR), "--date", ON, "--by", "tester"]
        with clock.pinned(NOW):
            ran = CliRunner().invoke(app, argv, env={"COLUMNS": "250"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(ran.exception, SystemExit | None) and "Traceback" not in ran.output, ran.output
    assert ran.exit_code == 1
    (line,) = [x for x in ran.output.splitlines() if x.strip()]
    assert "busy" in line and "何も記録していません" in line and line.startswith("error:")
    assert status_of(convened.conn, convened.case) == "lead_pending"
