"""An agency answers from the link in its e-mail: the link is used once, in one write transaction
that re-checks the question is still open, and the answer goes through the same plain functions
as the coordinator's CLI (accept, decline, action_done, answer_checkpoint), under the reserved
actor "AGENCY (リンク)" (engine.store.lifecycle.link_actor) and an `answered_via_link` entry, so
that the audit log says which agency answered, and that it was through a link.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import date

from engine.casework.handshake import accept, action_done, decline
from engine.casework.notes import NoteRefused, check_note
from engine.casework.watch import answer_checkpoint
from engine.config import Config
from engine.links.questions import ANSWER_LABELS, TITLES, Question, checkpoint_kind, question, resolve
from engine.papers.notices import recipient_name
from engine.rules.model import RuleSet
from engine.store.db import write_transaction
from engine.store.lifecycle import Log, acting_via, link_actor
from engine.support import clock
from engine.support.errors import EngineError
from engine.triage.assessment import answer_assessment

NOTE_MAX = 1000  # an attendance note (no case); a note on a case is checked by engine/casework/notes.py


class LinkUsed(EngineError):
    def __init__(self, answered_at: str | None):
        self.answered_at = answered_at
        super().__init__(
            f"この質問には回答済みです（{answered_at or '日時不明'}）。変更はコーディネーターにご連絡ください。"
        )


class LinkExpired(EngineError):
    def __init__(self, expires_on: str):
        self.expires_on = expires_on
        super().__init__(f"このリンクの有効期限（{expires_on}）が過ぎています。コーディネーターにご連絡ください。")


class LinkRevoked(EngineError):
    def __init__(self):
        super().__init__(
            "このご依頼は取り下げられたか、新しいメールで送り直されています。"
            "最新のメールのリンクをお使いいただくか、コーディネーターにご連絡ください。"
        )


class AnswerRefused(EngineError):
    """The answer cannot be recorded as given (a reason missing, personal data in the note, …)."""


def _answered_at(on: date) -> str:
    """When the link was used: the time in Japan, or only the day when it is not today (the demo's days)."""
    now = clock.local_now()
    return now.isoformat(timespec="seconds") if now.date() == on else on.isoformat()


def _clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if not text:
        return None
    if len(text) > NOTE_MAX:
        raise AnswerRefused(f"メモは{NOTE_MAX}文字以内でお書きください（{len(text)}文字あります）。")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text.replace("\r\n", "\n")):
        raise AnswerRefused("メモに使えない制御文字が含まれています。文字だけでお書きください。")
    return text.replace("\r\n", "\n")


def record_attendance(
    conn: sqlite3.Connection,
    config: Config,
    meeting_id: str,
    agency_id: str,
    choice: str,
    note: str | None,
    on: date,
    actor: str,
) -> None:
    """An agency's 出欠 for a meeting (the latest answer counts), in the audit log."""
    with write_transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO attendance VALUES (?,?,?,?,?)",
            (meeting_id, agency_id, choice, on.isoformat(), note),
        )
        name = config.agencies[agency_id].name if agency_id in config.agencies else agency_id
        Log(conn, on, actor, config_hash=config.hash).event(
            "attendance",
            meeting_id=meeting_id,
            reason=f"{name}が会議 {meeting_id} に{ANSWER_LABELS['attendance'][choice]}と回答",
            agency=agency_id,
            answer=choice,
        )


def answer(
    conn: sqlite3.Connection, config: Config, rules: RuleSet, token: str, choice: str, note: str | None, on: date
) -> Question:
    """Record the agency's answer through its link, once. Raises LinkNotFound, LinkUsed,
    LinkExpired, LinkRevoked or AnswerRefused; nothing of the answer is recorded then (a note
    refused for the household's personal data is itself written down: it bars the link's notes)."""
    note = _clean_note(note)
    refused: str | None = None  # a note refused for the household's personal data: why
    with write_transaction(conn):  # the link and its question are read under the write lock
        row, q = resolve(conn, token)
        shown = question(conn, config, q, on, row)
        if shown.state == "answered":
            raise LinkUsed(shown.answered_at)
        if shown.state == "revoked":
            raise LinkRevoked()
        if shown.state == "expired":
            raise LinkExpired(row["expires_on"])
        picked = next((c for c in shown.choices if c.value == choice), None)
        if picked is None:
            raise AnswerRefused("回答を選んでください（" + "・".join(c.label for c in shown.choices) + "）。")
        if picked.needs_reason and not note:
            raise AnswerRefused(f"「{picked.label}」の場合は、理由をメモにお書きください。")
        if note and not picked.allows_note:
            note = None
        actor = link_actor(q.agency_id)
        # The note's guard (personal data of the household) must not answer guesses. It is asked only
        # of an answer that can be recorded, so a note that passes uses the link up; and once it has
        # refused a note, the link takes no note any more, whatever it says: at most one guess a link.
        if note and q.case_id and notes_barred(conn, row["link_id"]):
            raise AnswerRefused(NOTES_BARRED)
        _apply_or_refuse(conn, config, rules, q, choice, PLACEHOLDER if note else None, on, actor, trial=True)
        if note and q.case_id:
            try:  # the one guard of free text on a case (personal data of the household, length)
                note = check_note(conn, q.case_id, note)
            except NoteRefused as err:
                if not err.personal:
                    raise AnswerRefused(str(err)) from None  # too long: nothing kept
                refused = str(err)
        if refused is not None:
            # nothing of the answer was written (the trial was rolled back): the refusal is, in this
            # same transaction, so no second answer can slip in before the link's notes are barred
            _log_refusal(conn, config, rules, q, row["link_id"], on)
        else:
            _apply_or_refuse(conn, config, rules, q, choice, note, on, actor)
            used = conn.execute(
                "UPDATE answer_links SET used_at = ?, answer = ?, note = ? WHERE link_id = ? AND used_at IS NULL",
                (_answered_at(on), choice, note, row["link_id"]),
            ).rowcount
            if not used:  # cannot happen under the write lock; never record an answer twice
                raise LinkUsed(None)
            name = recipient_name(config, q.agency_id)  # an agency or a place
            Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash).event(  # via: link
                "answered_via_link",
                case_id=q.case_id,
                meeting_id=q.meeting_id,
                reason=f"{name}がメールのリンクから回答（{TITLES[q.kind]}）: {ANSWER_LABELS[q.kind][choice]}"
                + (f"（メモ: {note}）" if note else ""),
                via="link",
                agency=q.agency_id,
                kind=q.kind,
                ref=q.ref,
                link_id=row["link_id"],
            )
            row, q = resolve(conn, token)  # answered: shown so even if the answer moved the question on
            return question(conn, config, q, on, row)
    # only a note refused for personal data gets here, its refusal committed
    raise AnswerRefused(f"{refused}（このリンクでは、以後メモを受け付けません）")


PLACEHOLDER = "（回答の確認）"  # the note of the trial answer, which is rolled back
NOTE_REFUSED_EVENT = "link_note_refused"
NOTES_BARRED = (
    "このリンクでは、先にメモに世帯の個人情報が含まれていたため、メモを受け付けません。"
    "メモなしで回答し、お伝えになりたいことはコーディネーターにご連絡ください。"
)


def notes_barred(conn: sqlite3.Connection, link_id: int) -> bool:
    """The link's note was refused once for personal data (in the audit log): it takes no note now."""
    return (
        conn.execute(
            "SELECT 1 FROM audit_log WHERE event = ? AND json_extract(detail, '$.link_id') = ? LIMIT 1",
            (NOTE_REFUSED_EVENT, link_id),
        ).fetchone()
        is not None
    )


def _log_refusal(conn: sqlite3.Connection, config: Config, rules: RuleSet, q, link_id: int, on: date) -> None:
    """A note refused for personal data, in the case's audit log (without the note): it bars the link's notes."""
    Log(conn, on, link_actor(q.agency_id), rules_hash=rules.hash, config_hash=config.hash).event(
        NOTE_REFUSED_EVENT,
        case_id=q.case_id,
        reason=f"{recipient_name(config, q.agency_id)}がリンクの回答のメモに世帯の個人情報を書いたため、"
        "回答は記録せず、このリンクではメモを受け付けない",
        via="link",
        agency=q.agency_id,
        link_id=link_id,
    )


def _apply_or_refuse(conn, config, rules, q, choice, note, on, actor, *, trial: bool = False) -> None:
    """_apply, or AnswerRefused when the answer cannot be recorded; a `trial` is rolled back either way."""
    if trial:
        conn.execute("SAVEPOINT link_trial")
    try:
        with acting_via("link"):
            _apply(conn, config, rules, q, choice, note, on, actor)
    except EngineError as err:
        raise AnswerRefused(
            "この回答は記録できませんでした（事案の状況が変わった可能性があります）。コーディネーターにご連絡ください。"
        ) from err
    finally:
        if trial and conn.in_transaction:  # SQLite may have rolled the whole transaction back (disk full)
            conn.execute("ROLLBACK TO link_trial")
            conn.execute("RELEASE link_trial")


def _apply(
    conn: sqlite3.Connection,
    config: Config,
    rules: RuleSet,
    q,
    choice: str,
    note: str | None,
    on: date,
    actor: str,
) -> None:
    """The answer through the plain function the CLI calls for it."""
    if q.kind == "lead_request":
        if choice == "accept":
            accept(conn, config, q.case_id, on, actor, q.agency_id)
        else:
            decline(conn, rules, config, q.case_id, note or "", on, actor, q.agency_id)
    elif q.kind == "action":
        action_done(conn, config, int(q.ref), on, actor)
    elif q.kind in ("referral", "followup"):  # 参加支援 (engine/participation)
        from engine.participation.answers import apply_answer
        from engine.participation.followups import answer_followup

        log = Log(conn, on, actor, rules_hash=rules.hash, config_hash=config.hash)
        if q.kind == "referral":
            apply_answer(log, rules, config, int(q.ref), choice, note)
        else:
            answer_followup(log, rules, config, int(q.ref), choice, note)
    elif q.kind == "checkpoint" and checkpoint_kind(conn, q.ref) == "assessment":  # triage
        done = answer_assessment(conn, rules, config, q.case_id, choice, on, actor, q.agency_id, note)
        if done.checkpoint_id != int(q.ref):
            raise AnswerRefused("この事案には先に回答が必要な確認があります。コーディネーターにご連絡ください。")
    elif q.kind == "checkpoint":
        done = answer_checkpoint(conn, rules, config, q.case_id, choice, on, actor, q.agency_id)
        if done.checkpoint_id != int(q.ref):  # an earlier checkpoint of the case is still open: that one first
            raise AnswerRefused("この事案には先に回答が必要な確認があります。コーディネーターにご連絡ください。")
    else:
        record_attendance(conn, config, q.ref, q.agency_id, choice, note, on, actor)
