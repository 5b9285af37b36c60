"""Versioned migrations of the workspace database (engine/store/migrations.py): a fresh workspace
gets the latest version, a workspace made before versions were recorded migrates with no data
lost, migrating again changes nothing, a failed step leaves the database as it was, and a
database of a newer engine is refused before anything is written."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from engine.participation.states import REFERRAL_TRANSITIONS
from engine.store import migrations
from engine.store.audit_chain import COLUMNS, link, verify
from engine.store.db import connect, db_path
from engine.store.lifecycle import TRANSITIONS
from engine.store.migrations import LATEST_VERSION, MIGRATIONS, Step, WorkspaceTooNew, migrate
from engine.store.schema import SCHEMA
from engine.support.errors import EngineError

# What the engine did to a new workspace before versions were recorded: SCHEMA, then the old
# migrate() added the lifecycle columns with these statements and loaded the transitions.
UNVERSIONED_LIFECYCLE = """
ALTER TABLE cases ADD COLUMN previous_case_id TEXT;
ALTER TABLE cases ADD COLUMN lead_confirmed_on TEXT;
ALTER TABLE cases ADD COLUMN consent_state TEXT;
ALTER TABLE cases ADD COLUMN closed_on TEXT;
ALTER TABLE cases ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;
"""
# a little of everything the engine writes, with personal data where the workspace keeps it
ROWS = """
INSERT INTO households VALUES ('H1', '中央', 'テスト町1-1', 1), ('H2', '北部', 'テスト町2-2', 1);
INSERT INTO persons VALUES ('P1', 'H1', '試験 太郎', 'シケン タロウ', '1944-04-01', 'M', '世帯主', '日本'),
                           ('P2', 'H1', '試験 一郎', 'シケン イチロウ', '1974-04-01', 'M', '子', '日本');
INSERT INTO records VALUES ('P1|t|care_level|2024-04-01|要介護2', 'P1', 't', 'care_level', '要介護2', '2024-04-01', NULL);
INSERT INTO imports VALUES (1, '2026-11-27T00:00:00+00:00', '/town', 'utf-8', '{}');
INSERT INTO screen_runs VALUES (1, '2026-11-27', '2026-11-27T00:00:00+00:00', 'full', 'r', 1, 2, 2, 1, 0, 0.1);
INSERT INTO flags VALUES (1, 'H1', 'r8050', 1, 'high', 'open', '2026-11-27', '2026-11-27', NULL, 1, '{}');
INSERT INTO meetings VALUES ('M-20261204-1400-S', 'support', '2026-12-04', '14:00', '第1会議室', 8, 0);
INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, rules_hash, config_hash)
    VALUES ('C-2026-00001', 'H1', 'detected', '2026-11-27', 'high', '支援会議', 'r', 'c');
UPDATE cases SET status = 'convened', meeting_id = 'M-20261204-1400-S' WHERE case_id = 'C-2026-00001';
INSERT INTO case_flags VALUES ('C-2026-00001', 1, '2026-11-27');
INSERT INTO outbox (message_key, kind, agency_id, subject, parts, status, queued_at)
    VALUES ('agenda:M-20261204-1400-S:a:v1', 'agenda', 'a', '【支援会議】', '{}', 'pending', '2026-11-27T00:00:00+00:00');
INSERT INTO audit_log (at, on_day, actor, event, case_id) VALUES ('2026-11-27T00:00:00+00:00', '2026-11-27', 'nightly', 'transition', 'C-2026-00001');
"""


def unversioned(path: Path, *, lifecycle: bool = True) -> None:
    """A workspace database as the engine made it before versions were recorded (user_version 0);
    without `lifecycle`, its cases table predates the lifecycle's columns and case_meetings rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA + (UNVERSIONED_LIFECYCLE if lifecycle else ""))
    conn.executemany(
        "INSERT INTO case_transitions VALUES (?, ?)", [(a, b) for a, bs in TRANSITIONS.items() for b in bs]
    )
    conn.executescript(ROWS)
    if lifecycle:
        conn.execute("INSERT INTO case_meetings VALUES ('C-2026-00001', 'M-20261204-1400-S')")
        conn.execute("UPDATE cases SET reopen_count = 1, consent_state = 'pending' WHERE case_id = 'C-2026-00001'")
    conn.commit()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()


def contents(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {t: conn.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall() for t in tables}
    conn.close()
    return out


def unchained(path: Path) -> dict[str, list[tuple]]:
    """contents() after migration 3, which adds audit_log.chain (its last column) and fills it: the
    rows as they were, once the chain is checked."""
    conn = sqlite3.connect(path)
    try:
        assert verify(conn)[0] == []
    finally:
        conn.close()
    out = contents(path)
    out["audit_log"] = [row[:-1] for row in out["audit_log"]]
    for table in ("flags", "screen_runs"):  # migration 8 adds one column to each (empty on old rows)
        assert all(row[-1] is None for row in out[table]), table
        out[table] = [row[:-1] for row in out[table]]
    # migration 9 adds the triage columns to cases, filled with the pathway each case took before triage
    for row in out["cases"]:
        assert row[-4:-1] in (
            ("conference", "before_triage", "振り分け規則の導入前に開始した事案"),
            ("served", "before_triage", "振り分け規則の導入前に開始した事案"),
            ("urgent_conference", "before_triage", "振り分け規則の導入前に開始した事案"),
        ), row
        assert row[-1] == row[4]  # pathway_on: the day the case was opened
    out["cases"] = [row[:-4] for row in out["cases"]]
    for table in set(out) - baseline_tables():  # made empty by a later step (users, sessions, …)
        rows = out.pop(table)
        if table == "referral_transitions":  # code, reloaded on every open like case_transitions
            assert {(a, b) for a, bs in REFERRAL_TRANSITIONS.items() for b in bs} == set(rows)
        else:
            assert rows == [], table
    return out


def baseline_tables() -> set[str]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return names


def structure(path: Path) -> dict:
    """Tables with their columns (name, type, not null, default, pk), indexes and triggers."""
    conn = sqlite3.connect(path)
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    out = {}
    for kind, name, table, sql in objects:
        if kind == "table":
            out[name] = [r[1:] for r in conn.execute(f"PRAGMA table_info([{name}])")]
        else:  # indexes and triggers as written (an automatic index has no SQL)
            out[f"{kind} {name} on {table}"] = sql
    conn.close()
    return out


def version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_versions_are_numbered_in_order_from_one():
    assert [s.version for s in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST_VERSION == MIGRATIONS[-1].version


def test_the_baseline_schema_is_frozen():
    """A workspace at version 1 or later never runs SCHEMA again: change the schema with a new step."""
    assert hashlib.sha256(SCHEMA.encode()).hexdigest()[:16] == "a3c36ba84dd79b07", (
        "engine/store/schema.py changed: append a migration step to engine/store/migrations.py instead"
    )


def test_a_fresh_workspace_gets_the_latest_version(workspace):
    conn = connect(workspace)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        columns = {r[1] for r in conn.execute("PRAGMA table_info(cases)")}
        assert {"previous_case_id", "lead_confirmed_on", "consent_state", "closed_on", "reopen_count"} <= columns
        loaded = set(conn.execute("SELECT from_status, to_status FROM case_transitions").fetchall())
        assert loaded == {(a, b) for a, bs in TRANSITIONS.items() for b in bs}
    finally:
        conn.close()
    assert (db_path(workspace).stat().st_mode & 0o777) == 0o600


def test_a_workspace_made_before_versions_migrates_with_no_data_lost(workspace, tmp_path):
    unversioned(db_path(workspace))
    before = contents(db_path(workspace))
    connect(workspace).close()
    assert version(db_path(workspace)) == LATEST_VERSION
    assert unchained(db_path(workspace)) == before
    connect(tmp_path / "fresh").close()
    assert structure(db_path(workspace)) == structure(db_path(tmp_path / "fresh"))


def test_a_workspace_from_before_the_lifecycle_gains_its_columns_and_case_meetings(workspace, tmp_path):
    unversioned(db_path(workspace), lifecycle=False)
    before = contents(db_path(workspace))
    conn = connect(workspace)
    try:
        row = conn.execute("SELECT status, meeting_id, reopen_count, closed_on FROM cases").fetchone()
        assert row == ("convened", "M-20261204-1400-S", 0, None)
        assert conn.execute("SELECT * FROM case_meetings").fetchall() == [("C-2026-00001", "M-20261204-1400-S")]
    finally:
        conn.close()
    after = unchained(db_path(workspace))
    assert after["cases"] == [row + (None, None, None, None, 0) for row in before["cases"]]
    assert {t: rows for t, rows in after.items() if t not in ("cases", "case_meetings")} == {
        t: rows for t, rows in before.items() if t not in ("cases", "case_meetings")
    }
    connect(tmp_path / "fresh").close()
    assert structure(db_path(workspace)) == structure(db_path(tmp_path / "fresh"))


def test_migrating_twice_writes_nothing(workspace):
    unversioned(db_path(workspace))
    connect(workspace).close()
    conn = connect(workspace)
    try:
        schema_before = conn.execute("PRAGMA schema_version").fetchone()[0]
        assert conn.total_changes == 0  # connect wrote nothing
        assert migrate(conn) == LATEST_VERSION
        assert conn.total_changes == 0
        assert conn.execute("PRAGMA schema_version").fetchone()[0] == schema_before
    finally:
        conn.close()


def test_a_database_of_a_newer_engine_is_refused_naming_the_file(workspace):
    connect(workspace).close()
    newer = LATEST_VERSION + 1
    raw = sqlite3.connect(db_path(workspace))
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    before = contents(db_path(workspace))
    for readonly in (False, True):
        with pytest.raises(WorkspaceTooNew) as err:
            connect(workspace, readonly=readonly)
        assert isinstance(err.value, EngineError)
        assert str(db_path(workspace)) in str(err.value)
        assert f"版 {newer}" in str(err.value) and f"版 {LATEST_VERSION} まで" in str(err.value)
    assert version(db_path(workspace)) == newer
    assert contents(db_path(workspace)) == before


def test_a_failing_step_leaves_the_database_as_it_was(workspace, monkeypatch):
    unversioned(db_path(workspace))
    before = contents(db_path(workspace))

    def broken(db):
        db["scratch"].create({"id": int}, pk="id")
        db.execute("ALTER TABLE cases ADD COLUMN half_done TEXT")
        raise RuntimeError("step failed half-way")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, Step(LATEST_VERSION + 1, "broken", broken)))
    monkeypatch.setattr(migrations, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(RuntimeError, match="half-way"):
        connect(workspace)
    assert version(db_path(workspace)) == 0  # not even the steps before it
    assert contents(db_path(workspace)) == before


def test_processes_opening_an_old_workspace_at_once_migrate_it_once(workspace):
    unversioned(db_path(workspace))
    before = contents(db_path(workspace))
    errors = []

    def open_it():
        try:
            connect(workspace).close()
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert version(db_path(workspace)) == LATEST_VERSION
    assert unchained(db_path(workspace)) == before


def test_an_in_memory_database_migrates_from_the_schema_script():
    """How the property tests build a workspace without a file."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    assert migrate(conn) == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert migrate(conn) == LATEST_VERSION
    conn.close()


def test_migration_3_chains_the_audit_entries_already_there(workspace):
    unversioned(db_path(workspace))
    conn = connect(workspace)
    try:
        row = conn.execute(f"SELECT {', '.join(COLUMNS)}, chain FROM audit_log").fetchone()
        assert row[-1] == link(None, row[:-1])
        assert verify(conn) == ([], 1, row[-1])
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'audit_log_no_%'").fetchone()[0] == 3
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql, index",
    [
        ("SELECT household_id FROM households WHERE changed_seq > 3", "households_changed"),
        ("UPDATE flags SET run_id = 7 WHERE run_id = -1", "flags_unstamped"),
        ("SELECT flag_id FROM flags WHERE run_id = -1 AND rule_id = 'dv'", "flags_unstamped"),
        ("SELECT on_day, detail FROM audit_log WHERE event = 'escalation_acted' ORDER BY seq", "audit_event"),
        (
            "SELECT MAX(on_day) FROM audit_log WHERE case_id = 'C1' AND event = 'transition' AND to_status = 'reopened'",
            "audit_case_event",
        ),
        ("SELECT COUNT(*), COUNT(answered_on) FROM referrals WHERE place_id = 'p'", "referrals_place_answered"),
        ("SELECT case_id FROM case_meetings WHERE meeting_id = 'M'", "case_meetings_meeting"),
        ("SELECT meeting_id FROM meetings WHERE held_on >= '2027-01-01'", "meetings_held"),
        ("SELECT agency_id FROM lead_requests WHERE case_id = 'C' AND status = 'declined'", "lead_requests_case"),
        ("SELECT checkpoint_id FROM checkpoints WHERE status = 'asked' AND answer_due < '2027'", "checkpoints_status"),
        ("SELECT action_id FROM case_actions WHERE status = 'open' AND due_on <= '2027'", "case_actions_status"),
        ("SELECT case_id FROM cases WHERE is_open = 1 AND status = 'detected' ORDER BY case_id", "cases_open_id"),
        ("SELECT subject_key FROM escalations WHERE digest_on IS NULL ORDER BY raised_on", "escalations_undigested"),
        (
            "SELECT e.subject_key FROM cases c CROSS JOIN escalations e ON e.case_id = c.case_id WHERE c.is_open = 1",
            "escalations_case",
        ),
    ],
)
def test_the_screens_per_run_queries_search_an_index_instead_of_scanning(tmp_path, sql, index):
    conn = connect(tmp_path / "ws")
    try:
        plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        conn.close()
    assert index in plan, plan


def test_a_read_only_command_brings_a_workspace_of_an_earlier_engine_up_to_date(workspace):
    """The monthly report, the area view or `engine cases` may be the first command after an
    upgrade: they read, but a workspace from before 参加支援 lacks the tables they read. Found by a
    review: `engine report` ended in 'no such table: referrals'."""
    from typer.testing import CliRunner

    from engine.cli.main import app
    from tests.helpers.paths import CONFIG_DIR, RULES_DIR

    c = connect(workspace)
    for table in ("followups", "referrals", "participation_needs", "referral_transitions"):
        c.execute(f"DROP TABLE {table}")
    c.execute("PRAGMA user_version = 6")
    c.commit()
    c.close()
    paths = ["--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
    result = CliRunner().invoke(app, ["report", "--month", "2026-11", *paths])
    assert result.exit_code == 0, (result.output, repr(result.exception))
    ro = connect(workspace, readonly=True)
    assert ro.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert ro.execute("SELECT COUNT(*) FROM referrals").fetchone()[0] == 0
    ro.close()
    result = CliRunner().invoke(app, ["areas", *paths])
    assert result.exit_code == 0, (result.output, repr(result.exception))


def test_reading_an_older_workspace_that_cannot_be_written_is_refused_in_words(workspace, monkeypatch):
    """An archived workspace (engine.db 0400, a copy handed to an auditor) cannot be brought up to
    date: a message, not a traceback (found by a second review; simulated, since tests run as root)."""
    from typer.testing import CliRunner

    import engine.store.db as db
    from engine.cli.main import app
    from tests.helpers.paths import CONFIG_DIR, RULES_DIR

    c = connect(workspace)
    c.execute("PRAGMA user_version = 9")
    c.commit()
    c.close()
    real = sqlite3.connect

    def unwritable(path, *args, **kwargs):
        if not kwargs.get("uri"):
            path, kwargs["uri"] = f"file:{path}?mode=ro", True
        return real(path, *args, **kwargs)

    monkeypatch.setattr(db.sqlite3, "connect", unwritable)
    paths = ["--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
    result = CliRunner().invoke(app, ["cases", *paths])
    assert result.exit_code == 1 and "前の版の engine のデータベース" in result.output, (
        result.output,
        result.exception,
    )
    assert "版 9" in result.output and "Traceback" not in result.output
