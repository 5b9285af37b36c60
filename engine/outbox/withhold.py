"""Why a queued message must no longer go out, checked just before it is sent: a newer version
replaced it, the meeting has been held, the request or checkpoint was answered, the action is done,
the case left its silo conference, or the household is locked (DV) since it was queued. Such a
message is withheld: marked superseded, never sent, with the reason (`engine outbox --status
superseded`). Also what a message is about (its case or meeting), for the audit log and the consent rule.

The DV lock (engine/policy/dv.py) is checked again for every kind, since a DV support measure can
be imported between the night that queued a message and the dispatch:
    agenda         withheld when it names a case (by id: a locked case is only counted) whose
                   household is locked now; the next night writes a version that only counts it
    routing        withheld when the household is locked now (no notice at all; the night convenes it)
    reminder       withheld when it carries the action's wording (no `:locked`); the sweep queues
                   the locked one
    lead_request, lead_withdrawn, checkpoint
                   go: they carry the case id and fixed wording only, which the lock allows (the DV
                   centre itself may be asked to lead)
    digest         goes: it is the coordinator's own
Consent is checked again the same way for the agenda of a 重層的支援会議 (shared on the persons'
consent, also with agencies that are not members): one that details a case whose consent has ended
since it was queued is withheld; the next night takes the case to a 支援会議.
A message withheld for the lock or for consent is also raised to the coordinator (an escalation: the
next digest lists its key, without saying why: the digest is e-mailed; `engine outbox` says why).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime

from engine.config import Config
from engine.outbox.keys import PREFIXED, MessageKey, prefixed
from engine.policy.consent import case_consented
from engine.policy.dv import case_locked, household_locked, locked_among
from engine.policy.members import members_only
from engine.store.lifecycle import Log
from engine.support import clock

LOCKED = "the household is locked (DV)"  # the start of every reason the DV lock gives
MAYBE_SENT = "it may have been delivered before a dispatch stopped while handing it over"
CONSENT_ENDED = "the consent is no longer valid"  # the start of the reason a 重層的支援会議 agenda is held back

ROW_OF = {  # the table and id column a lifecycle message's number points into
    "lead_request": ("lead_requests", "request_id"),
    "lead_withdrawn": ("lead_requests", "request_id"),
    "reminder": ("case_actions", "action_id"),
    "checkpoint": ("checkpoints", "checkpoint_id"),
    "referral": ("referrals", "referral_id"),
    "referral_reminder": ("referrals", "referral_id"),
    "followup": ("followups f JOIN referrals r ON r.referral_id = f.referral_id", "f.followup_id"),
}


def has_newer_version(conn: sqlite3.Connection, key: MessageKey | None) -> bool:
    """Is there a later version (…:vN) of this agenda or routing notice in the outbox?"""
    prefix = key.version_prefix if key else None
    if prefix is None:
        return False
    return (
        conn.execute(
            f"SELECT 1 FROM outbox WHERE {PREFIXED} AND CAST(substr(message_key, ?) AS INTEGER) > ?",
            (*prefixed(prefix), len(prefix) + 1, key.version),
        ).fetchone()
        is not None
    )


def stale_reason(
    conn: sqlite3.Connection, config: Config, key: MessageKey, now: datetime, parts: str | None = None
) -> str | None:
    """Why a queued message must no longer go out, checked just before sending. `parts`: the
    message's queued parts, when the caller has read them (else they are read when needed)."""
    if has_newer_version(conn, key):
        return "a newer version replaced it"
    tokyo_day = now.astimezone(clock.TOKYO).date().isoformat()
    if key.kind == "agenda":
        held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (key.ref,)).fetchone()
        if held_on and held_on[0] < tokyo_day:
            return "the meeting has been held"
        named = cases_named(conn, key, parts)
        locked = locked_among_named(conn, config, named, tokyo_day)
        if locked:
            return f"{LOCKED}: the agenda details case {', '.join(locked)}; the next night's agenda only counts it"
        unconsented = (
            [c for c, _ in named if not case_consented(conn, c, tokyo_day, held_on[0])]
            if held_on and consent_based(conn, key)
            else []
        )
        if unconsented:
            return (
                f"{CONSENT_ENDED}: the agenda of a 重層的支援会議 details case {', '.join(unconsented)}, whose"
                " consent is no longer valid; the next night takes it to a 支援会議"
            )
    if key.kind == "lead_request":
        row = conn.execute("SELECT status FROM lead_requests WHERE request_id = ?", (key.number,)).fetchone()
        if not row or row[0] != "pending":
            return "the request has been answered or withdrawn"
    if key.kind == "reminder":
        row = conn.execute(
            "SELECT a.status, a.due_on, c.household_id FROM case_actions a JOIN cases c ON c.case_id = a.case_id WHERE a.action_id = ?",
            (key.number,),
        ).fetchone()
        if not row or row[0] != "open":
            return "the action is done or cancelled"
        if key.stage == "due" and row[1] < tokyo_day:
            return "the due date has passed: the overdue reminder replaces it"
        if not key.locked and household_locked(conn, config, row[2], tokyo_day):
            return f"{LOCKED}: the reminder goes without the action's wording"
    if key.kind == "checkpoint":
        row = conn.execute(
            "SELECT p.status, p.kind, c.household_id FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.checkpoint_id = ?",
            (key.number,),
        ).fetchone()
        if not row or row[0] != "asked":
            return "the checkpoint has been answered or cancelled"
        # an assessment request names the flags and the agency's silo facts (engine/triage/assessment.py)
        if row[1] == "assessment" and household_locked(conn, config, row[2], tokyo_day):
            return f"{LOCKED}: an assessment request is not e-mailed; the night takes the case to a conference"
    if key.kind in ("referral", "referral_reminder", "followup"):
        from engine.participation.mail import stale_reason as participation_stale

        return participation_stale(conn, config, key, tokyo_day)
    if key.kind == "routing":
        row = conn.execute("SELECT status, is_open, household_id FROM cases WHERE case_id = ?", (key.ref,)).fetchone()
        if not row or row[0] != "routed" or not row[1]:
            return "the case is no longer routed to a silo conference"
        if household_locked(conn, config, row[2], tokyo_day):
            return f"{LOCKED}: no notice by e-mail"
    return None


CASE_TOKEN = re.compile(r"C-[0-9]{4}-[0-9]+")  # a case id as engine/conference/convener.py numbers them


def locked_cases_named(
    conn: sqlite3.Connection, config: Config, key: MessageKey, on_iso: str, parts: str | None = None
) -> list[str]:
    """The cases the queued agenda names (details: a locked case is only counted, never named) and
    that are DV-locked now. `parts`: the agenda's queued parts, if read."""
    return locked_among_named(conn, config, cases_named(conn, key, parts), on_iso)


def consent_based(conn: sqlite3.Connection, key: MessageKey) -> bool:
    """The agenda's meeting is a 重層的支援会議: what it details is shared on the persons' consent."""
    row = conn.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (key.ref,)).fetchone()
    return row is not None and not members_only(row[0])


def cases_named(conn: sqlite3.Connection, key: MessageKey, parts: str | None = None) -> list[tuple[str, str]]:
    """(case id, household id) of the cases the queued agenda names: a case of its meeting, or any
    case whose id it carries, such as a case moved to another meeting since the agenda was queued."""
    if parts is None:
        row = conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (str(key),)).fetchone()
        parts = row[0] if row else None
    text = "\n".join(str(v) for v in json.loads(parts).values()) if parts else ""
    tokens = set(CASE_TOKEN.findall(text))  # one pass over the agenda, not one pattern per case
    named = []
    for case_id, household_id in conn.execute(
        "SELECT case_id, household_id FROM cases WHERE meeting_id = ? "
        "OR case_id IN (SELECT case_id FROM case_meetings WHERE meeting_id = ?) "
        "OR case_id IN (SELECT value FROM json_each(?)) ORDER BY case_id",
        (key.ref, key.ref, json.dumps(sorted(tokens))),
    ).fetchall():
        if CASE_TOKEN.fullmatch(case_id):
            if case_id in tokens:
                named.append((case_id, household_id))
        elif re.search(re.escape(case_id) + r"(?![0-9])", text):  # an id of another shape: looked for as it is
            named.append((case_id, household_id))
    return named


def locked_among_named(
    conn: sqlite3.Connection, config: Config, named: list[tuple[str, str]], on_iso: str
) -> list[str]:
    """Of the cases named, those DV-locked now (their households and flags read at once)."""
    if not named:
        return []
    rule_ids: dict[str, list[str]] = {}
    for case_id, rule_id in conn.execute(
        "SELECT c.case_id, f.rule_id FROM json_each(?) j JOIN case_flags c ON c.case_id = j.value "
        "JOIN flags f ON f.flag_id = c.flag_id",
        (json.dumps([c for c, _ in named]),),
    ):
        rule_ids.setdefault(case_id, []).append(rule_id)
    locked = locked_among(conn, config, {h for _, h in named}, on_iso)  # the households named, at once
    return [c for c, h in named if case_locked(conn, config, h, rule_ids.get(c, []), on_iso, locked)]


def withhold(
    conn: sqlite3.Connection, config: Config, key: MessageKey, reason: str, now: datetime, *, maybe_sent: bool = False
) -> None:
    """Withhold a pending message (superseded, with the reason); one withheld for the DV lock or for
    consent is raised to the coordinator, named by its key only (the digest is e-mailed). `maybe_sent`:
    a dispatch died while handing it over, so it may have arrived already — said so, never "withheld"."""
    text = str(key)
    if maybe_sent:
        reason = f"{MAYBE_SENT}; not sent again: {reason}"
    with conn:
        row = conn.execute(
            "UPDATE outbox SET status = 'superseded', last_error = ? WHERE message_key = ? AND status = 'pending' RETURNING agency_id",
            (reason, text),
        ).fetchone()
        if row and (LOCKED in reason or CONSENT_ENDED in reason):
            what = (
                "は前回の送信が途中で止まったため届いている可能性があり、再送はしていない"
                if maybe_sent
                else "は送信直前に差し止めた"
            )
            Log(conn, now.astimezone(clock.TOKYO).date(), "dispatch", config_hash=config.hash).escalate(
                f"withheld:{text}",
                "mail_withheld",
                f"メール {text}（{row[0]} 宛て）{what}（世帯の取扱いが変わったため。"
                "理由は engine outbox --status superseded で確認）",
                case_id=case_of(conn, key)[0],
            )


def case_of(conn: sqlite3.Connection, key: MessageKey | None) -> tuple[str | None, str | None]:
    """(case id, meeting id) a message belongs to, from its key."""
    if key is None:
        return None, None
    if key.kind == "agenda":
        return None, key.ref
    if key.kind == "routing":
        return key.ref, None
    if key.kind in ROW_OF:
        table, column = ROW_OF[key.kind]
        case = "r.case_id" if key.kind == "followup" else "case_id"
        row = conn.execute(f"SELECT {case} FROM {table} WHERE {column} = ?", (key.number,)).fetchone()
        return (row[0] if row else None), None
    return None, None
