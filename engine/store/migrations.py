"""Versioned migrations of the workspace database.

The version a database is at is SQLite's `PRAGMA user_version` (0 for a database made before
versions were recorded, whatever its tables). Opening a workspace applies the steps above its
version in order, all in one transaction with the new version, so a crash leaves the database
as it was; a database from a newer engine is refused, never changed.

To change the schema, append a step (next version number) to MIGRATIONS: a plain function of a
sqlite_utils.Database, using `db[table].add_column`, `.create_index(..., if_not_exists=True)`,
`.transform(...)` or `.create(...)` where they say it more clearly than SQL. Triggers, partial
indexes and data changes stay SQL. A step must also work on a version-0 database made by the
code before it (that database may already hold its change), and never edits an earlier step.

The allowed case transitions are code (engine/store/lifecycle.py), not schema: every read-write
open reloads the case_transitions table when it differs, with no version step. Every read-write
open also puts back a trigger protecting audit_log that is missing or changed, and records that
in the log (engine/store/audit_chain.py: restore_guards).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from engine.store import audit_chain
from engine.store.schema import SCHEMA
from engine.support.errors import EngineError

if TYPE_CHECKING:  # sqlite_utils is imported only to migrate: it costs ~60 ms, `connect` ~0.5 ms
    from sqlite_utils import Database


class Step(NamedTuple):
    version: int
    does: str
    apply: Callable[[Database], None]


class WorkspaceTooNew(EngineError):
    """The database was written by a newer engine: this one does not know its schema."""


class WorkspaceTooOld(EngineError):
    """The database of an earlier engine could not be brought up to date (it cannot be written)."""


def _baseline(db: Database) -> None:
    """Every table, index and trigger of SCHEMA (IF NOT EXISTS: an older workspace gains the missing ones).
    One statement at a time, as executescript would commit the migration's transaction."""
    statement = ""
    for line in SCHEMA.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _case_lifecycle(db: Database) -> None:
    """The lifecycle's columns of cases, and each case's current meeting in case_meetings
    (a workspace from before them; a no-op on one the engine made later)."""
    cases = db["cases"]
    have = cases.columns_dict
    for name in ("previous_case_id", "lead_confirmed_on", "consent_state", "closed_on"):
        if name not in have:
            cases.add_column(name, str)
    if "reopen_count" not in have:
        cases.add_column("reopen_count", int, not_null_default=0)
    db.execute("INSERT OR IGNORE INTO case_meetings SELECT case_id, meeting_id FROM cases WHERE meeting_id IS NOT NULL")


def _audit_chain(db: Database) -> None:
    """audit_log.chain, and every existing row chained in seq order (engine/store/audit_chain.py).
    The no-update trigger is lifted for the step only; a trigger missing before is left to
    restore_guards, which records that it was missing."""
    if "chain" not in db["audit_log"].columns_dict:
        db["audit_log"].add_column("chain", str)
    had = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_log_no_update'").fetchone()
    db.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    audit_chain.chain_all(db.conn)
    if had:
        db.execute(audit_chain.GUARDS["audit_log_no_update"])


def _users_and_sessions(db: Database) -> None:
    """The console's accounts (engine/accounts): users with a role, an argon2 hash and the lock-out
    count, and sessions kept by the sha256 of their id."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
        "created_at TEXT NOT NULL, failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT, last_login_at TEXT)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, "
        "created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_name)")


ANSWER_LINKS = """
CREATE TABLE IF NOT EXISTS answer_links (     -- one per question per e-mail sent (engine/links): the token itself is never stored
    link_id     INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,        -- sha256 of the token (hex)
    kind        TEXT NOT NULL,               -- lead_request | action | checkpoint | attendance
    ref         TEXT NOT NULL,               -- request_id | action_id | checkpoint_id | meeting_id
    agency_id   TEXT NOT NULL,               -- the only agency the link answers for
    case_id     TEXT,
    message_key TEXT NOT NULL,               -- the e-mail that carried it
    minted_at   TEXT NOT NULL,
    expires_on  TEXT NOT NULL,               -- the answer's due date plus web.link_grace_days business days
    revoked_at  TEXT,
    revoked_why TEXT,
    used_at     TEXT,                        -- answered through this link (once)
    answer      TEXT,
    note        TEXT
);
CREATE INDEX IF NOT EXISTS answer_links_question ON answer_links(kind, ref, agency_id);
CREATE TABLE IF NOT EXISTS attendance (      -- 出欠: an agency's answer for a meeting
    meeting_id  TEXT NOT NULL,
    agency_id   TEXT NOT NULL,
    answer      TEXT NOT NULL,               -- attend | absent
    answered_on TEXT NOT NULL,
    note        TEXT,
    PRIMARY KEY (meeting_id, agency_id)
);
"""


def _answer_links(db: Database) -> None:
    """answer_links (the hashes of the links in e-mails) and attendance (出欠)."""
    for statement in ANSWER_LINKS.split(";"):
        if statement.strip():
            db.execute(statement)


def _document_numbers(db: Database) -> None:
    """document_numbers: the last number given per 年度, taken inside the papers' own transaction."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS document_numbers (fiscal_year INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL)"
    )


PARTICIPATION = """
CREATE TABLE IF NOT EXISTS participation_needs (  -- 参加支援: a need a conference recorded for one member
    need_id     INTEGER PRIMARY KEY,
    case_id     TEXT NOT NULL,
    meeting_id  TEXT,                        -- the conference that recorded it (NULL: `engine refer` later)
    person_id   TEXT NOT NULL,
    need        TEXT NOT NULL,               -- a code of NEED_LABELS (engine/support/vocabulary.py)
    recorded_on TEXT NOT NULL,
    reason      TEXT,                        -- why no place (the conference's words): the need is then settled
    status      TEXT NOT NULL DEFAULT 'open' -- open | referred | settled (a reason) | unmatched (no place in town)
);
CREATE INDEX IF NOT EXISTS participation_needs_case ON participation_needs(case_id, status);
CREATE TABLE IF NOT EXISTS referrals (         -- one introduction of one member to one place (engine/participation)
    referral_id   INTEGER PRIMARY KEY,
    case_id       TEXT NOT NULL,
    need_id       INTEGER,
    person_id     TEXT NOT NULL,
    place_id      TEXT NOT NULL,             -- resources.yaml
    introduced_by TEXT NOT NULL,             -- the agency that introduces (the lead by default)
    consent       INTEGER NOT NULL,          -- the person agreed that the place be told of them
    channel       TEXT NOT NULL,             -- place: the place is asked by e-mail | in_person: the introducer goes with the person and answers
    status        TEXT NOT NULL,             -- requested | accepted | waitlisted | declined | attending | ended | cancelled
    requested_on  TEXT NOT NULL,
    answer_due    TEXT NOT NULL,             -- the answer is due by this business day
    answered_on   TEXT,
    band          TEXT,                      -- waitlisted: lt1m | 1to3m | gt3m
    reason        TEXT,                      -- declined / ended / cancelled: a code of the reason labels
    note          TEXT,
    closed_on     TEXT                       -- declined, ended or cancelled on
);
CREATE INDEX IF NOT EXISTS referrals_case ON referrals(case_id);
CREATE INDEX IF NOT EXISTS referrals_place ON referrals(place_id, status);
CREATE INDEX IF NOT EXISTS referrals_status ON referrals(status, answer_due);
CREATE TABLE IF NOT EXISTS referral_transitions (from_status TEXT NOT NULL, to_status TEXT NOT NULL, PRIMARY KEY (from_status, to_status));
CREATE TRIGGER IF NOT EXISTS referrals_new_requested BEFORE INSERT ON referrals WHEN NEW.status != 'requested'
BEGIN SELECT RAISE(ABORT, 'a new referral starts as requested'); END;
CREATE TRIGGER IF NOT EXISTS referrals_valid_transition BEFORE UPDATE OF status ON referrals
WHEN NEW.status != OLD.status AND NOT EXISTS (SELECT 1 FROM referral_transitions WHERE from_status = OLD.status AND to_status = NEW.status)
BEGIN SELECT RAISE(ABORT, 'invalid referral transition'); END;
CREATE TABLE IF NOT EXISTS followups (         -- after a match: the lead and the place are asked how it goes
    followup_id INTEGER PRIMARY KEY,
    referral_id INTEGER NOT NULL,
    side        TEXT NOT NULL,               -- lead | place
    agency_id   TEXT NOT NULL,               -- who is asked: the lead (introducer) or the place
    due_on      TEXT NOT NULL,
    status      TEXT NOT NULL,               -- pending | asked | done | cancelled
    asked_on    TEXT,
    answer_due  TEXT,
    result      TEXT,                        -- lead: well | stopped_by_choice | stopped | concern; place: attending | not_attending
    done_on     TEXT,
    note        TEXT
);
CREATE INDEX IF NOT EXISTS followups_due ON followups(status, due_on);
CREATE INDEX IF NOT EXISTS followups_referral ON followups(referral_id);
"""


def _participation(db: Database) -> None:
    """参加支援: needs, referrals (their states guarded by referral_transitions, like the cases')
    and follow-ups."""
    statement = ""
    for line in PARTICIPATION.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _rule_versions(db: Database) -> None:
    """flags.change_reason (a flag opened or resolved because its rule's version changed, not the
    household) and screen_runs.rule_versions (JSON: the version of each flag in force at that run)."""
    if "change_reason" not in db["flags"].columns_dict:
        db["flags"].add_column("change_reason", str)
    if "rule_versions" not in db["screen_runs"].columns_dict:
        db["screen_runs"].add_column("rule_versions", str)


def _pathways(db: Database) -> None:
    """Triage (issue 17): cases.pathway (urgent_conference | conference | assessment | served |
    watch), the rule that chose it and why; the cases before triage get the pathway they took
    (routed: served; else a conference, urgent by severity). backlog_plans: the coordinator's plan
    for a first screening larger than the town's capacity."""
    have = db["cases"].columns_dict
    for name in ("pathway", "pathway_rule", "pathway_reason", "pathway_on"):
        if name not in have:
            db["cases"].add_column(name, str)
    db.execute(
        "UPDATE cases SET pathway = CASE WHEN status = 'routed' OR routed_to IS NOT NULL THEN 'served' "
        "WHEN severity = 'urgent' THEN 'urgent_conference' ELSE 'conference' END, pathway_rule = 'before_triage', "
        "pathway_reason = '振り分け規則の導入前に開始した事案', pathway_on = opened_on WHERE pathway IS NULL"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS backlog_plans ("
        " plan_id INTEGER PRIMARY KEY, made_on TEXT NOT NULL,"
        " status TEXT NOT NULL,"  # proposed | accepted | replaced
        " per_week INTEGER NOT NULL,"  # assessments asked of each agency a week
        " body TEXT NOT NULL,"  # JSON: weeks x pathways, by priority (engine/triage/backlog.py)
        " decided_by TEXT, decided_on TEXT)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS cases_household ON cases(household_id)")


def _scale_indexes(db: Database) -> None:
    """Where the planner scanned a whole table on every run (issue 19): SCALE_INDEXES."""
    for name, sql in SCALE_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {sql}")


# Found by tracing a simulated span and explaining each statement's plan (issue 19): each was a scan
# of a table that grows, run once per case, meeting, place, answer or night.
SCALE_INDEXES = {
    "households_changed": "households(changed_seq)",  # an incremental screen's scope
    "flags_unstamped": "flags(run_id) WHERE run_id = -1",  # the flags a run has not stamped yet
    "audit_event": "audit_log(event)",  # the coordinator's acts on escalations, read at every sweep
    "audit_case_event": "audit_log(case_id, event)",  # a case's last transition (audit, watch, correction)
    "referrals_place_answered": "referrals(place_id, status, answered_on)",  # a place's record, free places
    "referrals_need": "referrals(need_id)",  # the 参加支援 audit: a need's referrals
    "participation_needs_status": "participation_needs(status)",
    "case_meetings_meeting": "case_meetings(meeting_id)",  # the cases of a meeting (DV lock at send time)
    "meetings_held": "meetings(held_on)",  # the coming meetings (booking, papers)
    "lead_requests_case": "lead_requests(case_id, status)",  # who declined a case
    "checkpoints_status": "checkpoints(status, due_on)",  # due and overdue questions (sweep, audit, pacing)
    "case_actions_status": "case_actions(status, due_on)",  # due and overdue actions (sweep, audit)
    "cases_open_id": "cases(case_id) WHERE is_open = 1",  # the open cases in order, without the closed ones
    "escalations_case": "escalations(case_id)",  # the escalations of the open cases
    "escalations_undigested": "escalations(raised_on, subject_key) WHERE digest_on IS NULL",  # the digest's new ones
}


MIGRATIONS: tuple[Step, ...] = (
    Step(1, "the workspace tables (households … contacts), their indexes and triggers", _baseline),
    Step(
        2,
        "cases: previous_case_id, lead_confirmed_on, consent_state, closed_on, reopen_count; case_meetings",
        _case_lifecycle,
    ),
    Step(3, "audit_log.chain: each entry's hash chained to the one before; existing entries chained", _audit_chain),
    Step(4, "users and sessions: the console's accounts and server-side sessions", _users_and_sessions),
    Step(5, "answer links: answer_links (token hashes only), attendance", _answer_links),
    Step(6, "document_numbers: the agendas' document numbers per 年度", _document_numbers),
    Step(7, "参加支援: participation_needs, referrals (+ referral_transitions), followups", _participation),
    Step(8, "rule versions: flags.change_reason, screen_runs.rule_versions", _rule_versions),
    Step(9, "triage: cases.pathway, pathway_rule, pathway_reason; backlog_plans; cases(household_id)", _pathways),
    Step(10, "indexes at scale: households(changed_seq), flags(run_id) while unstamped, SCALE_INDEXES", _scale_indexes),
)
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def refuse_newer(conn: sqlite3.Connection, version: int) -> None:
    if version > LATEST_VERSION:
        from engine.store.db import database_file  # which imports this module

        where = database_file(conn) or "このデータベース"
        raise WorkspaceTooNew(
            f"{where} は新しい版の engine で作られています（データベースの版 {version}、"
            f"この engine が扱えるのは版 {LATEST_VERSION} まで）。engine を更新してから開いてください。"
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to LATEST_VERSION and reload the case transitions; returns the version
    it was at. Refuses (WorkspaceTooNew) a database of a newer engine, before changing anything."""
    found = schema_version(conn)
    refuse_newer(conn, found)
    if found < LATEST_VERSION:
        found = _apply_steps(conn)
    _sync_transitions(conn)
    audit_chain.restore_guards(conn)
    return found


def _apply_steps(conn: sqlite3.Connection) -> int:
    from sqlite_utils import Database

    db = Database(conn, recursive_triggers=False, execute_plugins=False)  # the engine's own connection settings
    conn.execute("BEGIN IMMEDIATE")  # the write lock before reading the version: another process may be migrating
    try:
        found = schema_version(conn)
        refuse_newer(conn, found)
        for step in MIGRATIONS:
            if step.version > found:
                step.apply(db)
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return found


def _sync_transitions(conn: sqlite3.Connection) -> None:
    from engine.participation.states import REFERRAL_TRANSITIONS
    from engine.store.lifecycle import TRANSITIONS

    for table, transitions in (("case_transitions", TRANSITIONS), ("referral_transitions", REFERRAL_TRANSITIONS)):
        wanted = {(a, b) for a, targets in transitions.items() for b in targets}
        if set(conn.execute(f"SELECT from_status, to_status FROM {table}").fetchall()) != wanted:
            with conn:
                conn.execute(f"DELETE FROM {table}")
                conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", sorted(wanted))
