"""Start a new case on its pathway (engine/triage/decide.py chose it), inside the Convener's
transaction: a conference as before, an assessment by one agency, a check by the agency already
serving the household, or watch only until a re-screen date. Each start is recorded on the case
(cases.pathway, pathway_rule, pathway_reason, pathway_on) and in the audit log (`pathway_chosen`).

Assessments are paced: an agency is asked at most `assessments_per_week` new ones a week (the
backlog plan may change that). A case whose agency's week is full waits for a later week with a
dated assessment: its start day is its dated next step, and the order is the booking priority.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING

from engine.casework.steps import cancel_checkpoints, schedule_check_back
from engine.conference.candidates import Candidate, served_silos
from engine.conference.choose import choose_conference, concerned_persons
from engine.conference.lead import propose_lead
from engine.policy import consent
from engine.policy.dv import case_locked, locked_among
from engine.rules.facts import Household
from engine.support.business_days import Calendar
from engine.triage.decide import Decision, case_facts, decide
from engine.triage.model import PATHWAY_LABELS

if TYPE_CHECKING:
    from engine.conference.convener import Convener

WEEK = 5  # business days


def record_pathway(c: Convener, case_id: str, d: Decision) -> None:
    c.conn.execute(
        "UPDATE cases SET pathway = ?, pathway_rule = ?, pathway_reason = ?, pathway_on = ? WHERE case_id = ?",
        (d.pathway, d.rule_id, d.reason, c.on_iso, case_id),
    )
    c.log.event(
        "pathway_chosen",
        case_id=case_id,
        reason=f"{PATHWAY_LABELS[d.pathway]}: {d.reason}",
        rule_id=d.rule_id,
        pathway=d.pathway,
        agency=d.agency_id,
    )
    c.result.pathways[d.pathway] = c.result.pathways.get(d.pathway, 0) + 1


def per_week(conn: sqlite3.Connection, default: int) -> int:
    """The pace of assessments: the latest accepted backlog plan's, else the settings'."""
    row = conn.execute(
        "SELECT per_week FROM backlog_plans WHERE status = 'accepted' ORDER BY plan_id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else default


class Pacer:
    """How many assessments each agency has started (or will start) in each coming week."""

    def __init__(self, conn: sqlite3.Connection, cal: Calendar, on: date, pace: int, *, pending: bool = True):
        """`pending`: count the assessments still to be asked too (False: only those asked this week)."""
        self.cal, self.on, self.pace = cal, on, pace
        self.days: list[date] = [on]  # the business days from `on`, extended as needed
        self.load: dict[str, Counter] = {}
        self.free: dict[str, int] = {}  # per agency: no week before this one has room
        week_ago = (on - timedelta(days=7)).isoformat()
        for agency, due_on, status in conn.execute(
            "SELECT c.routed_to, p.due_on, p.status FROM checkpoints p JOIN cases c ON c.case_id = p.case_id "
            "WHERE p.kind = 'assessment' AND ((? AND p.status = 'pending') OR (p.status IN ('asked', 'done') AND p.asked_on > ?))",
            (int(pending), week_ago),
        ):
            week = self.week_of(date.fromisoformat(due_on)) if status == "pending" else 0
            self.load.setdefault(agency, Counter())[week] += 1

    def week_of(self, day: date) -> int:
        """The business-day week (0: this one) `day` falls in."""
        while self.days[-1] < day:
            self.days.append(self.cal.add(self.days[-1], 1))
        return bisect_left(self.days, day) // WEEK

    def start(self, agency_id: str) -> date:
        """The first day of the first week with room for one more of the agency's assessments."""
        load = self.load.setdefault(agency_id, Counter())
        week = self.free.get(agency_id, 0)  # loads only grow: no earlier week has room again
        while load[week] >= self.pace:
            week += 1
        self.free[agency_id] = week
        load[week] += 1
        if week == 0:
            return self.on
        while len(self.days) <= week * WEEK:
            self.days.append(self.cal.add(self.days[-1], 1))
        return self.days[week * WEEK]  # cal.add(on, week * WEEK)


def choose(
    c: Convener, case_id: str, cand: Candidate, hh: Household, *, relinked: bool, skip: frozenset[str] = frozenset()
) -> Decision:
    """The pathway of a new case, with the capacity check: a conference case that finds no meeting
    within max_business_days_to_conference is first assessed by the agency the lead rules propose."""
    concerned = concerned_persons(cand, hh)
    all_consented = concerned <= consent.consenting(hh, c.on_iso)
    # with everyone's consent only the persons concerned count (as for the lead of a 重層的支援会議)
    served = served_silos(hh, c.on_iso, concerned if all_consented else None)
    facts = case_facts(c.rules, cand, served, all_consented)
    locked = c.locks.case(hh.household_id, cand.flag_ids)
    d = decide(c.config, facts, urgent=cand.urgent, locked=locked, relinked=relinked, led=c.led, skip=skip)
    if d.pathway != "conference" or d.rule_id in ("dv_lock", "relink"):
        return d
    if c.config.triage.settings.conference_overflow != "assessment":
        return d
    kind, _ = choose_conference(cand, hh, c.on_iso, c.config)
    window = c.config.conference.max_business_days_to_conference
    if c.booker.free_by(kind, c.booker.calendar.add(c.on, window)):
        return d
    lead = propose_lead(
        c.config, area=cand.area, flag_ids=cand.flag_ids, served_silos=served, conference_type=kind, led=c.led
    )
    if lead is None:
        return d
    name = c.config.agencies[lead.agency_id].name
    c.result.conference_overflow += 1
    return Decision(
        pathway="assessment",
        rule_id=f"{d.rule_id}:overflow",
        reason=(
            f"{d.reason}。ただし{window}営業日以内に会議の空き枠がないため、まず主担当候補の{name}が"
            "アセスメントを行い、会議が必要と回答されれば付議する（会議の枠待ちで放置しない）"
        ),
        agency_id=lead.agency_id,
    )


def start(
    c: Convener,
    case_id: str,
    cand: Candidate,
    hh: Household,
    d: Decision,
    *,
    note: str,
    previous_lead,
    new: bool = True,
) -> None:
    """Put the case (new, or watched until today) on its pathway and record why."""
    record_pathway(c, case_id, d)
    if d.pathway in ("urgent_conference", "conference"):
        c.convene_case(case_id, cand, hh, note=note, previous_lead=previous_lead)
        c.result.cases_opened += int(new)
    elif d.pathway == "assessment":
        start_assessment(c, case_id, d)
    elif d.pathway == "served":
        serve(c, case_id, cand, d)
    else:
        watch(c, case_id, cand, d)


def _own(c: Convener, case_id: str, status: str, basis: str, agency_id: str | None, severity: str) -> None:
    c.log.move(case_id, status, basis)
    c.conn.execute(
        "UPDATE cases SET severity = ?, conference_basis = ?, routed_to = ? WHERE case_id = ?",
        (severity, basis, agency_id, case_id),
    )
    c.conn.execute("DELETE FROM case_agencies WHERE case_id = ?", (case_id,))
    if agency_id:
        c.conn.execute("INSERT OR REPLACE INTO case_agencies VALUES (?,?,?)", (case_id, agency_id, "owner"))


def start_assessment(c: Convener, case_id: str, d: Decision, *, basis: str | None = None) -> date:
    """One agency assesses the household (a visit or outreach), asked on its paced start day."""
    settings = c.config.triage.settings
    pacer = c.pacer()
    begin = pacer.start(d.agency_id)
    name = c.config.agencies[d.agency_id].name
    answer_due = pacer.cal.add(begin, d.due_business_days or settings.assessment_business_days)
    severity = c.conn.execute("SELECT severity FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    _own(
        c,
        case_id,
        "assessing",
        basis or f"{name}がアセスメント（{begin}から、回答期限 {answer_due}）",
        d.agency_id,
        severity,
    )
    c.conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status, answer_due) VALUES (?, 'assessment', ?, 'pending', ?)",
        (case_id, begin.isoformat(), answer_due.isoformat()),
    )
    c.log.event(
        "checkpoint_scheduled",
        case_id=case_id,
        reason=f"{name}へのアセスメントの依頼 {begin}（回答期限 {answer_due}）"
        + ("。機関の週あたりの依頼数の上限により後の週に予定" if begin > c.on else ""),
        kind="assessment",
        due_on=begin,
    )
    c.result.assessments_started += 1
    c.result.assessments_deferred += int(begin > c.on)
    return begin


def serve(c: Convener, case_id: str, cand: Candidate, d: Decision) -> None:
    """The agency already serving the household is told and asked to check, by a check-back date."""
    name = c.config.agencies[d.agency_id].name
    days = d.due_business_days or c.config.triage.settings.served_check_business_days
    due = c.booker.calendar.add(c.on, days)
    _own(c, case_id, "routed", f"既に世帯を支援している{name}が状況を確認（確認日 {due}）", d.agency_id, cand.severity)
    schedule_check_back(c.log, c.config, case_id, name, due=due)
    c.result.cases_routed += 1


def watch(c: Convener, case_id: str, cand: Candidate, d: Decision) -> None:
    """Watch only: no agency yet; on the re-screen date the case is triaged again without watch."""
    days = d.due_business_days or c.config.triage.settings.watch_business_days
    due = c.booker.calendar.add(c.on, days)
    _own(c, case_id, "watching", f"経過観察（{due}に再確認）", None, cand.severity)
    c.conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'rescreen', ?, 'pending')",
        (case_id, due.isoformat()),
    )
    c.log.event("checkpoint_scheduled", case_id=case_id, reason=f"経過観察の再確認 {due}", kind="rescreen", due_on=due)
    c.result.watched += 1


def pathway_of(conn: sqlite3.Connection, case_id: str) -> dict:
    """The case's pathway as the history and the console show it."""
    row = conn.execute(
        "SELECT pathway, pathway_rule, pathway_reason, pathway_on FROM cases WHERE case_id = ?", (case_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return {}
    return {
        "pathway": row[0],
        "label": PATHWAY_LABELS.get(row[0], row[0]),
        "rule": row[1],
        "reason": row[2],
        "on": row[3],
    }


def one_agency_cases(c: Convener) -> list[tuple[str, str, str]]:
    """Open cases left with one agency by triage (assessing, watched, checked by a serving agency):
    (case id, status, household id)."""
    return c.conn.execute(
        "SELECT case_id, status, household_id FROM cases WHERE is_open = 1 AND (status IN ('assessing', 'watching') OR "
        "(status = 'routed' AND pathway_rule IS NOT NULL AND pathway_rule NOT IN ('routing', 'before_triage'))) "
        "ORDER BY case_id"
    ).fetchall()


def locked_to_conference(c: Convener) -> int:
    """Each one-agency case whose household is DV-locked now goes to a conference (lock_to_conference);
    the households are checked at once (dv.locked_among). How many were moved."""
    cases = one_agency_cases(c)
    locked = locked_among(c.conn, c.config, {h for *_, h in cases}, c.on_iso)
    return sum(lock_to_conference(c, case_id, status, household, locked) for case_id, status, household in cases)


def lock_to_conference(c: Convener, case_id: str, status: str, household: str, locked: set[str]) -> bool:
    """A household DV-locked since its case was left with one agency goes to a conference, where the
    DV centre takes part (decide.py: never one agency alone). True if it was moved. `locked`: the
    locked households of the night's one-agency cases."""
    rule_ids = [
        r
        for (r,) in c.conn.execute(
            "SELECT f.rule_id FROM case_flags x JOIN flags f ON f.flag_id = x.flag_id WHERE x.case_id = ?", (case_id,)
        )
    ]
    if not case_locked(c.conn, c.config, household, rule_ids, c.on_iso, locked):
        return False
    cid, cand, hh = c.load_case(case_id)
    if status == "routed":
        cancel_checkpoints(c.log, case_id, "DVロックの対象となったため会議へ", ("check_back",))
        c.log.move(case_id, "detected", "DVロックの対象となったため、一機関での対応から会議へ")
    record_pathway(
        c,
        case_id,
        Decision(
            pathway="conference",
            rule_id="dv_lock",
            reason="DVロックの対象となったため、DVの相談支援機関を含む会議で検討する",
        ),
    )
    c.convene_case(cid, cand, hh, note="DVロックの対象となったため会議に付議。")
    return True


def settle_served(c: Convener) -> int:
    """Cases a serving agency was asked to check whose flags have all resolved: the engine's case
    ends (archived); the agency goes on serving the household as before. Returns how many."""
    rows = c.conn.execute(
        "SELECT c.case_id, c.routed_to FROM cases c WHERE c.status = 'routed' AND c.is_open = 1 "
        "AND c.pathway_rule IS NOT NULL AND c.pathway_rule NOT IN ('routing', 'before_triage') "
        "AND NOT EXISTS (SELECT 1 FROM case_flags x JOIN flags f ON f.flag_id = x.flag_id "
        "WHERE x.case_id = c.case_id AND f.status = 'open') ORDER BY c.case_id"
    ).fetchall()
    for case_id, agency in rows:
        name = c.config.agencies[agency].name if agency in c.config.agencies else agency
        c.log.move(case_id, "archived", f"{name}が支援を続けており、課題（フラグ）もすべて解消したため終了")
        cancel_checkpoints(c.log, case_id, "課題の解消")
    return len(rows)
