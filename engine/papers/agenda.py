"""Agendas: one 招集通知 per (meeting, agency), minimised to that agency's silo, plus the coordinator's
full local version. Rendered with Jinja2 (engine/templates/, overridable in configs/templates/).

An agency's agenda carries only: the letterhead (engine/papers/letterhead.py: document number,
issuer, per type its sender, notice and paper handling, contact, end time), the agencies asked to
attend (by name), and per case the pseudonymous case id, the flag titles, the facts of the agency's
own silo in words (members as "世帯員1（80代・世帯主）"), the proposed lead and reason, for a case
decided before its last decision and roles (engine/papers/casebrief.py), the discussion points and
what to prepare. A case with a locked flag (DV) is only counted: "N件（詳細は会議にて）". Names,
kana, addresses and birth dates are never read for it: they exist only in the coordinator's version.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import date

import jinja2
from pydantic import BaseModel

from engine.config import ConferenceType, Config
from engine.papers import ics, letterhead
from engine.papers.casebrief import Review, preparation, reviews, without_dv_centre
from engine.papers.environment import HTML_INCLUDE, TEMPLATES, environment, is_html  # noqa: F401 (their old home)
from engine.papers.participation import Candidate, candidates
from engine.participation.place_day import PlaceDays
from engine.policy.consent import consenting
from engine.policy.dv import DV_CENTRE_SILO, case_locked, locked_among
from engine.policy.members import may_share_with
from engine.rules.conditions import RELATIONSHIPS
from engine.rules.facts import Household, age_on, current, load_households
from engine.rules.model import RuleSet
from engine.support import clock
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import ARREARS_LABELS, CODES, record_silos

NOTICE_106 = letterhead.NOTICES["support"]
ISO_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")
RULE_ID = re.compile(r"（規則 [A-Za-z0-9_\-]+）")  # in a reason shared before rule ids were left out of it
ROLE = {"lead": "主担当機関（案）", "participant": "参加機関", "owner": "通知先"}
CONSENT_POINT = "本人同意の取得方針"


class Fact(BaseModel):
    member: str  # 世帯員1（80代・世帯主）
    title: str
    value: str
    since: str  # month only (2023年8月): the least an agency needs, and never a full date
    text: str = (
        ""  # the record as a sentence part: 「住民税 11か月の滞納」「生活保護受給」「要介護・要支援認定 要介護2」
    )


class CaseItem(BaseModel):
    case_id: str
    role: str
    lead: bool = False  # the agency is the proposed lead
    urgent: bool
    flag_titles: list[str]
    facts: list[Fact]
    lead_name: str
    lead_reason: str
    discussion: list[str]
    prepare: list[str] = []  # what the agency should bring for this case
    review: Review | None = None  # the last decision and the roles' progress (a case back for review)
    participation: list[Candidate] = []  # 参加支援の候補: the proposed lead's agenda only


class Agenda(BaseModel):
    meeting_id: str
    conference_type: ConferenceType
    conference_name: str
    agency_id: str
    agency_name: str
    silo: str
    held_on: str
    held_on_wareki: str
    start_time: str
    start_ics: str
    end_time: str
    end_ics: str
    place: str
    notice: str
    handling: list[str]
    issuer: str
    contact: dict
    cases: list[CaseItem]
    locked_count: int
    invited: list[str] = []  # the names of the agencies asked to attend (those with a case detailed by e-mail)
    sender: str
    sender_name: str
    attendees: list[str] = []  # the agency's address for the invitation (its registry entry, not content)
    version: int = 0
    stamp: str = ""
    # set when a version is made (engine.papers.write), outside the content hash:
    document_number: str = ""
    issued_on: str = ""
    issued_on_wareki: str = ""
    reply_by_wareki: str = ""
    changes: list[str] = []  # since the version the agency last received
    previous_version: int = 0

    def content_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json(exclude=UNHASHED).encode()).hexdigest()[:16]


UNHASHED = {
    "participation",  # 参加支援の候補 move with every capacity change: they ride along, never make a version
    "version",
    "stamp",
    "attendees",
    "document_number",
    "issued_on",
    "issued_on_wareki",
    "reply_by_wareki",
    "changes",
    "previous_version",
}


def age_band(age: int) -> str:
    return "10歳未満" if age < 10 else f"{age // 10 * 10}代"


def relationship_word(relationship: str | None) -> str:
    """The 続柄 as agencies read it: a word of RELATIONSHIPS, else その他 (the extract's cell may hold
    more than a 続柄, such as a name: it is never printed as it is)."""
    if not relationship:
        return "続柄不明"
    return relationship if relationship in RELATIONSHIPS else "その他"


def member_labels(hh: Household, on_iso: str) -> dict[str, str]:
    return {
        p.person_id: f"世帯員{i}（{age_band(age_on(p.birth, on_iso))}・{relationship_word(p.relationship)}）"
        for i, p in enumerate(sorted(hh.persons, key=lambda p: p.person_id), start=1)
    }


def current_records(hh: Household, on_iso: str):
    """(person, record) pairs valid on the date, in person and code order."""
    for p in sorted(hh.persons, key=lambda p: p.person_id):
        for code in sorted(p.records):
            for r in p.records[code]:
                if current(r, on_iso):
                    yield p, r


def silo_facts(
    hh: Household, silo: str, on_iso: str, only: set[str] | None = None, *, age_iso: str | None = None
) -> list[Fact]:
    """Only the records that belong to `silo` (an agency sees what its own silo holds), and with
    `only`, only those of these persons (in a 重層的支援会議: the persons who consented).
    Ages are taken on `age_iso` (the meeting day), so a birthday does not make a new version."""
    labels = member_labels(hh, age_iso or on_iso)
    return [
        Fact(
            member=labels[p.person_id],
            title=CODES[r.code].title,
            value=_value(r.code, r.value),
            since=f"{int(r.start[:4])}年{int(r.start[5:7])}月",
            text=fact_text(r.code, r.value),
        )
        for p, r in current_records(hh, on_iso)
        if silo in record_silos(r.code, r.value) and (only is None or p.person_id in only)
    ]


def _value(code: str, value: str) -> str:
    spec = CODES[code]
    if spec.value_type == "flag":
        return ""
    if spec.value_type == "arrears":
        kind, _, months = value.partition(":")
        return f"{ARREARS_LABELS.get(kind, '料金等')} {months}{spec.unit}"
    return f"{value}{spec.unit}" if spec.unit else value


def fact_text(code: str, value: str) -> str:
    """A record as a person writes it: 「住民税 11か月の滞納」「生活保護受給」「欠席日数 45日」."""
    spec = CODES[code]
    if spec.value_type == "flag":
        return spec.title
    if spec.value_type == "arrears":
        return f"{_value(code, value)}の{spec.title}"
    return f"{spec.title} {_value(code, value)}"


class MeetingPapers(BaseModel):
    header: dict
    agendas: list[Agenda]
    coordinator: dict  # full local version (names included): never e-mailed


def discussion(config: Config, rules_ids: list[str], kind: ConferenceType) -> list[str]:
    points = [p for p in config.conference.discussion_points if not (kind == "multi" and p == CONSENT_POINT)]
    if kind == "multi":
        points.append("支援プラン（案）の確認")
    for f in rules_ids:
        for p in config.conference.discussion_by_flag.get(f, ()):
            if p not in points:
                points.append(p)
    return points


def meeting_papers(
    conn: sqlite3.Connection,
    rules: RuleSet,
    config: Config,
    meeting_id: str,
    on: date,
    households: dict[str, Household] | None = None,
    *,
    participation: bool = True,
    days: PlaceDays | None = None,
) -> MeetingPapers:
    """Build every agency's agenda and the coordinator's version for one meeting. Without
    `participation` the 参加支援の候補 are left out: they are outside every version hash, so the
    nightly write first decides which versions are new without them (engine/papers/write.py).
    `days`: the places' state, shared by every meeting of one write (engine/participation/place_day.py)."""
    kind, held_on, start, place = conn.execute(
        "SELECT conference_type, held_on, start_time, place FROM meetings WHERE meeting_id = ?", (meeting_id,)
    ).fetchone()
    cases = conn.execute(
        "SELECT c.case_id, c.household_id, h.area, c.severity, c.lead_agency_id, c.lead_reason, c.conference_basis, c.lead_reason_shared FROM cases c "
        "JOIN households h ON h.household_id = c.household_id WHERE c.meeting_id = ? AND c.is_open = 1 AND c.status != 'routed' ORDER BY c.case_id",
        (meeting_id,),
    ).fetchall()
    if households is None:
        households = {hh.household_id: hh for hh in load_households(conn, [c[1] for c in cases], on)}
    on_iso = on.isoformat()
    name = config.name_of(kind)
    day = date.fromisoformat(held_on)
    end = letterhead.end_time(config, start)
    header = dict(
        meeting_id=meeting_id,
        conference_type=kind,
        conference_name=name,
        held_on=held_on,
        held_on_wareki=wareki_with_weekday(day),
        start_time=start,
        start_ics=f"{held_on.replace('-', '')}T{start.replace(':', '')}00",
        end_time=end,
        end_ics=f"{held_on.replace('-', '')}T{end.replace(':', '')}00",
        place=place,
        notice=letterhead.notice(config, kind),
        handling=letterhead.handling(config, kind),
        issuer=letterhead.issuer(config, kind),
        contact=letterhead.contact(config, kind),
        sender=config.mail.sender,
        sender_name=letterhead.secretariat(config, kind),
    )
    per_agency: dict[str, list[CaseItem]] = {}
    locked: dict[str, int] = {}
    locked_households = locked_among(conn, config, {c[1] for c in cases}, on_iso)  # the DV lock, for all at once
    # the proposals are made for the day of the meeting: its households as of that day, loaded once
    as_of_day = (
        {hh.household_id: hh for hh in load_households(conn, [c[1] for c in cases], day)}
        if participation and config.participation.present and cases
        else {}
    )
    coordinator_cases = []
    for case_id, hid, area, severity, lead_id, lead_reason, basis, shared_reason in cases:
        flag_rows = conn.execute(
            "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ? ORDER BY f.status = 'open' DESC, f.rule_id",
            (case_id,),
        ).fetchall()
        rule_ids = sorted({r[0] for r in flag_rows})
        hh = households[hid]
        is_locked = case_locked(conn, config, hid, rule_ids, on_iso, locked_households)
        only = consenting(hh, on_iso) if kind == "multi" else None
        titles = [rules.flags[r].title for r in rule_ids if r in rules.flags]
        lead_name = config.agencies[lead_id].name if lead_id in config.agencies else "未定"
        points = discussion(config, rule_ids, kind)
        labels = member_labels(hh, held_on)
        proposals = (
            []
            if is_locked or not participation
            else candidates(conn, rules, config, case_id, day, labels, days=days, household=as_of_day.get(hid))
        )
        shared = {labels[p] for p in only if p in labels} if only is not None else None
        roles = conn.execute(
            "SELECT agency_id, role FROM case_agencies WHERE case_id = ? ORDER BY role != 'lead', agency_id", (case_id,)
        ).fetchall()
        previous = reviews(conn, config, case_id, on_iso, kind, {a for a, _ in roles}) if not is_locked else {}
        for agency_id, role in roles:
            agency = config.agencies.get(agency_id)
            if agency is None or not may_share_with(agency, kind):
                continue  # removed from the registry, or not bound by 106条の6: never receives 支援会議 papers
            if is_locked:
                locked[agency_id] = locked.get(agency_id, 0) + 1
                per_agency.setdefault(agency_id, [])
                continue
            facts = silo_facts(hh, agency.silo, on_iso, only, age_iso=held_on)
            lead_shown, review_shown = without_dv_centre(config, agency.silo, lead_name, previous.get(agency.member))
            per_agency.setdefault(agency_id, []).append(
                CaseItem(
                    case_id=case_id,
                    role=ROLE.get(role, role),
                    lead=role == "lead",
                    urgent=severity == "urgent",
                    flag_titles=titles,
                    facts=facts,
                    lead_name=lead_shown,
                    lead_reason=for_agencies(shared_reason or ""),
                    discussion=points,
                    prepare=preparation(role, [f.title for f in facts], points, lead_shown, review_shown),
                    review=review_shown,
                    participation=[c for c in proposals if shared is None or c.member in shared]
                    if role == "lead"
                    else [],
                )
            )
        coordinator_cases.append(
            dict(
                case_id=case_id,
                household_id=hid,
                area=area,
                locked=is_locked,
                flag_titles=titles,
                basis=basis,
                lead_name=lead_name,
                lead_reason=lead_reason or "",
                discussion=points,
                agencies=[config.agencies[a].name + f"（{ROLE.get(r, r)}）" for a, r in roles if a in config.agencies],
                members=_coordinator_members(conn, hh, on_iso),
                participation=[c.model_dump() for c in proposals],
            )
        )
    detailed = {a for a, items in per_agency.items() if items}
    agendas = [
        Agenda(
            **header,
            agency_id=a,
            agency_name=config.agencies[a].name,
            silo=config.agencies[a].silo,
            attendees=[config.agencies[a].email],
            cases=items,
            locked_count=locked.get(a, 0),
            invited=invited(config, detailed, a),
        )
        for a, items in sorted(per_agency.items())
    ]
    return MeetingPapers(header=header, agendas=agendas, coordinator=dict(header, cases=coordinator_cases))


def for_agencies(reason: str) -> str:
    """A shared lead reason as agencies read it: no rule id, dates as 和暦（曜日）."""
    return ISO_DATE.sub(_wareki_or_as_is, RULE_ID.sub("", reason))


def _wareki_or_as_is(m: re.Match) -> str:
    try:
        return wareki_with_weekday(m[0])
    except ValueError:
        return m[0]


def invited(config: Config, detailed: set[str], recipient: str) -> list[str]:
    """The names of the agencies asked to attend, in the registry's order, as `recipient` reads
    them. Only agencies with a case detailed by e-mail are listed (one asked only for cases not
    detailed, such as the DV centre for a DV case, would tell the others such a case is on the
    agenda), and the DV centre (policy/dv.py) is named to itself only: its name says DV."""
    return [
        a.name
        for a_id, a in config.agencies.items()
        if a_id == recipient or (a_id in detailed and a.silo != DV_CENTRE_SILO)
    ]


def withdrawn_agenda(papers: MeetingPapers, config: Config, agency_id: str) -> Agenda:
    """For an agency that had an agenda for this meeting but no longer has a case in it."""
    a = config.agencies[agency_id]
    return Agenda(
        **papers.header,
        agency_id=agency_id,
        agency_name=a.name,
        silo=a.silo,
        attendees=[a.email],
        cases=[],
        locked_count=0,
    )


def _coordinator_members(conn: sqlite3.Connection, hh: Household, on_iso: str) -> list[dict]:
    """Members with names and every current record — for the local coordinator version only."""
    labels = member_labels(hh, on_iso)
    names = dict(
        conn.execute("SELECT person_id, name FROM persons WHERE household_id = ?", (hh.household_id,)).fetchall()
    )
    records: dict[str, list[str]] = {}
    for p, r in current_records(hh, on_iso):
        records.setdefault(p.person_id, []).append(f"{fact_text(r.code, r.value)}（{r.start}〜）")
    return [
        dict(
            person_id=p.person_id,
            name=names.get(p.person_id) or "",
            label=labels[p.person_id],
            records=records.get(p.person_id, []),
        )
        for p in sorted(hh.persons, key=lambda p: p.person_id)
    ]


def render_agenda(env: jinja2.Environment, agenda: Agenda) -> dict[str, str]:
    a = agenda.model_copy(update={"stamp": clock.now().strftime("%Y%m%dT%H%M%SZ")})
    return {
        "text": env.get_template("agenda.txt.j2").render(a=a),
        "html": env.get_template("agenda.html.j2").render(a=a),
        "ics": ics.fold(env.get_template("agenda.ics.j2").render(a=ics.view(a))),
        "ics_method": "REQUEST" if a.cases or a.locked_count else "CANCEL",  # nothing left for this agency
    }


def render_coordinator(env: jinja2.Environment, papers: MeetingPapers) -> str:
    return env.get_template("coordinator.html.j2").render(m=papers.coordinator)
