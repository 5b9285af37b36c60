"""E-mails of the lifecycle: lead requests, reminders, checkpoint questions, the coordinator's
digest. Each is queued once under its own key (papers.queue ignores a key already queued), so a
sweep run twice sends nothing twice. Bodies name cases by pseudonymous id only.

Wording (docs/papers-style.md, section Notices): an agency is addressed 御中, the coordinator 様;
the sender is the 事務局 of the case's conference type; dates are 和暦（曜日）; agencies by name,
codes by their labels (engine/support/vocabulary.py), never a rule id."""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.outbox.queue import queue
from engine.papers.agenda import environment
from engine.papers.letterhead import secretariat
from engine.support.dates import wareki_with_weekday

COORDINATOR = "coordinator"  # the recipient id of the 多機関協働事業者 (mail address in lifecycle.yaml)
# where the answer link goes: the queued copy keeps this mark, the e-mail gets BASE_URL/a/TOKEN when it
# is sent (engine/links/tokens.py), so that the token is never stored
ANSWER_LINK = "[[回答用リンク]]"


def answer_by_link(what: str) -> str:
    """A notice's `answer`: `what` to do with the link (a sentence naming 次のリンク), the link, and
    the telephone for those who prefer it."""
    return (
        f"{what}\n{ANSWER_LINK}\n"
        "ログインは不要です。このリンクは貴機関専用のため、転送はご遠慮ください。"
        "お電話でコーディネーターにお伝えいただくこともできます。"
    )


class Notice(BaseModel):
    key: str  # a MessageKey's text: lead_request:N, lead_withdrawn:N, reminder:N:due|overdue[:locked], checkpoint:N, digest:DAY
    kind: str
    recipient: str  # agency id, or COORDINATOR
    title: str
    case_id: str | None = None
    lines: list[str]
    answer: str | None = None
    issued_on: date | None = None  # the day of the notice, printed as 和暦（曜日）
    conference_type: str | None = None  # whose 事務局 signs; default: the case's type, else 支援会議
    sender: str | None = None  # who signs instead (a place is never told which conference knows the person)


def recipient_name(config: Config, recipient: str) -> str:
    if recipient == COORDINATOR:
        return "多機関協働事業 コーディネーター"
    agency = config.agencies.get(recipient) or config.participation.places.get(recipient)
    return agency.name if agency else recipient


def addressed(config: Config, recipient: str) -> str:
    """An organisation 御中, the coordinator (a person's role) 様."""
    return recipient_name(config, recipient) + (" 様" if recipient == COORDINATOR else " 御中")


def sender_name(config: Config, conference_type: str | None = None) -> str:
    """The 事務局 of the conference type (支援会議 when none is known: a routed or new case, the digest)."""
    return secretariat(config, conference_type if conference_type in config.conference.names else "support")


def case_conference(conn: sqlite3.Connection, case_id: str | None) -> str | None:
    if not case_id:
        return None
    row = conn.execute("SELECT conference_type FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    return row[0] if row else None


def contact(config: Config) -> dict:
    """The letterhead's contact block (問合せ先), the sender's address when it names no e-mail."""
    return config.letterhead.contact.model_dump() | {"email": config.letterhead.contact.email or config.mail.sender}


def render_notice(config: Config, notice: Notice, conference_type: str | None = None) -> dict[str, str]:
    env = environment(config)
    view = notice.model_dump() | {
        "addressed": addressed(config, notice.recipient),
        "recipient_name": recipient_name(config, notice.recipient),
        "sender_name": notice.sender or sender_name(config, notice.conference_type or conference_type),
        "contact": contact(config),
        "issued": wareki_with_weekday(notice.issued_on) if notice.issued_on else "",
    }
    return {
        "text": env.get_template("notice.txt.j2").render(n=view),
        "html": env.get_template("notice.html.j2").render(n=view),
    }


def subject_of(notice: Notice) -> str:
    if notice.case_id:
        return f"【{notice.title}】事案 {notice.case_id}"
    if notice.issued_on:
        return f"【{notice.title}】{wareki_with_weekday(notice.issued_on)}"
    return f"【{notice.title}】{MessageKey.parse(notice.key).ref}"


def queue_notice(conn, config: Config, notice: Notice) -> bool:
    """Queue the notice unless its key was queued before; True if queued now."""
    parts = render_notice(config, notice, case_conference(conn, notice.case_id))
    return queue(
        conn, key=notice.key, kind=notice.kind, agency_id=notice.recipient, subject=subject_of(notice), parts=parts
    )


def render_routing(env, config: Config, view: dict, on: date) -> dict[str, str]:
    """A routing notice's parts: `view` (engine/papers/write.py, whose hash decides a new version)
    plus the day it is written and the contact block, which must not make a new version by themselves."""
    r = view | {"issued": wareki_with_weekday(on), "contact": contact(config)}
    return {
        "text": env.get_template("routing.txt.j2").render(r=r),
        "html": env.get_template("routing.html.j2").render(r=r),
    }
