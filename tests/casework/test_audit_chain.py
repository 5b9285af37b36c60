"""The audit log is tamper-evident (issue 12): each entry's hash is chained to the one before, and
`engine audit --verify` reports a deleted or changed entry, or a dropped trigger — also after the
next ordinary command put the trigger back (before, it was silently recreated, and `history`
showed 0 rows after a DELETE with nothing to tell)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.store.audit_chain import GUARDS, verify
from engine.store.db import connect
from engine.store.lifecycle import Log

runner = CliRunner()


def check(workspace):
    """`engine audit --verify`: (exit code, output lines)."""
    result = runner.invoke(app, ["audit", "--verify", "--workspace", str(workspace)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output.strip().splitlines()


def tamper(workspace, *statements: str, keep_triggers: bool = True) -> None:
    """What someone with the database file does: drop the triggers, change the table, put them back."""
    raw = sqlite3.connect(workspace / "engine.db")
    for name in GUARDS:
        raw.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        raw.execute(sql)
    if keep_triggers:
        for sql in GUARDS.values():
            raw.execute(sql)
    raw.commit()
    raw.close()


@pytest.fixture
def logged(convened):
    """The convened workspace, its connection closed; entries 1..n in the log."""
    n = convened.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    assert n >= 6
    convened.conn.close()
    return convened.workspace, n


def test_an_intact_log_verifies_ok(logged):
    workspace, n = logged
    code, lines = check(workspace)
    assert code == 0 and len(lines) == 1 and lines[0].startswith(f"ok: audit log intact, {n:,} entries, chain head ")


def test_a_deleted_entry_is_reported(logged):
    workspace, n = logged
    tamper(workspace, "DELETE FROM audit_log WHERE seq = 3")
    assert check(workspace) == (1, ["audit log: seq 3 missing: deleted from the audit log"])


def test_deleted_newest_entries_are_reported(logged):
    workspace, n = logged
    tamper(workspace, f"DELETE FROM audit_log WHERE seq >= {n - 1}")
    assert check(workspace) == (1, [f"audit log: seq {n - 1}–{n} missing: deleted from the end of the audit log"])


def test_deleting_every_entry_is_reported_and_history_is_not_the_only_witness(logged):
    workspace, n = logged
    tamper(workspace, "DELETE FROM audit_log")
    assert check(workspace) == (1, [f"audit log: seq 1–{n} missing: deleted from the end of the audit log"])


def test_a_changed_entry_is_reported(logged):
    workspace, n = logged
    tamper(workspace, "UPDATE audit_log SET reason = '改ざん' WHERE seq = 2")
    code, lines = check(workspace)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("audit log: seq 2 (") and "does not match its hash" in lines[0]


def test_a_changed_entry_whose_own_hash_was_recomputed_breaks_the_next_link(logged):
    from engine.store.audit_chain import COLUMNS, link

    workspace, n = logged
    raw = sqlite3.connect(workspace / "engine.db")
    previous = raw.execute("SELECT chain FROM audit_log WHERE seq = 1").fetchone()[0]
    row = list(raw.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE seq = 2").fetchone())
    row[COLUMNS.index("actor")] = "someone else"
    raw.close()
    tamper(
        workspace,
        f"UPDATE audit_log SET actor = 'someone else', chain = '{link(previous, row)}' WHERE seq = 2",
    )
    code, lines = check(workspace)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("audit log: seq 3 (") and "hash" in lines[0]


@pytest.mark.parametrize("how", ["dropped", "replaced"])
def test_a_dropped_trigger_stays_reported_after_an_ordinary_command_restored_it(logged, how):
    workspace, n = logged
    raw = sqlite3.connect(workspace / "engine.db")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    if how == "replaced":  # the same name, doing nothing
        raw.execute("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END")
    raw.commit()
    raw.close()
    history = runner.invoke(app, ["history", "C-2026-00001", "--workspace", str(workspace)])  # an ordinary command
    assert history.exit_code == 0, history.output
    conn = connect(workspace)
    try:
        restored = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_log_no_delete'").fetchone()[0]
        assert restored == GUARDS["audit_log_no_delete"]  # protected again…
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_log WHERE seq = 1")
    finally:
        conn.close()
    code, lines = check(workspace)  # …and still told
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"audit log: seq {n + 1} (") and "audit_log_no_delete" in lines[0]
    assert ("（削除）" if how == "dropped" else "（変更）") in lines[0]


def test_a_trigger_missing_now_is_reported_by_verify_itself(logged):
    workspace, _ = logged
    tamper(workspace, keep_triggers=False)
    conn = sqlite3.connect(workspace / "engine.db")
    problems = verify(conn)[0]
    conn.close()
    assert problems == [f"trigger {name} protecting audit_log is missing at this moment" for name in GUARDS]


def test_writers_at_once_keep_one_chain(workspace):
    """Entries appended by several connections at once: each is linked to the one before it."""
    connect(workspace).close()
    errors = []

    def write(who: str) -> None:
        try:
            conn = connect(workspace)
            log = Log(conn, date(2026, 11, 27), who)
            for i in range(25):
                with conn:
                    log.event("note", reason=f"{who} {i}")
            conn.close()
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = connect(workspace)
    try:
        assert verify(conn)[:2] == ([], 100)
    finally:
        conn.close()
