"""How the papers are issued (configs/letterhead.yaml): 発出者, document numbers, the contact block,
paper handling and the meetings' length. engine/papers/letterhead.py uses them."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from engine.config.fields import ConferenceType, OneLine, Strict, _email, _hhmm

DOCUMENT_NUMBER_FIELDS = ("year", "seq")


class Contact(Strict):
    """The contact block of a 招集通知 (問合せ先)."""

    department: OneLine = "福祉部 地域福祉課"
    person: OneLine = "重層的支援体制整備事業 担当"  # 担当者
    phone: OneLine = ""
    email: str | None = None  # default: the engine's sender address (mail.yaml)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return v if v is None else _email(v)


class Letterhead(Strict):
    """How the papers are issued (configs/letterhead.yaml, optional; engine.papers.letterhead uses it):
    発出者, document numbers, contact block, paper handling and the meetings' length."""

    municipality: OneLine = "本市"  # as the notices name it: 「本市の個人情報の取扱いに関する規程」
    issuer: OneLine | None = None  # 発出者, e.g. ○○市福祉部長; default: the conference type's 事務局
    secretariat: dict[ConferenceType, OneLine] = {}  # the sender per type; default 「{会議の名称}事務局」
    document_number: OneLine = "{year}福支第{seq}号"  # {year}: 和暦 year of the 年度, {seq}: per 年度
    contact: Contact = Contact()
    handling: dict[ConferenceType, tuple[OneLine, ...]] = {}  # 資料の取扱い; default per type
    duration_minutes: int = Field(default=90, ge=15, le=480)
    end_time: dt.time | None = None  # a fixed end time for every meeting instead of start + duration
    reply_business_days: int = Field(default=2, ge=0, le=20)  # answer attendance this long before the meeting

    @field_validator("document_number")
    @classmethod
    def _number(cls, v: str) -> str:
        import string

        try:
            fields = [f for _, f, spec, conv in string.Formatter().parse(v) if f is not None]
        except ValueError:
            fields = None
        if fields is None or "seq" not in fields or any(f not in DOCUMENT_NUMBER_FIELDS for f in fields):
            raise ValueError(
                f"'{v}' is not a document number format: write it with {{seq}}, e.g. '{{year}}福支第{{seq}}号'"
            )
        return v

    @field_validator("end_time", mode="before")
    @classmethod
    def _time(cls, v):
        return _hhmm(v)
