"""The settings of the configuration files as pydantic models: agencies, the conference (names,
meeting slots, lead times, closed days, routing), lead-agency rules, mail and the lifecycle.

Each model checks its own fields; engine.config.load reads the files into them and checks them
against each other and the rules.
"""

from __future__ import annotations

import datetime as dt
import ssl
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from engine.participation.directory import Directory
from engine.rules.loader import ID_PATTERN, SEVERITIES
from engine.support.business_days import parse_closed_day
from engine.support.errors import did_you_mean
from engine.support.vocabulary import CODES, SILOS, RecordCode, SeverityCode
from engine.triage.model import Triage

SEVERITY_ORDER = SEVERITIES  # low → urgent, as the rule files write them
WEEKDAYS = {
    "月": 0,
    "火": 1,
    "水": 2,
    "木": 3,
    "金": 4,
    "土": 5,
    "日": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
from engine.config.fields import (  # noqa: E402  (the building blocks, shared with letterhead.py)
    ALL_AREAS,
    ConferenceType,
    LeadTarget,
    OneLine,
    Strict,
    _email,
    _hhmm,
)


class Agency(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: OneLine = Field(min_length=1)
    kind: str = Field(min_length=1)  # 地域包括支援センター, こども家庭センター, …
    silo: str = Field(json_schema_extra={"enum": list(SILOS)})  # the schema offers the silos
    areas: tuple[str, ...] = Field(min_length=1)  # areas served, or 全域
    email: str
    member: bool  # registered member of the 支援会議 (bound by 社会福祉法106条の6)
    capacity: int = Field(default=30, ge=1, le=10_000)  # cases it can lead at once

    @field_validator("silo")
    @classmethod
    def _silo(cls, v: str) -> str:
        if v not in SILOS:
            raise ValueError(f"unknown silo '{v}' (one of {', '.join(SILOS)})")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return _email(v)

    def serves(self, area: str) -> bool:
        return ALL_AREAS in self.areas or area in self.areas


class Slot(Strict):
    weekday: str
    time: dt.time
    place: OneLine = Field(min_length=1)

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        if v.lower() not in WEEKDAYS:
            raise ValueError(f"unknown weekday '{v}' (use 月 火 水 木 金 or mon … fri)")
        if WEEKDAYS[v.lower()] >= 5:
            raise ValueError(f"'{v}' is a weekend day: meetings are booked on business days only (月 火 水 木 金)")
        return v.lower()

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v):
        return _hhmm(v)

    @property
    def weekday_number(self) -> int:
        return WEEKDAYS[self.weekday]


class ExtraMeeting(Strict):
    """Where and when a meeting is added for an urgent case when no slot is near enough."""

    time: dt.time = dt.time(16, 0)
    place: OneLine = "市役所 会議室（臨時）"

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v):
        return _hhmm(v)


def _closed_day(v):
    if isinstance(v, date):  # an unquoted 2027-01-04 is read by YAML as a date: accept it
        v = v.isoformat()
    if not isinstance(v, str):
        raise ValueError(f'closed day {v!r} must be text such as "12-29..01-03"')
    parse_closed_day(v)
    return v


ClosedDay = Annotated[str, BeforeValidator(_closed_day)]


class Routing(Strict):
    """A silo conference that already handles a household: no parallel case, notify its owner."""

    code: RecordCode
    conference: str = Field(min_length=1)  # e.g. 要保護児童対策地域協議会
    owner_kind: str = Field(min_length=1)  # agency kind that owns that conference

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if v not in CODES:
            raise ValueError(
                f"unknown record code '{v}'" + (f"; {did_you_mean(v, CODES)}" if did_you_mean(v, CODES) else "")
            )
        return v


CONFERENCE_NAMES = {"support": "支援会議", "multi": "重層的支援会議"}


class Conference(Strict):
    names: dict[ConferenceType, OneLine] = CONFERENCE_NAMES
    min_severity: SeverityCode = "medium"
    cases_per_meeting: int = Field(default=8, ge=1, le=200)
    lead_business_days: int = Field(default=5, ge=0, le=60)  # normal cases: at least this far ahead
    urgent_business_days: int = Field(default=2, ge=1, le=10)  # urgent cases: within this
    # a first conference further than this from the case's opening is a gap of its own (engine audit)
    max_business_days_to_conference: int = Field(default=20, ge=1, le=250)
    slots: dict[ConferenceType, tuple[Slot, ...]]
    extra_meeting: ExtraMeeting = ExtraMeeting()
    closed_days: tuple[ClosedDay, ...] = ("12-29..01-03",)  # MM-DD, MM-DD..MM-DD, or YYYY-MM-DD
    routing: tuple[Routing, ...] = ()
    discussion_points: tuple[str, ...] = ("主担当機関の決定", "役割分担", "本人同意の取得方針")
    discussion_by_flag: dict[str, tuple[str, ...]] = {}
    locked_flags: tuple[str, ...] = ("dv",)  # never detailed in e-mail: "1件（詳細は会議にて）"
    locked_codes: tuple[RecordCode, ...] = ("dv_support_measure",)  # a current record locks every case of the household

    @field_validator("names")
    @classmethod
    def _both_names(cls, v: dict) -> dict:
        return {**CONFERENCE_NAMES, **v}  # a local name for one type only: the other keeps the law's name


class LeadRule(Strict):
    id: str = Field(pattern=ID_PATTERN)
    flags: tuple[str, ...] | Literal["any"]
    lead: LeadTarget
    reason: str = Field(min_length=1)  # Japanese, stored with the proposal


CA_FILE_MAX_BYTES = 10_000_000  # a CA bundle is well under 1 MB; anything larger is not one


class Smtp(Strict):
    """The mail server. TLS is always verified: the certificate chain (the system's CAs, plus
    ca_file) and the host name; a login is never sent over an unencrypted connection."""

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # upgrade the connection with STARTTLS (port 587); refused if the server does not offer it
    implicit_tls: bool = False  # SMTPS: TLS from the first byte (port 465); starttls is then not used
    # PEM file of a CA to trust besides the system's (a municipal CA); relative to the configuration folder
    ca_file: Path | None = None
    username_env: str | None = None  # name of the environment variable holding the user name
    password_env: str | None = None
    timeout: float = Field(default=30, gt=0, le=600)

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self.starttls

    @property
    def login_without_tls(self) -> bool:
        """Login variables are named but TLS is off: refused by `config check` and at send time."""
        return bool(self.username_env or self.password_env) and not self.encrypted

    def tls_context(self) -> ssl.SSLContext:
        """The one TLS context of the engine: certificate and host name verified (the check is never switched off).
        Raises OSError (ssl.SSLError: not a PEM certificate) if ca_file cannot be used."""
        if self.ca_file is not None:
            if not self.ca_file.is_file():
                reason = "not a regular file" if self.ca_file.exists() else "no such file"
                raise FileNotFoundError(2, reason, str(self.ca_file))
            if self.ca_file.stat().st_size > CA_FILE_MAX_BYTES:
                raise ssl.SSLError(f"larger than {CA_FILE_MAX_BYTES // 1_000_000} MB: not a CA certificate file")
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


class Mail(Strict):
    transport: Literal["file", "smtp"] = "file"
    sender: str = "shien-kaigi@city.example.lg.jp"
    smtp: Smtp = Smtp()
    max_attempts: int = Field(default=5, ge=1, le=50)

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        return _email(v)


class Lifecycle(Strict):
    """Deadlines and intervals of the case lifecycle (all business days are counted with the
    municipality's calendar: weekends, national holidays and closed days do not count)."""

    coordinator_email: str = "tajikan-kyodo@city.example.lg.jp"  # 多機関協働事業者: the digest and escalations
    lead_answer_business_days: int = Field(default=5, ge=1, le=60)  # the lead agency's answer to a request
    reminder_business_days: int = Field(default=3, ge=0, le=30)  # remind an agency this long before a due date
    outcome_business_days: int = Field(default=2, ge=0, le=30)  # record a conference's outcome within this
    evaluation_months: int = Field(default=3, ge=1, le=24)  # plan evaluation (モニタリング) interval
    watch_months: tuple[int, ...] = Field(default=(3, 6, 12), min_length=1)  # post-closure checkpoints
    watch_answer_business_days: int = Field(default=5, ge=1, le=60)
    no_contact_days: int = Field(default=90, ge=7, le=730)  # closed case: no contact by the lead this long → reopen
    check_back_months: int = Field(default=3, ge=1, le=24)  # routed case: ask the silo conference's owner
    # an escalation nobody has acted on for longer is a gap of its own (engine audit: escalation_unanswered)
    escalation_business_days: int = Field(default=10, ge=1, le=120)

    @field_validator("coordinator_email")
    @classmethod
    def _coordinator(cls, v: str) -> str:
        return _email(v)

    @field_validator("watch_months")
    @classmethod
    def _increasing(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(m < 1 or m > 60 for m in v) or list(v) != sorted(set(v)):
            raise ValueError("list months after closure in increasing order, each 1-60, e.g. [3, 6, 12]")
        return v


class Web(Strict):
    """`engine web` as the agencies reach it (configs/web.yaml, optional). base_url starts every
    answer link in the e-mails (BASE_URL/a/TOKEN): the address agencies open, i.e. the
    municipality's reverse proxy with TLS, never plain http:// except on this machine."""

    base_url: str = "http://127.0.0.1:8300"
    link_grace_days: int = Field(default=7, ge=0, le=60)  # business days an answer link outlives its answer's due date
    # configuration folders the console's 変更の影響 page compares with the live one (engine/web/console/changes.py):
    # relative to the configuration folder or absolute; the page picks one by position or folder name, never a typed path
    candidate_dirs: tuple[str, ...] = Field(default=(), max_length=20)

    @field_validator("candidate_dirs")
    @classmethod
    def _candidate_dirs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        names: set[str] = set()
        for d in v:
            if not d.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in d):
                raise ValueError(f"'{d}' is not a folder: write one folder per entry, like ../candidate")
            name = Path(d.strip()).name
            if name in ("", ".", ".."):
                raise ValueError(f"'{d}' has no folder name of its own: write the folder itself, like ../candidate")
            if name in names:
                raise ValueError(
                    f"two candidate folders are named '{name}': the console picks a candidate by its folder name, "
                    "so rename one of the folders"
                )
            names.add(name)
        return tuple(d.strip() for d in v)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        from engine.workflows.serve import is_loopback

        try:
            url = urlsplit(v.strip())
            host, _ = url.hostname, url.port  # a port over 65535 or not a number: ValueError
        except ValueError:
            host, url = None, None
        if (
            url is None
            or any(ch.isspace() for ch in v.strip())  # a link with a space breaks in every mail client
            or url.scheme not in ("http", "https")
            or not host
            or url.query
            or url.fragment
            or "@" in url.netloc
        ):
            raise ValueError(f"'{v}' is not a web address like https://soudan.city.example.lg.jp")
        if url.scheme == "http" and not is_loopback(host):
            raise ValueError(
                f"'{v}' is plain http:// to another machine: the answer links (and the agencies' answers) would cross "
                "the network unencrypted; write the https:// address of the municipality's reverse proxy"
            )
        return v.strip().rstrip("/")


from engine.config.letterhead import DOCUMENT_NUMBER_FIELDS, Contact, Letterhead  # noqa: E402,F401


class Config(BaseModel):
    agencies: dict[str, Agency]
    conference: Conference
    lead_rules: tuple[LeadRule, ...]
    mail: Mail
    lifecycle: Lifecycle = Lifecycle()
    web: Web = Web()
    letterhead: Letterhead = Letterhead()
    participation: Directory = Directory()  # 参加支援 (resources.yaml, matching_rules.yaml)
    triage: Triage = Triage()  # pathways of new cases (triage_rules.yaml; none: every case to a conference)
    templates_dir: Path | None = None
    hash: str

    def name_of(self, kind: ConferenceType) -> str:
        return self.conference.names[kind]


def lead_matches(t: LeadTarget, a: Agency) -> bool:
    return (
        (t.kind is None or a.kind == t.kind)
        and (t.silo is None or a.silo == t.silo)
        and (t.agency is None or a.id == t.agency)
    )
