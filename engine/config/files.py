"""The conference configuration: agencies, conference settings, lead-agency rules and mail.

Four files (and an optional fifth) in the configuration folder (configs/ by default), each checked like the rules:
every problem names file, line and field, with a suggestion, and nothing runs until all are fixed.

- agencies.yaml    the agency registry (the only source of e-mail recipients)
- conference.yaml  local conference names, meeting slots, lead times, closed days, routing
- lead_rules.yaml  ordered rules choosing the lead agency (主担当機関) per flag
- mail.yaml        transport: file (outbox folder) or smtp
- lifecycle.yaml   after the conference: hand-shake, reminders, evaluation, post-closure watch
                   (optional: the defaults below apply when it is absent)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from engine.rules.loader import ID_PATTERN, RuleProblem, RulesInvalid, did_you_mean
from engine.rules.model import RuleSet
from engine.support.vocabulary import CODES, SILOS
from engine.support.yamlfile import YamlFile, read_yaml, validate

SEVERITY_ORDER = ("low", "medium", "high", "urgent")
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
ALL_AREAS = "全域"
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
ConferenceType = Literal["support", "multi"]  # 支援会議 | 重層的支援会議


def _email(v: str) -> str:
    if not EMAIL.fullmatch(v):
        raise ValueError(f"'{v}' is not an e-mail address like soudan@city.example.lg.jp")
    return v


def _hhmm(v):
    if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 14:00 as the sexagesimal number 840
        if not 0 <= v < 24 * 60:
            raise ValueError(f'{v // 60}:{v % 60:02d} is not a time of day; write HH:MM in quotes, e.g. "14:00"')
        return dt.time(v // 60, v % 60)
    return v


def _one_line(v: str) -> str:
    # control characters, and the Unicode line breaks (U+2028, U+2029, U+0085) that e-mail
    # headers also refuse
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in v) or len(v.splitlines()) > 1:
        raise ValueError(
            "must be one line without control characters (it goes into e-mail subjects and calendar invitations); remove the line break"
        )
    return v


OneLine = Annotated[str, AfterValidator(_one_line)]  # names and places printed in e-mail headers and .ics


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agency(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: OneLine = Field(min_length=1)
    kind: str = Field(min_length=1)  # 地域包括支援センター, こども家庭センター, …
    silo: str
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

    code: str
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
    min_severity: Literal["low", "medium", "high", "urgent"] = "medium"
    cases_per_meeting: int = Field(default=8, ge=1, le=200)
    lead_business_days: int = Field(default=5, ge=0, le=60)  # normal cases: at least this far ahead
    urgent_business_days: int = Field(default=2, ge=1, le=10)  # urgent cases: within this
    slots: dict[ConferenceType, tuple[Slot, ...]]
    extra_meeting: ExtraMeeting = ExtraMeeting()
    closed_days: tuple[ClosedDay, ...] = ("12-29..01-03",)  # MM-DD, MM-DD..MM-DD, or YYYY-MM-DD
    routing: tuple[Routing, ...] = ()
    discussion_points: tuple[str, ...] = ("主担当機関の決定", "役割分担", "本人同意の取得方針")
    discussion_by_flag: dict[str, tuple[str, ...]] = {}
    locked_flags: tuple[str, ...] = ("dv",)  # never detailed in e-mail: "1件（詳細は会議にて）"
    locked_codes: tuple[str, ...] = ("dv_support_measure",)  # a current record locks every case of the household

    @field_validator("names")
    @classmethod
    def _both_names(cls, v: dict) -> dict:
        return {**CONFERENCE_NAMES, **v}  # a local name for one type only: the other keeps the law's name


def parse_closed_day(item: str):
    """'12-29..01-03' -> ((12,29),(1,3)); '05-01' -> ((5,1),(5,1)); '2027-01-04' -> date."""
    text = str(item).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        first, _, last = text.partition("..")
        ends = []
        for part in (first, last or first):
            m, d = (int(x) for x in part.strip().split("-"))
            date(2024, m, d)  # a leap year accepts every real month-day
            ends.append((m, d))
        return tuple(ends)
    except ValueError:
        raise ValueError(f"closed day '{item}' must be MM-DD, MM-DD..MM-DD (e.g. 12-29..01-03) or YYYY-MM-DD") from None


class LeadTarget(Strict):
    kind: str | None = None
    silo: str | None = None
    agency: str | None = None

    @model_validator(mode="after")
    def _some(self):
        if not (self.kind or self.silo or self.agency):
            raise ValueError("name the lead by kind, silo and/or agency")
        return self


class LeadRule(Strict):
    id: str = Field(pattern=ID_PATTERN)
    flags: tuple[str, ...] | Literal["any"]
    lead: LeadTarget
    reason: str = Field(min_length=1)  # Japanese, stored with the proposal


class Smtp(Strict):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None  # name of the environment variable holding the user name
    password_env: str | None = None
    timeout: float = Field(default=30, gt=0, le=600)


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


class Config(BaseModel):
    agencies: dict[str, Agency]
    conference: Conference
    lead_rules: tuple[LeadRule, ...]
    mail: Mail
    lifecycle: Lifecycle = Lifecycle()
    templates_dir: Path | None = None
    hash: str

    def name_of(self, kind: ConferenceType) -> str:
        return self.conference.names[kind]


class _Agencies(Strict):
    agencies: tuple[Agency, ...] = Field(min_length=1)


class _LeadRules(Strict):
    lead_rules: tuple[LeadRule, ...] = Field(min_length=1)


class ConfigInvalid(RulesInvalid):
    pass


def default_config_dir() -> Path:
    here = Path("configs")
    return here if (here / "agencies.yaml").is_file() else Path(__file__).resolve().parents[2] / "configs"


def load_config(config_dir: Path, rules: RuleSet) -> Config:
    """Read and cross-check the files (lifecycle.yaml if present); raise ConfigInvalid listing every problem."""
    config_dir = Path(config_dir)
    problems: list[RuleProblem] = []
    docs = {
        name: read_yaml(config_dir / f"{name}.yaml", problems)
        for name in ("agencies", "conference", "lead_rules", "mail")
    }
    agencies_doc, conference_doc, lead_doc, mail_doc = docs.values()
    agencies = validate(agencies_doc, _Agencies, problems) if agencies_doc else None
    conference = validate(conference_doc, Conference, problems) if conference_doc else None
    lead = validate(lead_doc, _LeadRules, problems) if lead_doc else None
    mail = validate(mail_doc, Mail, problems) if mail_doc else None
    lifecycle_doc = (
        read_yaml(config_dir / "lifecycle.yaml", problems) if (config_dir / "lifecycle.yaml").exists() else None
    )
    lifecycle = validate(lifecycle_doc, Lifecycle, problems) if lifecycle_doc else Lifecycle()
    if lifecycle_doc:
        docs["lifecycle"] = lifecycle_doc
    registry: dict[str, Agency] = {}
    if agencies:
        for i, a in enumerate(agencies.agencies):
            if a.id in registry:
                problems.append(
                    agencies_doc.problem(
                        ("agencies", i, "id"),
                        f"duplicate agency id '{a.id}'",
                        entry_id=a.id,
                        suggestion="give each agency its own id",
                    )
                )
            registry[a.id] = a
    # cross-checks run even when agencies.yaml has problems, so that every problem shows at once;
    # the checks that need the registry are skipped while it is broken
    if conference:
        _check_conference(conference_doc, conference, registry, rules, problems, registry_ok=bool(agencies))
    if lead:
        _check_lead_rules(lead_doc, lead.lead_rules, registry, rules, problems, registry_ok=bool(agencies))
    if problems:
        raise ConfigInvalid(problems)
    templates = config_dir / "templates"
    canonical = json.dumps([d.data for d in docs.values()], sort_keys=True, ensure_ascii=False, default=str)
    return Config(
        agencies=registry,
        conference=conference,
        lead_rules=lead.lead_rules,
        mail=mail,
        lifecycle=lifecycle,
        templates_dir=templates if templates.is_dir() else None,
        hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
    )


def _check_conference(
    doc: YamlFile,
    conf: Conference,
    registry: dict[str, Agency],
    rules: RuleSet,
    problems: list,
    registry_ok: bool = True,
) -> None:
    for kind in ("support", "multi"):
        slots = conf.slots.get(kind) or ()
        if not slots:
            problems.append(
                doc.problem(
                    ("slots", kind),
                    f"slots.{kind}: list at least one meeting slot for the {conf.names.get(kind, kind)}",
                    suggestion='e.g. `- {weekday: 木, time: "14:00", place: 会議室}`',
                )
            )
        elif all(s.weekday_number >= 5 for s in slots):
            problems.append(
                doc.problem(
                    ("slots", kind),
                    f"slots.{kind}: every slot falls on a weekend, which is never a business day",
                    suggestion="use 月 火 水 木 or 金",
                )
            )
    kinds = {a.kind for a in registry.values()}
    for i, r in enumerate(conf.routing):
        if registry_ok and r.owner_kind not in kinds:
            problems.append(
                doc.problem(
                    ("routing", i, "owner_kind"),
                    f"no agency of kind '{r.owner_kind}' in agencies.yaml",
                    suggestion=did_you_mean(r.owner_kind, kinds),
                )
            )
    for flag_id in conf.discussion_by_flag:
        if flag_id not in rules.flags:
            problems.append(
                doc.problem(
                    ("discussion_by_flag", flag_id),
                    f"unknown flag '{flag_id}'",
                    suggestion=did_you_mean(flag_id, rules.flags) or f"known flags: {', '.join(rules.flags)}",
                )
            )
    for i, flag_id in enumerate(conf.locked_flags):
        if flag_id not in rules.flags:
            problems.append(
                doc.problem(
                    ("locked_flags", i),
                    f"unknown flag '{flag_id}'",
                    suggestion=did_you_mean(flag_id, rules.flags) or f"known flags: {', '.join(rules.flags)}",
                )
            )
    for i, code in enumerate(conf.locked_codes):
        if code not in CODES:
            problems.append(
                doc.problem(("locked_codes", i), f"unknown record code '{code}'", suggestion=did_you_mean(code, CODES))
            )
    members = [a for a in registry.values() if a.member]
    if registry_ok and not members:
        problems.append(
            RuleProblem(
                file=str(Path(doc.file).with_name("agencies.yaml")),
                line=1,
                field="member",
                message="no agency is a registered member of the 支援会議: no 支援会議 could be held",
                suggestion="set `member: true` for the agencies registered under 社会福祉法106条の6",
            )
        )


def _check_lead_rules(
    doc: YamlFile,
    rules_: tuple[LeadRule, ...],
    registry: dict[str, Agency],
    rules: RuleSet,
    problems: list,
    registry_ok: bool = True,
) -> None:
    kinds = {a.kind for a in registry.values()}
    covered: set[str] = set()
    member_areas: dict[str, set[str]] = {}  # flag -> areas served by a member some rule names for it
    non_member_leads: list = []
    always: set[str] = set()  # flags of earlier rules whose lead is a town-wide member: those never fall through
    seen_ids: dict[str, int] = {}
    for i, rule in enumerate(rules_):
        where = ("lead_rules", i)
        if rule.id in seen_ids:
            problems.append(
                doc.problem(
                    where + ("id",),
                    f"duplicate lead rule id '{rule.id}' (also rule {seen_ids[rule.id] + 1})",
                    entry_id=rule.id,
                )
            )
        seen_ids[rule.id] = i
        flags = set(rules.flags) if rule.flags == "any" else set(rule.flags)
        if rule.flags != "any":
            for j, f in enumerate(rule.flags):
                if f not in rules.flags:
                    problems.append(
                        doc.problem(
                            where + ("flags", j),
                            f"unknown flag '{f}'",
                            entry_id=rule.id,
                            suggestion=did_you_mean(f, rules.flags) or f"known flags: {', '.join(rules.flags)}",
                        )
                    )
        if rule.flags != "any" and flags and flags <= always:
            problems.append(
                doc.problem(
                    where,
                    "this rule is never used: earlier rules already choose a lead for all its flags",
                    entry_id=rule.id,
                    suggestion="move it above the rule that shadows it, or delete it",
                )
            )
        if rule.flags == ():
            problems.append(
                doc.problem(
                    where + ("flags",),
                    "flags is empty: this rule is never used",
                    entry_id=rule.id,
                    suggestion="list the flags it decides, or write `flags: any`",
                )
            )
        covered |= flags
        t = rule.lead
        members = [a for a in registry.values() if lead_matches(t, a) and a.member]
        for f in flags:
            member_areas.setdefault(f, set()).update(area for a in members for area in a.areas)
        if not members:
            non_member_leads.append((i, rule, flags))
        if any(lead_matches(t, a) and a.member and ALL_AREAS in a.areas for a in registry.values()):
            always |= flags
        if not registry_ok:
            continue
        if t.agency and t.agency not in registry:
            problems.append(
                doc.problem(
                    where + ("lead", "agency"),
                    f"unknown agency '{t.agency}'",
                    entry_id=rule.id,
                    suggestion=did_you_mean(t.agency, registry),
                )
            )
        if t.kind and t.kind not in kinds:
            problems.append(
                doc.problem(
                    where + ("lead", "kind"),
                    f"no agency of kind '{t.kind}' in agencies.yaml",
                    entry_id=rule.id,
                    suggestion=did_you_mean(t.kind, kinds) or f"kinds: {', '.join(sorted(kinds))}",
                )
            )
        if t.silo and t.silo not in SILOS:
            problems.append(
                doc.problem(
                    where + ("lead", "silo"),
                    f"unknown silo '{t.silo}'",
                    entry_id=rule.id,
                    suggestion=did_you_mean(t.silo, SILOS),
                )
            )
        elif (
            not any(lead_matches(t, a) for a in registry.values())
            and not (t.agency and t.agency not in registry)
            and not (t.kind and t.kind not in kinds)
        ):
            problems.append(
                doc.problem(where + ("lead",), "no agency matches kind, silo and agency together", entry_id=rule.id)
            )
    missing = [f for f in rules.flags if f not in covered]
    if missing:
        problems.append(
            doc.problem(
                ("lead_rules",),
                f"no lead rule for flag(s) {', '.join(missing)}: their cases would have no lead",
                suggestion="add a last rule with `flags: any` as a fallback",
            )
        )
    if not (registry_ok and any(a.member for a in registry.values())):
        return  # no member at all: reported once, in agencies.yaml
    # a 支援会議 case (no consent yet) can only be led by a registered member serving its area
    members_missing = {f for f in rules.flags if f in covered and not member_areas.get(f)}
    for i, rule, flags in non_member_leads:
        if flags & members_missing:
            problems.append(
                doc.problem(
                    ("lead_rules", i, "lead"),
                    f"only agencies that are not registered members of the 支援会議 match this lead, and no rule names a member for flag(s) {', '.join(sorted(flags & members_missing))}: a 支援会議 case (no consent yet) would have no lead",
                    entry_id=rule.id,
                    suggestion="add a rule naming a member (member: true in agencies.yaml), e.g. a last rule `flags: any` to the 自立相談支援機関",
                )
            )
    town = {area for a in registry.values() for area in a.areas if area != ALL_AREAS}
    gaps: dict[tuple[str, ...], list[str]] = {}
    for f in rules.flags:
        served = member_areas.get(f)
        if served and ALL_AREAS not in served and town - served:
            gaps.setdefault(tuple(sorted(town - served)), []).append(f)
    for areas, flags in gaps.items():
        problems.append(
            doc.problem(
                ("lead_rules",),
                f"flag(s) {', '.join(flags)}: no registered member named by the lead rules serves {', '.join(areas)}, so a 支援会議 case there would have no lead",
                suggestion="name a member serving that area (or 全域), e.g. a last rule `flags: any` to the 自立相談支援機関",
            )
        )


def lead_matches(t: LeadTarget, a: Agency) -> bool:
    return (
        (t.kind is None or a.kind == t.kind)
        and (t.silo is None or a.silo == t.silo)
        and (t.agency is None or a.id == t.agency)
    )
