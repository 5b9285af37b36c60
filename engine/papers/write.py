"""Write each upcoming meeting's papers and queue the e-mails in the outbox.

An agenda gets a new version only when its content changed (content hash), so a re-run queues
nothing new; a newer version supersedes an older one that has not been sent yet. Files are
written owner-readable only under <workspace>/agendas/<meeting>/.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.config import Config
from engine.outbox.keys import PREFIXED, MessageKey, prefixed
from engine.outbox.queue import queue, supersede_pending
from engine.papers import changes, letterhead
from engine.papers.agenda import (
    Agenda,
    environment,
    meeting_papers,
    render_agenda,
    render_coordinator,
    silo_facts,
    withdrawn_agenda,
)
from engine.papers.ahead import Ahead
from engine.papers.notices import render_routing
from engine.participation.place_day import PlaceDays
from engine.policy.members import members_only
from engine.rules.facts import load_households
from engine.rules.model import RuleSet
from engine.store.db import database_file, write_transaction
from engine.support import clock
from engine.support.dates import wareki_with_weekday
from engine.support.private_files import write_private

COORDINATOR = "coordinator"


class PapersResult(BaseModel):
    meetings: int = 0  # upcoming meetings with cases
    agendas: int = 0  # agency agendas written (new versions) this run
    coordinator_versions: int = 0
    messages_queued: int = 0
    routing_notices: int = 0
    # the papers' worker stopped early (its error's class); this process built the rest
    worker_stopped: str | None = None


def latest(conn: sqlite3.Connection, meeting_id: str, agency_id: str) -> tuple[int, str | None]:
    row = conn.execute(
        "SELECT version, content_hash FROM agendas WHERE meeting_id = ? AND agency_id = ? ORDER BY version DESC LIMIT 1",
        (meeting_id, agency_id),
    ).fetchone()
    return (row[0], row[1]) if row else (0, None)


def write_papers(conn: sqlite3.Connection, rules: RuleSet, config: Config, workspace: Path, on: date) -> PapersResult:
    """Render agendas for every meeting from `on` on that has cases; queue changed ones. One
    transaction, which reads the meetings and their cases under the write lock (a case convened
    meanwhile by another command is in the papers, or waits for the next run). Called inside a
    transaction the caller holds, it builds every paper itself: a worker (engine/papers/ahead.py)
    would not see what that transaction has not committed."""
    committed = not conn.in_transaction
    with write_transaction(conn):
        return _write_papers(conn, rules, config, workspace, on, ahead_ok=committed)


def _write_papers(
    conn: sqlite3.Connection, rules: RuleSet, config: Config, workspace: Path, on: date, *, ahead_ok: bool
) -> PapersResult:
    env = environment(config)
    result = PapersResult()
    # meetings with cases, and meetings whose agencies hold an agenda that may now be out of date
    meetings = [
        r[0]
        for r in conn.execute(
            "SELECT m.meeting_id FROM meetings m WHERE m.held_on >= ? AND (EXISTS (SELECT 1 FROM cases c WHERE c.meeting_id = m.meeting_id AND c.is_open = 1) "
            "OR EXISTS (SELECT 1 FROM agendas a WHERE a.meeting_id = m.meeting_id)) ORDER BY m.held_on, m.start_time, m.meeting_id",
            (on.isoformat(),),
        )
    ]
    days = PlaceDays(conn, config)  # nothing here answers a referral: the places' state holds for the whole write
    known = {
        m
        for (m,) in conn.execute(
            "SELECT DISTINCT a.meeting_id FROM agendas a JOIN meetings m ON m.meeting_id = a.meeting_id WHERE m.held_on >= ?",
            (on.isoformat(),),
        )
    }
    # the papers of meetings without any yet are built by a second process when there are many,
    # reading the file this connection reads (none for a database in memory)
    database = database_file(conn)
    new = [m for m in meetings if m not in known] if ahead_ok and database else []
    with conn, Ahead(Path(database), rules, config, on, new) as ahead:
        loaded = known | ahead.here if ahead.active else None  # whose households are loaded (None: all)
        households = _households(conn, on, loaded)
        for meeting_id in meetings:
            result.meetings += 1
            # the 参加支援 proposals (costly, outside every hash) only for a meeting with something new;
            # a meeting without papers yet has nothing to compare with
            built = None
            if meeting_id in known:
                papers = meeting_papers(conn, rules, config, meeting_id, on, households, participation=False)
                if _has_new_version(conn, papers, meeting_id):
                    papers = meeting_papers(conn, rules, config, meeting_id, on, households, days=days)
            elif built := ahead.take(meeting_id):
                papers = built.papers
            else:  # its households are loaded above, unless the worker was to build its papers and stopped
                mine = households if loaded is None or meeting_id in loaded else None
                papers = meeting_papers(conn, rules, config, meeting_id, on, mine, days=days)
            folder = Path("agendas") / meeting_id
            current = {a.agency_id for a in papers.agendas}
            # an agency that no longer has a case here: told so only if it was sent an agenda;
            # an unsent one is simply withdrawn
            prefix = MessageKey.agenda_prefix(meeting_id)
            reached = {
                a
                for (a,) in conn.execute(
                    f"SELECT DISTINCT agency_id FROM outbox WHERE {PREFIXED} AND (status IN ('sent', 'sending') OR possible_duplicate = 1)",
                    prefixed(prefix),
                )
            }
            for (a,) in conn.execute(
                "SELECT DISTINCT agency_id FROM agendas WHERE meeting_id = ? AND agency_id != ? ORDER BY agency_id",
                (meeting_id, COORDINATOR),
            ).fetchall():
                if a not in current and a not in reached:
                    conn.execute(
                        f"UPDATE outbox SET status = 'superseded' WHERE +status IN ('pending', 'failed') AND agency_id = ? AND {PREFIXED}",
                        (a, *prefixed(prefix)),
                    )
            gone = [
                withdrawn_agenda(papers, config, a)
                for a in sorted(reached)
                if a not in current and a in config.agencies
            ]
            for agenda in papers.agendas + gone:
                version, digest = latest(conn, meeting_id, agenda.agency_id)
                content = agenda.content_hash()  # what `issue` adds is outside it (UNHASHED)
                if digest == content:
                    continue
                agenda = issue(conn, workspace, config, agenda.model_copy(update={"version": version + 1}), on)
                parts = render_agenda(env, agenda)
                stem = f"{agenda.agency_id}.v{agenda.version}"
                for part, ext in (("text", "txt"), ("html", "html"), ("ics", "ics")):
                    write_private(workspace / folder / f"{stem}.{ext}", parts[part])
                changes.keep(workspace, str(folder), agenda)
                conn.execute(
                    "INSERT INTO agendas VALUES (?,?,?,?,?,?)",
                    (meeting_id, agenda.agency_id, agenda.version, content, clock.stamp(), str(folder)),
                )
                key = MessageKey.agenda(meeting_id, agenda.agency_id, agenda.version)
                supersede_pending(conn, key.version_prefix)
                subject = (
                    f"【{agenda.conference_name}】{agenda.held_on_wareki} {agenda.start_time}〜{agenda.end_time} "
                    f"開催のご案内 {meeting_id}（第{agenda.version}版）"
                )
                result.agendas += 1
                result.messages_queued += queue(
                    conn,
                    key=str(key),
                    kind="agenda",
                    agency_id=agenda.agency_id,
                    subject=subject,
                    parts=parts,
                    members_only=members_only(agenda.conference_type),
                )
            digest = built.coordinator_digest if built else coordinator_digest(papers)
            version, previous = latest(conn, meeting_id, COORDINATOR)
            if previous != digest:
                html = built.coordinator_html if built else render_coordinator(env, papers)
                write_private(workspace / folder / f"{COORDINATOR}.v{version + 1}.html", html)
                conn.execute(
                    "INSERT INTO agendas VALUES (?,?,?,?,?,?)",
                    (meeting_id, COORDINATOR, version + 1, digest, clock.stamp(), str(folder)),
                )
                result.coordinator_versions += 1
        result.routing_notices = queue_routing_notices(conn, rules, config, on, env)
        result.worker_stopped = ahead.stopped
    return result


def _households(conn: sqlite3.Connection, on: date, only: set[str] | None) -> dict:
    """The households of the cases of the meetings from `on` (of the meetings `only`, if given)."""
    hids = [
        h
        for h, m in conn.execute(
            "SELECT c.household_id, c.meeting_id FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.is_open = 1 AND m.held_on >= ?",
            (on.isoformat(),),
        )
        if only is None or m in only
    ]
    return {hh.household_id: hh for hh in load_households(conn, hids, on)}


def coordinator_digest(papers) -> str:
    """The hash of the coordinator's version, without the 参加支援 proposals (like the agencies')."""
    cases = [{k: v for k, v in c.items() if k != "participation"} for c in papers.coordinator.get("cases", [])]
    body = papers.coordinator | {"cases": cases} if "cases" in papers.coordinator else papers.coordinator
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _has_new_version(conn: sqlite3.Connection, papers, meeting_id: str) -> bool:
    """Whether any agency's agenda, or the coordinator's version, would be written anew."""
    if latest(conn, meeting_id, COORDINATOR)[1] != coordinator_digest(papers):
        return True
    return any(latest(conn, meeting_id, a.agency_id)[1] != a.content_hash() for a in papers.agendas)


def issue(conn: sqlite3.Connection, workspace: Path, config: Config, agenda: Agenda, on: date) -> Agenda:
    """A new version's document number, date of issue, attendance deadline and what changed since
    the version the agency last received (none for its first)."""
    received = changes.last_received(conn, workspace, agenda.meeting_id, agenda.agency_id)
    return agenda.model_copy(
        update=dict(
            document_number=letterhead.take_number(conn, config, on),
            issued_on=on.isoformat(),
            issued_on_wareki=wareki_with_weekday(on),
            reply_by_wareki=wareki_with_weekday(letterhead.reply_by(config, date.fromisoformat(agenda.held_on), on)),
            changes=changes.summary(received, agenda) if received else [],
            previous_version=received["version"] if received else 0,
        )
    )


def queue_routing_notices(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date, env) -> int:
    """A notice to the owner of the silo conference for each routed case, and a new version when
    the flags it reports change (a new problem within the silo conference's remit)."""
    rows = conn.execute(
        "SELECT c.case_id, c.household_id, c.routed_to, c.opened_on, COALESCE(c.pathway_rule NOT IN ('routing', 'before_triage'), 0), "
        "(SELECT MIN(p.due_on) FROM checkpoints p WHERE p.case_id = c.case_id AND p.kind = 'check_back' AND p.status IN ('pending', 'asked')) "
        "FROM cases c WHERE c.status = 'routed' AND c.is_open = 1 ORDER BY c.case_id"
    ).fetchall()
    if not rows:
        return 0
    households = {hh.household_id: hh for hh in load_households(conn, [r[1] for r in rows], on)}
    routing_by_owner = {r.owner_kind: r for r in config.conference.routing}
    queued = 0
    for case_id, hid, owner_id, opened_on, served, check_on in rows:
        owner = config.agencies.get(owner_id)
        if owner is None:
            continue
        rule_ids = sorted(
            {
                r[0]
                for r in conn.execute(
                    "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?",
                    (case_id,),
                )
            }
        )
        routing = routing_by_owner.get(owner.kind)
        view = dict(
            case_id=case_id,
            agency_name=owner.name,
            # triage's `served`: the agency already serving the household checks first (no silo conference)
            served=bool(served),
            check_on=wareki_with_weekday(check_on) if served and check_on else None,
            conference=("支援中の世帯の状況確認" if served else routing.conference if routing else owner.kind),
            flag_titles=[rules.flags[r].title for r in rule_ids if r in rules.flags],
            facts=[
                f.model_dump() for f in silo_facts(households[hid], owner.silo, on.isoformat(), age_iso=opened_on)
            ],  # ages as of the first notice
            sender_name=letterhead.secretariat(config, "support"),
        )
        # the check date moves with each stable answer: not a new version by itself
        digest = hashlib.sha256(
            json.dumps({k: v for k, v in view.items() if k != "check_on"}, ensure_ascii=False, sort_keys=True).encode()
        ).hexdigest()[:16]
        key = MessageKey.routing(case_id, owner_id, 1)
        prefix = key.version_prefix
        last = conn.execute(
            f"SELECT message_key, content_hash FROM outbox WHERE {PREFIXED} ORDER BY CAST(substr(message_key, ?) AS INTEGER) DESC LIMIT 1",
            (*prefixed(prefix), len(prefix) + 1),
        ).fetchone()
        if last and last[1] == digest:
            continue
        if last:
            key = MessageKey.parse(last[0]).next_version()
        version = key.version
        parts = render_routing(env, config, view, on)
        what = (
            "【状況確認のお願い】支援中の世帯について"
            if served
            else f"【{view['conference']}】支援中の世帯に関するお知らせ"
        )
        subject = f"{what} 事案 {case_id}" + (f"（第{version}報）" if version > 1 else "")
        supersede_pending(conn, prefix)
        queued += queue(
            conn,
            key=str(key),
            kind="routing",
            agency_id=owner_id,
            subject=subject,
            parts=parts,
            members_only=True,
            content_hash=digest,
        )
    return queued
