"""The tokens of answer links: minted when the e-mail that asks the question is sent, never stored.

A queued e-mail keeps the mark ANSWER_LINK (engine/papers/notices.py) where its link goes. When
the dispatch hands the message to the transport, `fill_links` mints a token (256 bits,
secrets.token_hex(32)), stores only its sha256 in answer_links, bound to that one agency
and that one question, and puts BASE_URL/a/TOKEN into the outgoing message only: the file
transport's .eml is the sent copy (like a mail server's), the outbox table keeps the mark.

One question, one live link: sending another e-mail about the same question (an overdue
reminder after the first, the next version of an agenda) revokes the links sent before. The
one exception is the crash window of the dispatch (engine/outbox/dispatch.py): when the same
e-mail goes again because the server may already have it (possible_duplicate), the agency may
hold either copy, so both links stay usable — still once, since the question is answered once.

A link expires web.link_grace_days business days after the answer's due date (the day it was
sent, if later: an overdue reminder); an attendance link on the meeting's day.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import sqlite3
from datetime import date, datetime

from pydantic import BaseModel

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.papers.notices import ANSWER_LINK
from engine.participation.followups import LEAD_NOW
from engine.support import clock
from engine.support.business_days import Calendar

# secrets.token_hex(32): 32 bytes as 64 lowercase hex digits. Not base64url: a mail client or proxy that
# changes the case of a URL cannot break it, and no random run of it spells a word (DV) in the mail
TOKEN_TEXT = r"[0-9a-f]{64}"
TOKEN = re.compile(TOKEN_TEXT)
QUESTION_OF = {
    "lead_request": "lead_request",
    "reminder": "action",
    "checkpoint": "checkpoint",
    "agenda": "attendance",
    "referral": "referral",  # 参加支援: the place (or the introducer) answers a referral
    "referral_reminder": "referral",
    "followup": "followup",  # 参加支援: the lead or the place answers a follow-up
}
NO_LINK = "（この e-mail からは回答できません。コーディネーターにご連絡ください）"


class Asked(BaseModel):
    """What a question is about, read from the engine's own tables (never from the link)."""

    kind: str  # lead_request | action | checkpoint | attendance | referral | followup
    ref: str  # request id | action id | checkpoint id | meeting id | referral id | followup id
    agency_id: str
    case_id: str | None = None
    meeting_id: str | None = None
    due_on: date | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def asks(parts: dict) -> bool:
    """The message has a place for an answer link (it asks a question)."""
    return any(isinstance(v, str) and ANSWER_LINK in v for k, v in parts.items() if k in ("text", "html"))


def retire_earlier_links(conn: sqlite3.Connection, key: MessageKey, agency_id: str, asks: bool) -> None:
    """The message was delivered: the links minted before its own for its question die ('resent'),
    its own newest link lives (and one minted after it, for a later e-mail of the same group) — and so do this message's earlier links when it may have gone out
    twice (possible_duplicate: the agency may hold either copy). A version that asks nothing (`asks`
    false, say 「協議する事案はなくなりました」) retires the links of the versions it replaces. In the
    caller's transaction, with the `sent` mark."""
    newest = conn.execute(
        "SELECT link_id, kind, ref FROM answer_links WHERE message_key = ? AND agency_id = ? ORDER BY link_id DESC LIMIT 1",
        (str(key), agency_id),
    ).fetchone()
    kind = QUESTION_OF.get(key.kind)
    if not asks:
        if kind and key.version_prefix:
            conn.execute(
                "UPDATE answer_links SET revoked_at = ?, revoked_why = 'resent' WHERE kind = ? AND agency_id = ? "
                "AND revoked_at IS NULL AND used_at IS NULL AND message_key != ? AND substr(message_key, 1, ?) = ?",
                (clock.stamp(), kind, agency_id, str(key), len(key.version_prefix), key.version_prefix),
            )
        return
    if newest is None:  # a question no longer asked: no link was minted
        return
    link_id, kind, ref = newest
    (possible_duplicate,) = conn.execute(
        "SELECT COALESCE(MAX(possible_duplicate), 0) FROM outbox WHERE message_key = ?", (str(key),)
    ).fetchone()
    conn.execute(
        "UPDATE answer_links SET revoked_at = ?, revoked_why = 'resent' WHERE kind = ? AND ref = ? AND agency_id = ? "
        "AND revoked_at IS NULL AND used_at IS NULL AND link_id < ? AND NOT (message_key = ? AND ?)",
        (clock.stamp(), kind, ref, agency_id, link_id, str(key), possible_duplicate),
    )


def minted_for(conn: sqlite3.Connection, key: MessageKey | str) -> int | None:
    """The newest link minted for the message (the one its attempt carries), or None."""
    return conn.execute("SELECT MAX(link_id) FROM answer_links WHERE message_key = ?", (str(key),)).fetchone()[0]


def not_delivered(conn: sqlite3.Connection, link_id: int | None) -> None:
    """The message was not handed over (failed, or waits for the next attempt, which mints a new
    link): the link minted for this attempt dies ('not_sent'); nobody holds it. In the caller's
    transaction."""
    conn.execute(
        "UPDATE answer_links SET revoked_at = ?, revoked_why = 'not_sent' WHERE link_id = ? "
        "AND revoked_at IS NULL AND used_at IS NULL",
        (clock.stamp(), link_id),
    )


def link_url(config: Config, token: str) -> str:
    return f"{config.web.base_url}/a/{token}"


def asked(conn: sqlite3.Connection, kind: str, ref: str, agency_id: str) -> Asked | None:
    """The question `kind`/`ref` put to `agency_id`, or None if there is no such question for it."""
    if kind == "attendance":
        row = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (ref,)).fetchone()
        return Asked(kind=kind, ref=ref, agency_id=agency_id, meeting_id=ref, due_on=row[0]) if row else None
    if not ref.isdigit():
        return None
    sql = {
        "lead_request": "SELECT case_id, agency_id, due_on, NULL FROM lead_requests WHERE request_id = ?",
        "action": "SELECT case_id, agency_id, due_on, meeting_id FROM case_actions WHERE action_id = ?",
        # a checkpoint is asked of the case's lead (or the owner of its silo conference)
        "checkpoint": "SELECT p.case_id, COALESCE(c.lead_agency_id, c.routed_to), p.answer_due, NULL FROM checkpoints p "
        "JOIN cases c ON c.case_id = p.case_id WHERE p.checkpoint_id = ?",
        # 参加支援: the place when it may be told of the person, else the introducer who goes with them
        "referral": "SELECT case_id, CASE channel WHEN 'place' THEN place_id ELSE introduced_by END, answer_due, NULL "
        "FROM referrals WHERE referral_id = ?",
        # the lead's follow-up: only while the agency asked is still the one to answer (the lead now)
        "followup": f"SELECT r.case_id, CASE WHEN f.side = 'lead' AND f.agency_id IS NOT {LEAD_NOW} THEN NULL "
        "ELSE f.agency_id END, f.answer_due, NULL FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
        "JOIN cases c ON c.case_id = r.case_id WHERE f.followup_id = ?",
    }.get(kind)
    row = conn.execute(sql, (int(ref),)).fetchone() if sql and int(ref) < 2**63 else None
    if row is None or row[1] != agency_id:
        return None
    return Asked(kind=kind, ref=ref, agency_id=agency_id, case_id=row[0], due_on=row[2], meeting_id=row[3])


def expires_on(config: Config, question: Asked, sent_on: date) -> date:
    if question.kind == "attendance":
        return question.due_on
    due = max(question.due_on or sent_on, sent_on)
    return Calendar.of(config.conference).add(due, config.web.link_grace_days)


def fill_links(
    conn: sqlite3.Connection, config: Config, key: MessageKey, agency_id: str, parts: dict, now: datetime | None = None
) -> dict:
    """The message's parts with its answer link in place of the mark (a fresh token, its hash stored,
    committed before the message is sent). The links of earlier e-mails about the same question stay
    live until this one is delivered (retire_earlier_links); if it is not, its own link dies
    (not_delivered): an agency never holds only a dead link while the mail server is down."""
    kind = QUESTION_OF.get(key.kind)
    if not asks(parts):
        return parts
    question = asked(conn, kind, key.ref, agency_id) if kind else None
    url = NO_LINK
    if question is not None:
        token = secrets.token_hex(32)
        now = now or clock.now()
        with conn:
            conn.execute(
                "INSERT INTO answer_links (token_hash, kind, ref, agency_id, case_id, message_key, minted_at, expires_on) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    token_hash(token),
                    kind,
                    question.ref,
                    agency_id,
                    question.case_id,
                    str(key),
                    clock.stamp(),
                    expires_on(config, question, now.astimezone(clock.TOKYO).date()).isoformat(),
                ),
            )
        url = link_url(config, token)
    filled = dict(parts)
    if isinstance(parts.get("text"), str):
        filled["text"] = parts["text"].replace(ANSWER_LINK, url)
    if isinstance(parts.get("html"), str):
        shown = html.escape(url, quote=True)
        link = f'<a href="{shown}">{shown}</a>' if question is not None else shown
        filled["html"] = parts["html"].replace(html.escape(ANSWER_LINK, quote=True), link)
    return filled
