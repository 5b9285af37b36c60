"""The workspace schema as the engine first recorded a version: migration 1 (engine/store/migrations.py).

Frozen: a change to the schema is a new migration step, never an edit of this text (a workspace
already at version 1 or later never runs it again; tests/store/test_migrations.py pins its hash).
SQL rather than sqlite-utils' Table.create: it says what Table.create cannot (partial unique indexes,
triggers, AUTOINCREMENT, a table's UNIQUE constraint) and its column comments, which SQLite keeps:
`sqlite-utils schema workspace/engine.db` shows them.
Personal data (name, kana, address, birth_date) lives only in households and persons.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS households (
    household_id TEXT PRIMARY KEY,
    area         TEXT NOT NULL,
    address      TEXT,
    changed_seq  INTEGER NOT NULL DEFAULT 0  -- import that last changed this household or its members
);
CREATE TABLE IF NOT EXISTS persons (
    person_id    TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    name         TEXT,
    kana         TEXT,
    birth_date   TEXT NOT NULL,              -- ISO yyyy-mm-dd
    sex          TEXT,                       -- M | F | U
    relationship TEXT,                       -- 続柄 to the head of household
    nationality  TEXT
);
CREATE INDEX IF NOT EXISTS persons_household ON persons(household_id);
CREATE INDEX IF NOT EXISTS persons_birth ON persons(birth_date);
CREATE TABLE IF NOT EXISTS records (
    record_key TEXT PRIMARY KEY,             -- person|source|code|start_date|identity part of value
    person_id  TEXT NOT NULL,
    source     TEXT NOT NULL,
    code       TEXT NOT NULL,
    value      TEXT NOT NULL DEFAULT '',
    start_date TEXT NOT NULL,                -- ISO
    end_date   TEXT                          -- ISO, NULL = still valid
);
CREATE INDEX IF NOT EXISTS records_person_code ON records(person_id, code);
CREATE INDEX IF NOT EXISTS records_start ON records(start_date);
CREATE INDEX IF NOT EXISTS records_end ON records(end_date);
CREATE TABLE IF NOT EXISTS imports (
    import_seq  INTEGER PRIMARY KEY,
    imported_at TEXT NOT NULL,
    source_dir  TEXT NOT NULL,
    encoding    TEXT NOT NULL,
    summary     TEXT NOT NULL               -- JSON: per file read/inserted/updated/unchanged/rejected
);
CREATE TABLE IF NOT EXISTS rejects (
    import_seq INTEGER NOT NULL,
    file       TEXT NOT NULL,
    line       INTEGER NOT NULL,
    field      TEXT,
    reason     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS screen_runs (
    run_id       INTEGER PRIMARY KEY,
    screened_on  TEXT NOT NULL,              -- the date rules were evaluated for (ISO)
    started_at   TEXT NOT NULL,
    mode         TEXT NOT NULL,              -- full | incremental
    rules_hash   TEXT NOT NULL,
    import_seq   INTEGER NOT NULL,           -- last import seen by this run
    scope        INTEGER NOT NULL,           -- households in scope
    evaluated    INTEGER NOT NULL,           -- households given to the rule engine
    flags_opened INTEGER NOT NULL,
    flags_resolved INTEGER NOT NULL,
    seconds      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    flag_id        INTEGER PRIMARY KEY,
    household_id   TEXT NOT NULL,
    rule_id        TEXT NOT NULL,
    rule_version   INTEGER NOT NULL,
    severity       TEXT NOT NULL,
    status         TEXT NOT NULL,            -- open | resolved
    first_detected TEXT NOT NULL,            -- screening date (ISO)
    last_confirmed TEXT NOT NULL,
    resolved_on    TEXT,
    run_id         INTEGER NOT NULL,         -- run that last wrote this flag
    evidence       TEXT NOT NULL             -- JSON: members and records per condition
);
CREATE INDEX IF NOT EXISTS flags_household ON flags(household_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS flags_one_open ON flags(household_id, rule_id) WHERE status = 'open';
CREATE TABLE IF NOT EXISTS cases (
    case_id          TEXT PRIMARY KEY,       -- pseudonymous (C-2026-00001); the only id in e-mails
    household_id     TEXT NOT NULL,
    status           TEXT NOT NULL,          -- see engine/store/lifecycle.py: detected … archived; case_transitions guards changes
    is_open          INTEGER NOT NULL DEFAULT 1,
    opened_on        TEXT NOT NULL,
    severity         TEXT NOT NULL,
    conference_type  TEXT,                   -- support (支援会議) | multi (重層的支援会議); NULL when routed
    conference_basis TEXT NOT NULL,          -- why this conference (consent) or why routed (Japanese)
    lead_agency_id   TEXT,
    lead_rule_id     TEXT,
    lead_reason      TEXT,                   -- full reason (coordinator): may say the lead already serves a member
    lead_reason_shared TEXT,                 -- the part agencies see: rule, reason, area — nothing about other silos
    meeting_id       TEXT,
    routed_to        TEXT,                   -- agency owning the silo conference
    rules_hash       TEXT NOT NULL,
    config_hash      TEXT NOT NULL
);
-- lifecycle columns: added by migration 2 (engine/store/migrations.py)
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_open ON cases(household_id) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS cases_meeting ON cases(meeting_id);
CREATE TABLE IF NOT EXISTS case_flags (
    case_id TEXT NOT NULL,
    flag_id INTEGER NOT NULL,
    added_on TEXT NOT NULL,
    PRIMARY KEY (case_id, flag_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS case_flags_flag ON case_flags(flag_id);
CREATE TABLE IF NOT EXISTS case_agencies (
    case_id   TEXT NOT NULL,
    agency_id TEXT NOT NULL,
    role      TEXT NOT NULL,                 -- lead | participant | owner (routed)
    PRIMARY KEY (case_id, agency_id)
);
CREATE TABLE IF NOT EXISTS meetings (
    meeting_id      TEXT PRIMARY KEY,        -- M-20261201-1400-S
    conference_type TEXT NOT NULL,
    held_on         TEXT NOT NULL,           -- ISO date
    start_time      TEXT NOT NULL,           -- HH:MM, Asia/Tokyo
    place           TEXT NOT NULL,
    capacity        INTEGER NOT NULL,
    added_for_urgent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conference_type, held_on, start_time)
);
CREATE TABLE IF NOT EXISTS agendas (
    meeting_id   TEXT NOT NULL,
    agency_id    TEXT NOT NULL,              -- or 'coordinator' (local full version, never e-mailed)
    version      INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    rendered_at  TEXT NOT NULL,
    folder       TEXT NOT NULL,              -- relative to the workspace
    PRIMARY KEY (meeting_id, agency_id, version)
);
CREATE TABLE IF NOT EXISTS outbox (
    message_key  TEXT PRIMARY KEY,           -- agenda:MEETING:AGENCY:vN | routing:CASE:AGENCY
    kind         TEXT NOT NULL,              -- agenda | routing
    agency_id    TEXT NOT NULL,              -- recipient is looked up in the registry at send time
    subject      TEXT NOT NULL,
    parts        TEXT NOT NULL,              -- JSON: text, html, ics (no personal data)
    status       TEXT NOT NULL,              -- pending | sending | sent | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    queued_at    TEXT NOT NULL,
    next_attempt_at TEXT,
    sent_at      TEXT,
    sent_to      TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0, -- crashed between SMTP acceptance and marking
    members_only INTEGER NOT NULL DEFAULT 0,  -- 支援会議 papers: the agency must still be a member at send time
    content_hash TEXT                         -- routing notices: a new version only when the content changes
);
CREATE TABLE IF NOT EXISTS dispatch_lock (
    name TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, token TEXT NOT NULL, taken_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status);

-- the case lifecycle (engine/store/lifecycle.py, outcome.py, handshake.py, sweep.py, audit.py)
CREATE TABLE IF NOT EXISTS case_transitions (from_status TEXT NOT NULL, to_status TEXT NOT NULL, PRIMARY KEY (from_status, to_status));
CREATE TRIGGER IF NOT EXISTS cases_new_detected BEFORE INSERT ON cases WHEN NEW.status != 'detected'
BEGIN SELECT RAISE(ABORT, 'a new case starts as detected'); END;
CREATE TRIGGER IF NOT EXISTS cases_valid_transition BEFORE UPDATE OF status ON cases
WHEN NEW.status != OLD.status AND NOT EXISTS (SELECT 1 FROM case_transitions WHERE from_status = OLD.status AND to_status = NEW.status)
BEGIN SELECT RAISE(ABORT, 'invalid case transition'); END;
CREATE TABLE IF NOT EXISTS audit_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,              -- wall clock, UTC
    on_day       TEXT NOT NULL,              -- the engine's day (Asia/Tokyo; the fake clock in the demo)
    actor        TEXT NOT NULL,              -- nightly | sweep | dispatch | the coordinator's login
    event        TEXT NOT NULL,              -- transition | outcome | lead_requested | … (docs/glossary.md)
    case_id      TEXT,
    household_id TEXT,
    meeting_id   TEXT,
    from_status  TEXT,
    to_status    TEXT,
    reason       TEXT NOT NULL DEFAULT '',   -- Japanese; pseudonymous ids only
    rule_id      TEXT,
    rules_hash   TEXT,
    config_hash  TEXT,
    detail       TEXT                         -- JSON
);
CREATE INDEX IF NOT EXISTS audit_case ON audit_log(case_id);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- INSERT OR REPLACE deletes the old row without firing the delete trigger: refuse reusing a seq
CREATE TRIGGER IF NOT EXISTS audit_log_no_replace BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE IF NOT EXISTS outcomes (
    case_id     TEXT NOT NULL,
    meeting_id  TEXT NOT NULL,
    decided_on  TEXT NOT NULL,               -- the meeting day
    recorded_on TEXT NOT NULL,
    decision    TEXT NOT NULL,               -- plan | close | suspend | continue
    lead_agency_id TEXT,
    consent     TEXT,                        -- obtained | pending | refused
    body        TEXT NOT NULL,               -- JSON of the validated outcome file
    PRIMARY KEY (case_id, meeting_id)
);
CREATE TABLE IF NOT EXISTS case_meetings (     -- every meeting a case was on when it was held (or is booked into):
    case_id    TEXT NOT NULL,                -- each owes an outcome, even after the case moved on
    meeting_id TEXT NOT NULL,
    PRIMARY KEY (case_id, meeting_id)
);
CREATE TABLE IF NOT EXISTS lead_requests (
    request_id   INTEGER PRIMARY KEY,
    case_id      TEXT NOT NULL,
    agency_id    TEXT NOT NULL,
    rule_id      TEXT,
    requested_on TEXT NOT NULL,
    due_on       TEXT NOT NULL,              -- answer by this business day, else escalation
    then_status  TEXT NOT NULL,              -- active | closed: where the case goes on acceptance
    status       TEXT NOT NULL,              -- pending | accepted | declined | cancelled
    answered_on  TEXT,
    reason       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS lead_requests_one_pending ON lead_requests(case_id) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS case_actions (
    action_id  INTEGER PRIMARY KEY,
    case_id    TEXT NOT NULL,
    meeting_id TEXT NOT NULL,
    agency_id  TEXT NOT NULL,
    action     TEXT NOT NULL,
    due_on     TEXT NOT NULL,
    status     TEXT NOT NULL,                -- open | done | cancelled
    done_on    TEXT
);
CREATE INDEX IF NOT EXISTS case_actions_case ON case_actions(case_id, status);
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint_id INTEGER PRIMARY KEY,
    case_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,                -- evaluation | watch | check_back | review
    due_on     TEXT NOT NULL,                -- a business day
    status     TEXT NOT NULL,                -- pending | asked | done | cancelled
    asked_on   TEXT,
    answer_due TEXT,
    result     TEXT,                         -- stable | concern | lost_contact (watch, check_back)
    done_on    TEXT
);
CREATE INDEX IF NOT EXISTS checkpoints_case ON checkpoints(case_id, status);
CREATE TABLE IF NOT EXISTS escalations (
    subject_key TEXT PRIMARY KEY,            -- lead:REQUEST | action:ID | outcome:CASE:MEETING | watch:ID | …: raised once
    case_id     TEXT,
    kind        TEXT NOT NULL,
    raised_on   TEXT NOT NULL,
    detail      TEXT NOT NULL,               -- Japanese, pseudonymous ids only
    digest_on   TEXT                         -- the coordinator's digest that reported it
);
CREATE TABLE IF NOT EXISTS contacts (
    case_id   TEXT NOT NULL,
    agency_id TEXT NOT NULL,
    on_day    TEXT NOT NULL,
    via       TEXT NOT NULL                  -- contact | accept | action | watch
);
CREATE INDEX IF NOT EXISTS contacts_case ON contacts(case_id, on_day);
"""
