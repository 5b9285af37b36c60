"""Case states and the audit journal (engine/store/lifecycle.py): exactly the listed transitions are
allowed, in Python and by a database trigger; the audit log is append-only, and it holds every state
change of a case."""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from datetime import timedelta

import pytest

from engine.casework.handshake import accept, decline
from engine.casework.sweep import daily_sweep
from engine.store.lifecycle import OPEN_STATES, STATE_LABELS, TRANSITIONS, CaseNotFound, InvalidTransition, Log
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    DAY,
    LEAD,
    MEETING_DAY,
    audit_count,
    d,
    decide,
    open_cases,
    plan_text,
    status_of,
)
from tests.helpers.town import ON

STATES = sorted(TRANSITIONS)
PAIRS = [(a, b) for a in STATES for b in STATES if a != b]


def path_to(state: str) -> list[str]:
    """The allowed states to walk through from 'detected' to `state` (breadth first)."""
    came = {"detected": None}
    todo = deque(["detected"])
    while todo:
        s = todo.popleft()
        for t in sorted(TRANSITIONS[s]):
            if t not in came:
                came[t] = s
                todo.append(t)
    assert state in came, f"{state} cannot be reached from detected"
    steps = []
    while state != "detected":
        steps.append(state)
        state = came[state]
    return steps[::-1]


def make_case(conn: sqlite3.Connection, log: Log, state: str, case_id: str = "C-2026-90001") -> str:
    """A bare case row brought into `state` through allowed moves only."""
    conn.execute(
        "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, rules_hash, config_hash) "
        "VALUES (?, ?, 'detected', ?, 'medium', '', 'r', 'c')",
        (case_id, "H-" + case_id, ON.isoformat()),
    )
    for step in path_to(state):
        assert log.move(case_id, step, f"準備: {step}") is True
    conn.commit()
    assert log.status(case_id) == state
    return case_id


# --- transitions -------------------------------------------------------------------------------------
def test_every_state_is_reachable_and_the_database_knows_the_transitions(conn):
    for state in STATES:
        assert state == "detected" or path_to(state)
    in_db = set(conn.execute("SELECT from_status, to_status FROM case_transitions").fetchall())
    assert in_db == {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_log_move_allows_exactly_the_listed_transitions(conn, src, dst):
    log = Log(conn, ON, "tester", rules_hash="rules-abc", config_hash="config-xyz")
    case_id = make_case(conn, log, src)
    before = audit_count(conn)
    if dst in TRANSITIONS[src]:
        assert log.check(case_id, dst) == src
        assert log.move(case_id, dst, "理由のテスト", meeting_id="M-TEST") is True
        conn.commit()
        assert conn.execute("SELECT status, is_open FROM cases WHERE case_id = ?", (case_id,)).fetchone() == (
            dst,
            int(dst in OPEN_STATES),
        )
        assert audit_count(conn) == before + 1
        row = conn.execute(
            "SELECT event, case_id, household_id, meeting_id, from_status, to_status, actor, on_day, reason, rules_hash, config_hash, at "
            "FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        assert row[:11] == (
            "transition",
            case_id,
            "H-" + case_id,
            "M-TEST",
            src,
            dst,
            "tester",
            ON.isoformat(),
            "理由のテスト",
            "rules-abc",
            "config-xyz",
        )
        assert row[11]  # wall-clock time
    else:
        with pytest.raises(InvalidTransition) as err:
            log.check(case_id, dst)
        with pytest.raises(InvalidTransition):
            log.move(case_id, dst, "許されない")
        assert STATE_LABELS[src] in str(err.value) and STATE_LABELS[dst] in str(err.value) and case_id in str(err.value)
        assert status_of(conn, case_id) == src
        assert audit_count(conn) == before


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_database_trigger_refuses_a_raw_update_outside_the_transitions(conn, src, dst):
    log = Log(conn, ON, "tester", rules_hash="r", config_hash="c")
    case_id = make_case(conn, log, src)
    if dst in TRANSITIONS[src]:
        conn.execute("UPDATE cases SET status = ? WHERE case_id = ?", (dst, case_id))
        conn.commit()
        assert status_of(conn, case_id) == dst
    else:
        with pytest.raises(sqlite3.IntegrityError, match="invalid case transition"):
            conn.execute("UPDATE cases SET status = ? WHERE case_id = ?", (dst, case_id))
        conn.rollback()
        assert status_of(conn, case_id) == src


@pytest.mark.parametrize("state", STATES)
def test_a_move_to_the_current_state_is_a_no_op_without_an_audit_entry(conn, state):
    log = Log(conn, ON, "tester", rules_hash="r", config_hash="c")
    case_id = make_case(conn, log, state)
    before = audit_count(conn)
    assert log.move(case_id, state, "同じ状態") is False
    assert status_of(conn, case_id) == state and audit_count(conn) == before
    conn.execute(
        "UPDATE cases SET status = ? WHERE case_id = ?", (state, case_id)
    )  # the trigger lets an unchanged status through


@pytest.mark.parametrize("state", [s for s in STATES if s != "detected"])
def test_a_new_case_must_start_as_detected(conn, state):
    with pytest.raises(sqlite3.IntegrityError, match="starts as detected"):
        conn.execute(
            "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, rules_hash, config_hash) VALUES ('C-X', 'HX', ?, '2026-11-27', 'medium', '', 'r', 'c')",
            (state,),
        )
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0


def test_archived_is_final_and_says_so(conn):
    log = Log(conn, ON, "tester", rules_hash="r", config_hash="c")
    case_id = make_case(conn, log, "archived")
    assert conn.execute("SELECT is_open FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0] == 0
    with pytest.raises(InvalidTransition, match="なし"):
        log.move(case_id, "reopened", "もどし")


def test_moving_an_unknown_case_is_refused(conn):
    log = Log(conn, ON, "tester", rules_hash="r", config_hash="c")
    with pytest.raises(CaseNotFound, match="C-2026-77777"):
        log.move("C-2026-77777", "convened", "x")
    assert audit_count(conn) == 0


def test_log_takes_the_rules_hash_of_the_last_screen_when_not_given(convened):
    log = Log(convened.conn, DAY, "someone")
    assert log.rules_hash == convened.rules.hash
    log.event("contact", case_id=convened.case, reason="テスト", agency="houkatsu_chuo")
    row = convened.conn.execute(
        "SELECT household_id, rules_hash, config_hash, detail FROM audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert row[:3] == ("H1", convened.rules.hash, None) and json.loads(row[3]) == {"agency": "houkatsu_chuo"}


def test_escalate_raises_once_per_key(conn):
    log = Log(conn, DAY, "tester", rules_hash="r", config_hash="c")
    assert log.escalate("k:1", "lead_no_answer", "詳細", case_id="C-1") is True
    assert log.escalate("k:1", "lead_no_answer", "詳細", case_id="C-1") is False
    assert conn.execute("SELECT subject_key, case_id, kind, raised_on FROM escalations").fetchall() == [
        ("k:1", "C-1", "lead_no_answer", DAY.isoformat())
    ]
    assert conn.execute("SELECT COUNT(*) FROM audit_log WHERE event = 'escalation'").fetchone()[0] == 1


# --- the audit log is append-only and complete -------------------------------------------------------
def test_audit_log_refuses_update_and_delete_and_keeps_its_rows(convened):
    conn = convened.conn
    before = conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
    assert len(before) >= 6
    for sql in (
        "UPDATE audit_log SET reason = '改ざん' WHERE seq = 1",
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM audit_log",
        "INSERT INTO audit_log (seq, at, on_day, actor, event) VALUES (1, 'x', 'x', 'x', 'x') ON CONFLICT(seq) DO UPDATE SET actor = 'x'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
        conn.rollback()
    assert conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall() == before
    # appending still works
    Log(conn, DAY, "tester").event("contact", case_id=convened.case, reason="追記")
    conn.commit()
    assert audit_count(conn) == len(before) + 1


def test_audit_log_cannot_be_overwritten_with_insert_or_replace(convened):
    conn = convened.conn
    first = conn.execute("SELECT * FROM audit_log WHERE seq = 1").fetchone()
    try:
        conn.execute(
            "INSERT OR REPLACE INTO audit_log (seq, at, on_day, actor, event, reason) VALUES (1, 'x', '2000-01-01', 'intruder', 'opened', '')"
        )
        conn.commit()
    except sqlite3.DatabaseError as err:
        assert "append-only" in str(err)
        conn.rollback()
    assert conn.execute("SELECT * FROM audit_log WHERE seq = 1").fetchone() == first


def test_every_state_change_of_a_long_run_is_in_the_audit_log(conn, workspace, rules, cfg):
    # replaying the audit's transitions gives each case's current state, after a mixed story
    (a, ma), (b, mb), (c, mc) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, a, MEETING_DAY, "tester")
    decide(conn, workspace, rules, cfg, b, mb, MEETING_DAY, plan_text())
    decline(conn, rules, cfg, b, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        c,
        mc,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-01-12\nreason: 本人が支援を希望しないため\n",
    )
    day = d("2026-12-05")
    while day <= d("2027-04-30"):
        nightly_cycle(conn, workspace, rules, cfg, day, screen_first=False)
        daily_sweep(conn, rules, cfg, day)
        day += timedelta(days=1)
    for case_id, status in conn.execute("SELECT case_id, status FROM cases"):
        moves = conn.execute(
            "SELECT from_status, to_status FROM audit_log WHERE case_id = ? AND event = 'transition' ORDER BY seq",
            (case_id,),
        ).fetchall()
        state = "detected"
        for src, dst in moves:
            assert src == state, (case_id, moves)
            state = dst
        assert state == status, (case_id, moves)
