"""How a 招集通知 is issued: per conference type its sender (事務局), its notice and the handling of
its papers, and for every version a document number, a date of issue, the end time and the date
by which to answer attendance. The municipality sets them in configs/letterhead.yaml
(engine.config.Letterhead); the wording below is the default and the law's.

Document numbers run per 年度 (April to March) and are kept in the database (document_numbers)
(owner-only): a number is taken before the version is written, so a run that fails afterwards
leaves a gap and never gives the same number twice.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

from engine.config import ConferenceType, Config
from engine.support.business_days import Calendar
from engine.support.dates import era_of

NOTICES: dict[ConferenceType, str] = {
    "support": (
        "本資料は社会福祉法第106条の6に基づく{name}の資料です。同条第5項により、会議の事務に従事する者"
        "（従事していた者を含む）は、正当な理由なく、会議の事務に関して知り得た秘密を漏らしてはなりません"
        "（違反には罰則があります）。{name}の構成員である機関の方に限ってお送りしています。"
    ),
    "multi": (
        "本資料は重層的支援体制整備事業の実施要綱に基づく{name}の資料です。記載した世帯員の情報は、ご本人の同意"
        "（情報共有への同意）に基づき、同意の範囲で共有するものです。個人情報は、個人情報の保護に関する法律"
        "及び{municipality}の定めに従って取り扱い、この会議での支援の検討以外に用いないでください。"
    ),
}
HANDLING: dict[ConferenceType, tuple[str, ...]] = {
    "support": (
        "資料は会議の終了時に回収します。印刷した場合は会議にお持ちください。",
        "資料の複製・転送・目的外の利用はしないでください（貴機関内で共有する場合も、会議の事務に従事する方に限ります）。",
        "保存した電子ファイルは、会議の終了後に速やかに削除してください。",
    ),
    "multi": (
        "資料は会議の終了時に回収します。印刷した場合は会議にお持ちください。",
        "資料は転送しないでください。ご本人が同意した機関以外に共有することはできません。",
        "保存した電子ファイルは、会議の終了後に速やかに削除してください。",
    ),
}
WRONG_RECIPIENT = "このメールが誤って届いた場合は、内容を利用せずに削除し、{sender}（{email}）へご連絡ください。"


def secretariat(config: Config, kind: ConferenceType) -> str:
    """The sender of the papers of a conference type: 支援会議事務局 or 重層的支援会議事務局."""
    return config.letterhead.secretariat.get(kind) or config.name_of(kind) + "事務局"


def issuer(config: Config, kind: ConferenceType) -> str:
    return config.letterhead.issuer or secretariat(config, kind)


def notice(config: Config, kind: ConferenceType) -> str:
    return NOTICES[kind].format(name=config.name_of(kind), municipality=config.letterhead.municipality)


def handling(config: Config, kind: ConferenceType) -> list[str]:
    return list(config.letterhead.handling.get(kind) or HANDLING[kind])


def contact(config: Config, kind: ConferenceType) -> dict:
    c = config.letterhead.contact
    return dict(
        department=c.department,
        person=c.person,
        phone=c.phone,
        email=c.email or config.mail.sender,
        wrong_recipient=WRONG_RECIPIENT.format(sender=secretariat(config, kind), email=c.email or config.mail.sender),
    )


def end_time(config: Config, start: str) -> str:
    """HH:MM the meeting ends: the letterhead's fixed end time, or the start plus the duration."""
    if config.letterhead.end_time is not None:
        return f"{config.letterhead.end_time:%H:%M}"
    begins = datetime.strptime(start, "%H:%M")
    return f"{begins + timedelta(minutes=config.letterhead.duration_minutes):%H:%M}"


def reply_by(config: Config, held_on: date, today: date) -> date:
    """The business day `reply_business_days` before the meeting (not before today)."""
    calendar, d, n = Calendar.of(config.conference), held_on, config.letterhead.reply_business_days
    while n > 0:
        d -= timedelta(days=1)
        if calendar.is_business_day(d):
            n -= 1
    return max(d, today)


def fiscal_year(d: date) -> int:
    return d.year if d.month >= 4 else d.year - 1


def take_number(conn: sqlite3.Connection, config: Config, issued_on: date) -> str:
    """The next document number of the 年度 of `issued_on`. Taken in the caller's transaction (the
    papers are written in one): a run killed before it commits gives the same number again, and
    one committed is never given twice."""
    fy = fiscal_year(issued_on)
    conn.execute(
        "INSERT INTO document_numbers (fiscal_year, last_seq) VALUES (?, 1) "
        "ON CONFLICT (fiscal_year) DO UPDATE SET last_seq = last_seq + 1",
        (fy,),
    )
    (seq,) = conn.execute("SELECT last_seq FROM document_numbers WHERE fiscal_year = ?", (fy,)).fetchone()
    start = date(fy, 4, 1)
    era = era_of(start)
    return config.letterhead.document_number.format(year=fy - era.first.year + 1, seq=seq)
