"""A note on an entry of a case's history: a contact, a done action, a concern (a watch answer) or
any other entry, appended as a `note` event that names the entry (`about`).

The audit log is append-only: a note adds to an entry, it never changes it (a wrong contact or done
action is corrected by engine/casework/correction.py). A note is free text that may be shown to
agencies, so it is refused when it holds personal data of the household (a name, kana, address or
birth date), like every other free text the engine keeps.
"""

from __future__ import annotations

import sqlite3

from engine.casework.history import EVENT_LABELS
from engine.config import Config
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.store.db import write_transaction
from engine.store.lifecycle import CaseNotFound, Log
from engine.support import clock
from engine.support.errors import EngineError

NOTE_MAX = 500  # characters


class NoteRefused(EngineError):
    """The note cannot be kept (said why). `personal`: for the household's personal data (an answer
    link bars its notes after one such refusal: engine/links/answers.py)."""

    personal = False


class PersonalNote(NoteRefused):
    personal = True


def check_note(conn: sqlite3.Connection, case_id: str, text: str) -> str:
    """The note's text, stripped; NoteRefused when it is empty, too long or holds personal data."""
    row = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    if row is None:
        raise CaseNotFound(f"事案 {case_id} はありません（`engine cases` で事案番号を確認してください）")
    note = text.strip()
    if not note:
        raise NoteRefused("メモが空です: 書き留める内容を入力してください")
    if len(note) > NOTE_MAX:
        raise NoteRefused(f"メモは {NOTE_MAX} 字までです（{len(note)} 字）: 要点だけを書いてください")
    if holds_personal_data(note, personal_tokens(conn, row[0])):
        raise PersonalNote(
            "メモに世帯の個人情報（氏名、かな、住所、生年月日）が含まれています: "
            "本人、世帯員、長男などと書き換えてください（メモは関係機関に示されることがあります）"
        )
    return note


def add_note(conn: sqlite3.Connection, config: Config, case_id: str, seq: int, text: str, actor: str) -> int:
    """Append a note on the entry `seq` of `case_id`; returns the note's own seq."""
    note = check_note(conn, case_id, text)
    log = Log(conn, clock.today(), actor, config_hash=config.hash)
    with write_transaction(conn):
        row = conn.execute(
            "SELECT event, on_day FROM audit_log WHERE seq = ? AND case_id = ?",
            (seq, case_id) if 0 < seq < 2**63 else (0, case_id),
        ).fetchone()
        if row is None:
            raise NoteRefused(
                f"事案 {case_id} に記録番号 {seq} はありません（`engine history {case_id}` に番号が出ます）"
            )
        label = EVENT_LABELS.get(row[0], row[0])
        log.event(
            "note", case_id=case_id, reason=f"記録番号 {seq}（{label}、{row[1]}）へのメモ: {note}", about=seq, note=note
        )
        return conn.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
