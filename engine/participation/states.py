"""The states of a referral (紹介) and the moves allowed between them, after HL7 Gravity's Task:

    requested → accepted | waitlisted | declined | cancelled
    waitlisted → accepted | declined | cancelled
    accepted → attending | ended | cancelled
    attending → ended
    declined, ended, cancelled: final

Every move goes through `move_referral`, which refuses one not listed here; the database refuses
it too (a trigger checks referral_transitions, which every read-write open keeps equal to this
table: engine/store/migrations.py). Each move is an audit entry on the referral's case.
"""

from __future__ import annotations

from engine.store.lifecycle import Log
from engine.support.errors import EngineError
from engine.support.vocabulary import REFERRAL_STATE_LABELS

REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "waitlisted", "declined", "cancelled"}),
    "waitlisted": frozenset({"accepted", "declined", "cancelled"}),
    "accepted": frozenset({"attending", "ended", "cancelled"}),
    "attending": frozenset({"ended"}),
    "declined": frozenset(),
    "ended": frozenset(),
    "cancelled": frozenset(),
}
LIVE = frozenset({"requested", "waitlisted", "accepted", "attending"})  # the referral still runs
MATCHED = frozenset({"accepted", "attending"})  # the place has taken the person
FINAL = frozenset(REFERRAL_TRANSITIONS) - LIVE


class ReferralRefused(EngineError):
    """The referral cannot move as asked (said why, in Japanese)."""


def move_referral(log: Log, referral_id: int, to: str, why: str, **fields) -> str:
    """Move the referral to `to` (`why`: the audit log's reason), setting `fields` (answered_on, band, reason, note, closed_on) in
    the same statement; returns the state it was in. ReferralRefused if the move is not allowed
    or the referral changed meanwhile."""
    row = log.conn.execute("SELECT status, case_id FROM referrals WHERE referral_id = ?", (referral_id,)).fetchone()
    if row is None:
        raise ReferralRefused(f"紹介 {referral_id} はありません（`engine referrals` で確認してください）")
    current, case_id = row
    if to not in REFERRAL_TRANSITIONS[current]:
        allowed = "、".join(REFERRAL_STATE_LABELS[s] for s in sorted(REFERRAL_TRANSITIONS[current])) or "なし"
        raise ReferralRefused(
            f"紹介 {referral_id} は「{REFERRAL_STATE_LABELS[current]}」です。"
            f"「{REFERRAL_STATE_LABELS[to]}」には移れません（移れる状態: {allowed}）"
        )
    if to in FINAL:
        fields.setdefault("closed_on", log.on.isoformat())
    sets = "".join(f", {k} = ?" for k in fields)
    moved = log.conn.execute(
        f"UPDATE referrals SET status = ?{sets} WHERE referral_id = ? AND status = ?",
        (to, *fields.values(), referral_id, current),
    ).rowcount
    if not moved:
        raise ReferralRefused(
            f"紹介 {referral_id} の状態は他の操作で変わったところです。`engine history {case_id}` で確認してください"
        )
    log.event(
        "referral_moved",
        case_id=case_id,
        reason=why,
        referral_id=referral_id,
        referral_from=current,
        referral_to=to,
        **{f"referral_{k}": v for k, v in fields.items() if k in ("band", "reason")},
    )
    return current
