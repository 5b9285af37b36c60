"""E-mails of the lifecycle: lead requests, reminders, checkpoint questions, the coordinator's
digest. Each is queued once under its own key (papers.queue ignores a key already queued), so a
sweep run twice sends nothing twice. Bodies name cases by pseudonymous id only."""

from __future__ import annotations

from pydantic import BaseModel

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.outbox.queue import queue
from engine.papers.agenda import environment

COORDINATOR = "coordinator"  # the recipient id of the 多機関協働事業者 (mail address in lifecycle.yaml)
# where the answer link goes: the queued copy keeps this mark, the e-mail gets BASE_URL/a/TOKEN when it
# is sent (engine/links/tokens.py), so that the token is never stored
ANSWER_LINK = "[[回答用リンク]]"


def answer_by_link(what: str) -> str:
    """A notice's `answer`: the link, and the telephone for those who prefer it."""
    return (
        f"次のリンクから回答してください（ログイン不要）。{what}\n{ANSWER_LINK}\n"
        "このリンクは貴機関専用です。転送しないでください。お電話でコーディネーターにお伝えいただくこともできます。"
    )


class Notice(BaseModel):
    key: str  # a MessageKey's text: lead_request:N, lead_withdrawn:N, reminder:N:due|overdue[:locked], checkpoint:N, digest:DAY
    kind: str
    recipient: str  # agency id, or COORDINATOR
    title: str
    case_id: str | None = None
    lines: list[str]
    answer: str | None = None


def recipient_name(config: Config, recipient: str) -> str:
    if recipient == COORDINATOR:
        return "多機関協働事業 コーディネーター"
    agency = config.agencies.get(recipient)
    return agency.name if agency else recipient


def queue_notice(conn, config: Config, notice: Notice) -> bool:
    """Queue the notice unless its key was queued before; True if queued now."""
    env = environment(config)
    view = notice.model_dump() | {
        "recipient_name": recipient_name(config, notice.recipient),
        "sender_name": config.name_of("support") + "事務局",
    }
    parts = {
        "text": env.get_template("notice.txt.j2").render(n=view),
        "html": env.get_template("notice.html.j2").render(n=view),
    }
    subject = f"【{notice.title}】" + (f"事案 {notice.case_id}" if notice.case_id else MessageKey.parse(notice.key).ref)
    return queue(conn, key=notice.key, kind=notice.kind, agency_id=notice.recipient, subject=subject, parts=parts)
