"""Case states, the transitions allowed between them, and the append-only audit log.

The usual path:  detected → convened → lead_pending → active → closed (終結, watched) → archived
with routed (a silo conference or a serving agency has it, checked back), suspended (中断),
reopened (もどし), and the triage pathways of engine/triage: assessing (one agency assesses) and
watching (watch only, re-screened on a date).
TRANSITIONS below is the complete list (a conference can also close or suspend a convened
case, a lead change sends an active case back to lead_pending, a case that loses its slot
waits as detected again, a routed case the silo conference lets go is archived).

Every change of state goes through `Log.move`, which refuses a transition not in TRANSITIONS
(and the database refuses it too: a trigger checks the case_transitions table). Every change,
decision and e-mail is written to `audit_log`, which triggers protect from UPDATE and DELETE.
Each entry carries a hash chained to the one before (engine/store/audit_chain.py).
Entries carry pseudonymous ids only: never a name, kana, address or birth date.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date

from engine.store import audit_chain
from engine.support import clock
from engine.support.errors import EngineError

STATE_LABELS = {
    "detected": "検知（会議の予約待ち）",
    "convened": "会議に付議",
    "lead_pending": "主担当機関の受諾待ち",
    "active": "支援中（プラン実施）",
    "closed": "終結（見守り中）",
    "archived": "見守り完了",
    "routed": "要対協・支援中の機関で対応（確認日あり）",
    "suspended": "中断",
    "reopened": "再開（もどし）",
    "assessing": "アセスメント中（一機関が訪問・確認）",
    "watching": "経過観察中（再確認日あり）",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    "detected": frozenset({"convened", "routed", "assessing", "watching"}),
    # a case re-decided without a free slot goes back to waiting; the conference's outcome moves it on
    "convened": frozenset({"detected", "lead_pending", "active", "closed", "suspended"}),
    # declined by every candidate: back to a conference
    "lead_pending": frozenset({"active", "closed", "convened", "detected", "suspended"}),
    "active": frozenset({"lead_pending", "closed", "suspended"}),
    "closed": frozenset({"reopened", "archived"}),
    "suspended": frozenset({"reopened"}),
    # a silo conference let the household go with problems open, or its owner reports a concern
    "routed": frozenset({"convened", "detected", "archived"}),
    "reopened": frozenset({"convened", "detected"}),
    # triage (engine/triage): one agency assesses; it resolves the case within its silo (closed, the
    # agency is the lead), finds it needs a conference, or cannot reach the household (then a conference)
    "assessing": frozenset({"convened", "detected", "closed"}),
    # watch only: at the re-screen the flag is gone (archived) or still there (assessed or convened)
    "watching": frozenset({"assessing", "convened", "detected", "routed", "archived"}),
    "archived": frozenset(),  # a household flagged again gets a new case linked to this one
}
OPEN_STATES = frozenset(TRANSITIONS) - {"archived"}
CHECKPOINT_LABELS = {
    "evaluation": "プランの評価",
    "watch": "終結後の見守り",
    "check_back": "要対協・支援中の機関への状況の確認",
    "review": "中断の見直し",
    "assessment": "アセスメント（訪問・アウトリーチ）",
    "rescreen": "経過観察の再確認",
}


class InvalidTransition(EngineError):
    """The requested change of state is not allowed from the case's current state."""


class CaseNotFound(EngineError):
    pass


# the actors the engine writes itself (tests/casework/test_chronology.py greps the Log(...) calls for them)
# "web": the console's own entries (a failed login under a name that is no account)
SYSTEM_ACTORS = frozenset({"nightly", "sweep", "dispatch", "web", audit_chain.ENGINE_ACTOR})


LINK_ACTOR = "(リンク)"  # an agency answering from the link in its e-mail: "AGENCY (リンク)"


def link_actor(agency_id: str) -> str:
    """The actor of an answer given through an e-mail's link (engine/links): reserved, never a --by."""
    return f"{agency_id} {LINK_ACTOR}"


class ActorRefused(EngineError):
    """--by names the engine itself (or is no name): the audit log would lie about who acted."""

    exit_code = 2


def person_actor(name: str) -> str:
    """A name a person records under (--by): not a system actor, nor the demo's simulated people
    (`…(sim)`), nor an agency answering through a link (`… (リンク)`), printable, at most 64 characters."""

    text = name.strip()
    folded = unicodedata.normalize("NFKC", text).casefold().replace(" ", "")
    if not text or any(unicodedata.category(c).startswith("C") for c in text) or len(text) > 64:
        raise ActorRefused("--by: give a name of at most 64 printable characters (kept in the audit log)")
    if folded in SYSTEM_ACTORS or folded.endswith("(sim)") or folded.endswith(LINK_ACTOR):
        raise ActorRefused(
            f"--by {text}: '{text}' is reserved for the engine's own entries "
            f"({', '.join(sorted(SYSTEM_ACTORS))}, …(sim), …{LINK_ACTOR}); give your own name"
        )
    return text


_VIA: ContextVar[str | None] = ContextVar("engine_via", default=None)


@contextmanager
def acting_via(via: str) -> Iterator[None]:
    """Every audit entry written inside (in this thread) carries {"via": via} in its detail: how
    the actor acted ("console" for a logged-in coordinator). No CLI command sets it."""
    token = _VIA.set(via)
    try:
        yield
    finally:
        _VIA.reset(token)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container)
        return "coordinator"


def explain_refusal(case_id: str, current: str, wanted: str) -> str:
    allowed = (
        "、".join(STATE_LABELS[s] for s in sorted(TRANSITIONS[current])) or "なし（新しい事案として再び紐づけられます）"
    )
    return f"事案 {case_id} は「{STATE_LABELS[current]}」です。「{STATE_LABELS[wanted]}」には移れません（移れる状態: {allowed}）"


class Log:
    """The one writer of the audit log for one actor on one (possibly simulated) day: it moves
    cases between states (refusing invalid moves), records events and contacts, and raises
    escalations — each of which is an audit entry."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        on: date,
        actor: str,
        *,
        rules_hash: str | None = None,
        config_hash: str | None = None,
    ):
        self.conn, self.on, self.actor = conn, on, actor
        self.rules_hash = rules_hash or self._last_rules_hash()
        self.config_hash = config_hash

    def _last_rules_hash(self) -> str | None:
        row = self.conn.execute("SELECT rules_hash FROM screen_runs ORDER BY run_id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def event(
        self,
        event: str,
        *,
        case_id: str | None = None,
        household_id: str | None = None,
        meeting_id: str | None = None,
        reason: str = "",
        rule_id: str | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        **detail,
    ) -> None:
        if (via := _VIA.get()) is not None:
            detail.setdefault("via", via)
        if case_id and household_id is None:
            row = self.conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
            household_id = row[0] if row else None
        audit_chain.append(  # with its hash chained to the previous entry, under the write lock
            self.conn,
            dict(
                at=clock.stamp(),
                on_day=self.on.isoformat(),
                actor=self.actor,
                event=event,
                case_id=case_id,
                household_id=household_id,
                meeting_id=meeting_id,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
                rule_id=rule_id,
                rules_hash=self.rules_hash,
                config_hash=self.config_hash,
                detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None,
            ),
        )

    def status(self, case_id: str) -> str:
        row = self.conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            raise CaseNotFound(f"事案 {case_id} はありません（`engine cases` で事案番号を確認してください）")
        return row[0]

    def check(self, case_id: str, to: str) -> str:
        """The current state, if `to` may follow it; else InvalidTransition."""
        current = self.status(case_id)
        if current != to and to not in TRANSITIONS[current]:
            raise InvalidTransition(explain_refusal(case_id, current, to))
        return current

    def move(
        self, case_id: str, to: str, reason: str, *, rule_id: str | None = None, meeting_id: str | None = None, **detail
    ) -> bool:
        """Change the case's state (a no-op if it is already there); False if nothing changed."""
        current = self.check(case_id, to)
        if current == to:
            return False
        moved = self.conn.execute(
            "UPDATE cases SET status = ?, is_open = ? WHERE case_id = ? AND status = ?",
            (to, int(to in OPEN_STATES), case_id, current),
        ).rowcount
        if not moved:  # the state read above is no longer current: another command moved the case meanwhile
            raise InvalidTransition(
                f"事案 {case_id} の状態は他の操作で変わったところです。`engine history {case_id}` で確認してください"
            )
        self.event(
            "transition",
            case_id=case_id,
            meeting_id=meeting_id,
            from_status=current,
            to_status=to,
            reason=reason,
            rule_id=rule_id,
            **detail,
        )
        return True

    def escalate(self, key: str, kind: str, detail: str, *, case_id: str | None = None) -> bool:
        """Raise an escalation to the coordinator once per `key`; True if raised now. The daily
        digest reports it; the audit counts an overdue item without one as a gap."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO escalations (subject_key, case_id, kind, raised_on, detail) VALUES (?,?,?,?,?)",
            (key, case_id, kind, self.on.isoformat(), detail),
        )
        if cur.rowcount:
            self.event("escalation", case_id=case_id, reason=detail, kind=kind, key=key)
        return bool(cur.rowcount)

    def contact(self, case_id: str, agency_id: str, via: str) -> None:
        self.conn.execute("INSERT INTO contacts VALUES (?,?,?,?)", (case_id, agency_id, self.on.isoformat(), via))
