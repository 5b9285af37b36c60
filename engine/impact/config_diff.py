"""`engine config diff`: the open and upcoming cases whose lead, participants, conference type or
meeting would change under a candidate configuration, with the reason.

Each side is decided by the conference code itself (engine/conference/) on an in-memory copy of
the database (sqlite3's backup API), thrown away afterwards: the workspace is only read. On each
copy the night is replayed: the households are screened with that side's rules, the open cases
still to be discussed (waiting for a meeting, as the night books them again, or in a meeting to
come) are decided again, and the flags in no case yet are convened.
Both sides replay the same night, so only the configuration (and the candidate's rules, when its
folder holds other rules) makes a difference. Open cases keep a confirmed lead, and an unconfirmed
lead the same rule still allows (engine/conference/lead.py): a changed lead shows mostly on the
cases the next night would open."""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.conference.convene import TO_DISCUSS, WAITING, convene
from engine.conference.convener import Convener
from engine.config import Config
from engine.impact.evaluate import last_screening_date, scope
from engine.rules.model import RuleSet
from engine.screening.screen import evaluate_households, write_flags
from engine.store.lifecycle import Log
from engine.triage.model import PATHWAY_LABELS

ACTOR = "impact"  # the audit entries of the copies (thrown away with them)


class Decision(BaseModel):
    """What is decided for one household's open case."""

    case_id: str
    household_id: str
    status: str
    conference_type: str | None
    lead: str | None
    lead_rule: str | None
    lead_reason: str | None
    participants: list[str]
    meeting: str | None  # meeting id
    meeting_text: str | None  # day, time and place, in Japanese
    basis: str
    pathway: str | None = None  # triage (engine/triage): conference, assessment, served, watch, …
    pathway_reason: str | None = None


class Change(BaseModel):
    what: str  # pathway | lead | participants | conference_type | meeting | status
    before: str
    after: str
    reason: str  # Japanese


class CaseChange(BaseModel):
    household_id: str
    case_id: str | None  # the open case (None: a case the next night would open only with the candidate)
    new_case: bool  # opened by the next night (not yet a case in the workspace)
    changes: list[Change]


class ConfigDiff(BaseModel):
    on: date
    current_hash: str
    candidate_hash: str
    rules_changed: bool  # the candidate folder holds other rules: new cases follow them
    cases_compared: int
    cases: list[CaseChange]

    @property
    def changed(self) -> bool:
        return bool(self.cases)


def copy_in_memory(conn: sqlite3.Connection) -> sqlite3.Connection:
    """The workspace database copied into memory (the original is only read)."""
    mem = sqlite3.connect(":memory:")
    conn.backup(mem)
    return mem


def still_to_discuss(on: date) -> tuple[str, tuple]:
    """The query (for Convener.recheck) of the cases a conference is still to decide on `on`: those
    the night books again (WAITING, engine/conference/convene.py), and those in a meeting to come
    that has not discussed them yet (TO_DISCUSS there: no outcome recorded; a case closed or suspended
    there, on its day or before a past --date, is no longer the conference's). Not a case on a
    triage pathway."""
    return (
        "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
        f"JOIN meetings m ON m.meeting_id = c.meeting_id WHERE {TO_DISCUSS} "
        "UNION SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
        f"WHERE {WAITING} ORDER BY 1",
        (on.isoformat(),),
    )


def replay_night(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> set[str]:
    """On a copy: screen, decide again the open cases still to be discussed, convene the rest.
    Returns the households that had an open case before."""
    ids = scope(conn, [rules], on)
    write_flags(conn, rules, on, [evaluate_households(conn, rules, on, ids)])
    conn.commit()
    had_case = {h for (h,) in conn.execute("SELECT household_id FROM cases WHERE is_open = 1")}
    with conn:
        c = Convener(conn, rules, config, on, log=Log(conn, on, ACTOR, rules_hash=rules.hash, config_hash=config.hash))
        for case_id, cand, hh in c.recheck(*still_to_discuss(on)):
            if cand.flags:
                c.convene_case(case_id, cand, hh)
    convene(conn, rules, config, on)
    return had_case


def decisions(conn: sqlite3.Connection) -> dict[str, Decision]:
    """The open cases' decisions, by household."""
    invited: dict[str, list[str]] = {}
    for case_id, agency, role in conn.execute(
        "SELECT case_id, agency_id, role FROM case_agencies ORDER BY case_id, role != 'lead', agency_id"
    ):
        invited.setdefault(case_id, []).append(agency)
    out = {}
    for row in conn.execute(
        "SELECT c.case_id, c.household_id, c.status, c.conference_type, c.lead_agency_id, c.lead_rule_id, "
        "c.lead_reason, c.meeting_id, m.held_on, m.start_time, m.place, c.conference_basis, c.pathway, c.pathway_reason FROM cases c "
        "LEFT JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.is_open = 1"
    ):
        case_id, hid, status, kind, lead, rule, reason, meeting, held_on, start, place, basis, pathway, why = row
        out[hid] = Decision(
            case_id=case_id,
            household_id=hid,
            status=status,
            conference_type=kind,
            lead=lead,
            lead_rule=rule,
            lead_reason=reason,
            participants=invited.get(case_id, []),
            meeting=meeting,
            meeting_text=f"{held_on} {start} {place}" if meeting else None,
            basis=basis or "",
            pathway=pathway,
            pathway_reason=why,
        )
    return out


def _side(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> tuple[dict[str, Decision], set[str]]:
    mem = copy_in_memory(conn)
    try:
        had_case = replay_night(mem, rules, config, on)
        return decisions(mem), had_case
    finally:
        mem.close()


def _name(config: Config, agency: str | None) -> str:
    if agency is None:
        return "なし"
    a = config.agencies.get(agency)
    return a.name if a else agency


def _compare(old: Decision | None, new: Decision | None, cur: Config, cand: Config) -> list[Change]:
    kinds = {"support": cur.name_of("support"), "multi": cur.name_of("multi"), None: "なし"}
    if new is None:
        return [Change(what="status", before=old.status, after="事案にならない", reason="変更後は会議に付議されない")]
    old = old or Decision(
        case_id="",
        household_id=new.household_id,
        status="事案なし",
        conference_type=None,
        lead=None,
        lead_rule=None,
        lead_reason=None,
        participants=[],
        meeting=None,
        meeting_text=None,
        basis="",
    )
    out = []
    if old.pathway != new.pathway:
        out.append(
            Change(
                what="pathway",
                before=PATHWAY_LABELS.get(old.pathway or "", "なし"),
                after=PATHWAY_LABELS.get(new.pathway or "", "なし"),
                reason=new.pathway_reason or "",
            )
        )
    if old.status != new.status and "routed" in (old.status, new.status):
        out.append(Change(what="status", before=old.status, after=new.status, reason=new.basis))
    if old.conference_type != new.conference_type:
        out.append(
            Change(
                what="conference_type",
                before=kinds.get(old.conference_type, str(old.conference_type)),
                after=kinds.get(new.conference_type, str(new.conference_type)),
                reason=new.basis,
            )
        )
    if old.lead != new.lead:
        out.append(
            Change(
                what="lead",
                before=_name(cur, old.lead) + (f"（規則 {old.lead_rule}）" if old.lead_rule else ""),
                after=_name(cand, new.lead) + (f"（規則 {new.lead_rule}）" if new.lead_rule else ""),
                reason=new.lead_reason or "",
            )
        )
    added = [a for a in new.participants if a not in old.participants]
    removed = [a for a in old.participants if a not in new.participants]
    if added or removed:
        why = [f"{_name(cand, a)}（{cand.agencies[a].silo}分野）を招集" for a in added if a in cand.agencies]
        why += [f"{_name(cur, a)}を招集しない" for a in removed]
        out.append(
            Change(
                what="participants",
                before="、".join(_name(cur, a) for a in old.participants) or "なし",
                after="、".join(_name(cand, a) for a in new.participants) or "なし",
                reason="。".join(why) + "（事案の分野の機関で世帯の地区を担当するもの）" if why else "",
            )
        )
    if old.meeting != new.meeting:
        out.append(
            Change(
                what="meeting", before=old.meeting_text or "未定", after=new.meeting_text or "未定", reason=new.basis
            )
        )
    return out


def config_diff(
    conn: sqlite3.Connection,
    rules: RuleSet,
    current: Config,
    candidate: Config,
    on: date | None = None,
    *,
    candidate_rules: RuleSet | None = None,
) -> ConfigDiff:
    """The cases the candidate configuration (and its rules, if given) would decide otherwise on `on`
    (default: the workspace's last screening date)."""
    on = on or last_screening_date(conn)
    cand_rules = candidate_rules or rules
    before, had_case = _side(conn, rules, current, on)
    after, _ = _side(conn, cand_rules, candidate, on)
    cases = []
    for hid in sorted(set(before) | set(after)):
        changes = _compare(before.get(hid), after.get(hid), current, candidate)
        if changes:
            old = before.get(hid)
            cases.append(
                CaseChange(
                    household_id=hid,
                    case_id=old.case_id if old and hid in had_case else None,
                    new_case=hid not in had_case,
                    changes=changes,
                )
            )
    return ConfigDiff(
        on=on,
        current_hash=current.hash,
        candidate_hash=candidate.hash,
        rules_changed=cand_rules.hash != rules.hash,
        cases_compared=len(set(before) | set(after)),
        cases=cases,
    )
