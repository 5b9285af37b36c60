"""`engine history CASE`: the audit trail of one case, in Japanese, oldest first."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping

from pydantic import BaseModel

from engine.store.lifecycle import LINK_ACTOR, STATE_LABELS, CaseNotFound

EVENT_LABELS = {
    "opened": "事案開始",
    "relinked": "つなぎ直し（以前の事案に紐づけ）",
    "transition": "状態の変更",
    "conference_decided": "会議・主担当機関の案",
    "flags_added": "課題の追加",
    "pathway_chosen": "振り分け",
    "pathway_kept": "振り分けの継続",
    "assessment_answered": "アセスメントの結果",
    "outcome": "会議の結果",
    "actions_agreed": "役割分担",
    "actions_replaced": "役割の置き換え",
    "lead_requested": "受諾依頼",
    "lead_accepted": "受諾",
    "lead_declined": "辞退",
    "escalation": "エスカレーション",
    "checkpoint_scheduled": "確認日の予定",
    "checkpoint_asked": "確認の照会",
    "checkpoint_answered": "確認の回答",
    "contact": "接触の記録",
    "action_done": "役割の完了",
    "mail_sent": "メール送信",
    "mail_failed": "メール送信失敗",
    "digest_queued": "ダイジェスト",
    "crisis_reported": "確認日以外の報告（もどし）",
    "lead_request_withdrawn": "受諾依頼の取り下げ",
    "checkpoints_cancelled": "確認の予定の取り消し",
    "backdated": "遅れた記録（日付を遡って記録）",
    "corrected": "記録の訂正",
    "answered_via_link": "機関がメールのリンクから回答",
    "link_note_refused": "リンクの回答のメモを個人情報のため受け付けず",
    "attendance": "会議の出欠の回答",
    "note": "メモ",
    "rule_changed": "規則の変更",
    "need_recorded": "参加支援のニーズ",
    "referral_requested": "参加支援の紹介",
    "referral_moved": "紹介の状況",
    "capacity_updated": "受入れ先の空き",
    "followups_scheduled": "定着の確認の予定",
    "followup_asked": "定着の確認の照会",
    "followup_answered": "定着の確認の回答",
    "followups_cancelled": "定着の確認の取り消し",
    "followup_moved": "定着の確認の照会先の変更",
    "participation_concern": "参加支援の確認（もどし）",
}
CORRECTABLE_EVENTS = ("contact", "action_done")  # engine/casework/correction.py: shown with their number


class Entry(BaseModel):
    seq: int
    on_day: str
    actor: str
    event: str
    label: str
    from_status: str | None = None
    to_status: str | None = None
    reason: str
    meeting_id: str | None = None
    rule_id: str | None = None
    rules_hash: str | None = None
    config_hash: str | None = None
    detail: dict | None = None


def history(conn: sqlite3.Connection, case_id: str) -> list[Entry]:
    """Every audit entry of the case, plus the agenda e-mails of the meetings it was booked into."""
    if conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
        raise CaseNotFound(f"事案 {case_id} はありません")
    rows = conn.execute(
        "SELECT seq, on_day, actor, event, from_status, to_status, reason, meeting_id, rule_id, rules_hash, config_hash, detail FROM audit_log "
        "WHERE case_id = ? OR (case_id IS NULL AND event IN ('mail_sent', 'mail_failed') AND meeting_id IN "
        "(SELECT meeting_id FROM audit_log WHERE case_id = ? AND meeting_id IS NOT NULL) "
        # an agenda carries only the recipient's own cases: only agencies invited for this case
        "AND json_extract(detail, '$.agency') IN (SELECT agency_id FROM case_agencies WHERE case_id = ?)) ORDER BY seq",
        (case_id, case_id, case_id),
    ).fetchall()
    return [
        Entry(
            seq=r[0],
            on_day=r[1],
            actor=r[2],
            event=r[3],
            label=EVENT_LABELS.get(r[3], r[3]),
            from_status=r[4],
            to_status=r[5],
            reason=r[6],
            meeting_id=r[7],
            rule_id=r[8],
            rules_hash=r[9],
            config_hash=r[10],
            detail=json.loads(r[11]) if r[11] else None,
        )
        for r in rows
    ]


def with_agency_names(text: str, agencies: Mapping[str, str] | None) -> str:
    """Each agency id in `text` (a whole word) replaced by the agency's name: entries written before
    the texts named agencies, and the ids some texts still carry, read as names."""
    if not agencies or not text:
        return text
    ids = sorted((a for a in agencies if a), key=len, reverse=True)
    # not inside a message key (agenda:M-…:houkatsu_kita:v1), a path, a URL or an address: those are typed back
    pattern = re.compile(r"(?<![A-Za-z0-9_\-:./@])(" + "|".join(map(re.escape, ids)) + r")(?![A-Za-z0-9_\-:./@])")
    return pattern.sub(lambda m: agencies[m[1]], text)


def actor_label(actor: str, agencies: Mapping[str, str] | None) -> str:
    """`houkatsu_kita (リンク)` → `北部地域包括支援センター（リンク）`; other actors as they are."""
    agency, sep, _ = actor.partition(f" {LINK_ACTOR}")
    if sep and agencies and agency in agencies:
        return f"{agencies[agency]}{LINK_ACTOR.replace('(', '（').replace(')', '）')}"
    return actor


def render_history(case_id: str, entries: list[Entry], agencies: Mapping[str, str] | None = None) -> str:
    """The history as text; with `agencies` (id → name) agencies are named, not given by id."""
    lines = [f"事案 {case_id} の経過（{len(entries)} 件）"]
    for e in entries:
        what = e.label
        if e.event == "transition":
            what += f": {STATE_LABELS.get(e.from_status, e.from_status)} → {STATE_LABELS.get(e.to_status, e.to_status)}"
        extra = f" 会議 {e.meeting_id}" if e.meeting_id else ""
        extra += f"（記録番号 {e.seq}）" if e.event in CORRECTABLE_EVENTS else ""
        who, reason = actor_label(e.actor, agencies), with_agency_names(e.reason, agencies)
        lines.append(f"{e.on_day} [{who}] {what}{extra} — {reason}" if reason else f"{e.on_day} [{who}] {what}{extra}")
    return "\n".join(lines)
