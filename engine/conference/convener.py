"""The Convener: opens a case for a flagged household, routes it to a silo conference or decides
its conference (type, lead, participants, meeting) and books it, within the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date

from pydantic import BaseModel

from engine.casework.steps import cancel_checkpoints, schedule_check_back
from engine.conference import candidates, reopening
from engine.conference.booking import Booker, NoSlot
from engine.conference.candidates import Candidate, Flag, served_silos
from engine.conference.choose import choose_conference, concerned_persons, routing_for
from engine.conference.lead import CaseLead, LeadProposal, lead_for_case, participants
from engine.config import Agency, ConferenceType, Config, Routing
from engine.policy.dv import DV_CENTRE_SILO, Locks
from engine.rules.facts import Household
from engine.rules.model import RuleSet
from engine.store.lifecycle import Log
from engine.support.vocabulary import CODES
from engine.triage import pathways
from engine.triage.decide import Decision


class ConveneResult(BaseModel):
    cases_opened: int = 0  # new cases booked into a conference
    cases_routed: int = 0  # households left with their silo conference, owner notified
    cases_escalated: int = 0  # routed cases whose new flags lie outside the silo conference
    flags_attached: int = 0  # new flags of households already in an open case
    cases_unbooked: int = 0  # opened but no free meeting slot: stay 'detected', booked on a later night
    cases_rebooked: int = 0  # waiting cases booked this night
    consent_withdrawn: int = 0  # 重層的支援会議 bookings moved to a 支援会議 because consent ended
    meetings_added: int = 0
    reopened: int = 0  # closed or suspended cases brought back by a new flag (もどし)
    relinked: int = 0  # households of an archived case flagged again: a new case linked to the earlier one
    archived: int = 0  # routed cases the silo conference let go with nothing open
    pathways: dict[str, int] = {}  # new cases by triage pathway (engine/triage)
    assessments_started: int = 0  # new cases one agency assesses
    assessments_deferred: int = 0  # … of which the agency's week was full: asked in a later week
    watched: int = 0  # new cases on watch only
    conference_overflow: int = 0  # conference cases first assessed: no meeting near enough
    backlog_plan: int | None = None  # the plan proposed tonight (engine/triage/backlog.py), if any
    seconds: float = 0.0


class Convener:
    def __init__(self, conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date, *, log: Log | None = None):
        self.conn, self.rules, self.config, self.on, self.on_iso = conn, rules, config, on, on.isoformat()
        self.booker, self.locks = Booker(conn, config, on), Locks(conn, config, self.on_iso)  # DV locks: see convene.py
        self.led: dict[str, int] = dict(
            conn.execute(
                "SELECT lead_agency_id, COUNT(*) FROM cases WHERE is_open = 1 AND lead_agency_id IS NOT NULL GROUP BY lead_agency_id"
            ).fetchall()
        )
        prefix = f"C-{on.year}-"
        last = conn.execute("SELECT MAX(case_id) FROM cases WHERE case_id LIKE ?", (prefix + "%",)).fetchone()[0]
        self.prefix, self.seq = prefix, int(last[len(prefix) :]) if last else 0
        self.result = ConveneResult()
        self.log = log or Log(conn, on, "nightly", rules_hash=rules.hash, config_hash=config.hash)
        self._pacer: pathways.Pacer | None = None

    def pacer(self) -> pathways.Pacer:
        """The pace of assessments per agency and week (built on first use: most nights need none)."""
        if self._pacer is None:
            pace = pathways.per_week(self.conn, self.config.triage.settings.assessments_per_week)
            self._pacer = pathways.Pacer(self.conn, self.booker.calendar, self.on, pace)
        return self._pacer

    def next_case_id(self) -> str:
        self.seq += 1
        return f"{self.prefix}{self.seq:05d}"

    def open_case(self, cand: Candidate, hh: Household) -> None:
        routed = routing_for(self.conn, cand, hh, self.on_iso, self.config, self.rules, locks=self.locks)
        case_id = self.next_case_id()
        earlier = reopening.archived_case(self.conn, cand.household_id)
        self.conn.execute(
            "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, rules_hash, config_hash, previous_case_id) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                case_id,
                cand.household_id,
                "detected",
                self.on_iso,
                cand.severity,
                "",
                self.rules.hash,
                self.config.hash,
                earlier[0] if earlier else None,
            ),
        )
        self.log.event(
            "opened",
            case_id=case_id,
            household_id=cand.household_id,
            reason="フラグを検知し事案を開始" + self.rules.versions_note(cand.flag_ids),
            flags=sorted(cand.flag_ids),
        )
        self.attach(case_id, cand.flags)
        note = reopening.relink(self, case_id, earlier) if earlier else ""
        if routed:
            self.route_case(case_id, cand, *routed)
            self.result.cases_routed += 1
            pathways.record_pathway(
                self,
                case_id,
                Decision(pathway="served", rule_id="routing", reason=self._basis(case_id), agency_id=routed[1].id),
            )
        else:
            decision = pathways.choose(self, case_id, cand, hh, relinked=bool(earlier))
            pathways.start(self, case_id, cand, hh, decision, note=note, previous_lead=earlier[1] if earlier else None)

    def _basis(self, case_id: str) -> str:
        return self.conn.execute("SELECT conference_basis FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]

    def route_case(self, case_id: str, cand: Candidate, routing: Routing, owner: Agency) -> None:
        basis = f"{routing.conference}で支援中（{CODES[routing.code].title}の記録あり）のため並行するケースは開始せず、{owner.name}に通知"
        self.log.move(case_id, "routed", basis)
        self.conn.execute(
            "UPDATE cases SET severity = ?, conference_basis = ?, routed_to = ? WHERE case_id = ?",
            (cand.severity, basis, owner.id, case_id),
        )
        self.conn.execute("INSERT OR REPLACE INTO case_agencies VALUES (?,?,?)", (case_id, owner.id, "owner"))
        if not self.conn.execute(
            "SELECT 1 FROM checkpoints WHERE case_id = ? AND kind = 'check_back' AND status IN ('pending', 'asked')",
            (case_id,),
        ).fetchone():
            schedule_check_back(self.log, self.config, case_id, owner.name)

    def _current(self, case_id: str) -> tuple:
        return self.conn.execute(
            "SELECT c.meeting_id, c.lead_agency_id, m.held_on, c.lead_rule_id, c.lead_reason, c.lead_reason_shared FROM cases c "
            "LEFT JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ?",
            (case_id,),
        ).fetchone()

    def convene_case(
        self,
        case_id: str,
        cand: Candidate,
        hh: Household,
        note: str = "",
        previous_lead: str | None = None,
        continued: bool = False,
    ) -> None:
        """Decide (or decide again) conference type, lead, participants and meeting for a case.

        A case keeps its upcoming meeting when the type is unchanged and, if urgent, the meeting is
        within the urgent window; otherwise it leaves that meeting and is booked anew. A confirmed
        lead stays; a reopened or re-linked case proposes its previous lead (もどし・つなぎ直し), a
        `continued` one (継続審議) the lead it was proposed. A case under way keeps its state."""
        status, confirmed_on = self.conn.execute(
            "SELECT status, lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)
        ).fetchone()
        if status == "routed":  # the silo conference's check-back ends with its remit
            cancel_checkpoints(self.log, case_id, "要対協等から会議へ", ("check_back",))
        elif status in ("assessing", "watching"):  # the conference takes over from the assessment or the watch
            cancel_checkpoints(self.log, case_id, "会議へ", ("assessment", "rescreen"))
        kind, basis = choose_conference(cand, hh, self.on_iso, self.config)
        old_meeting, old_lead, old_day, old_rule, old_reason, old_shared = self._current(case_id)
        meeting_id, kind, basis = self._meeting(kind, basis, cand, hh, old_meeting, old_day)
        if old_lead:
            self.led[old_lead] = max(0, self.led.get(old_lead, 0) - 1)
        # a 重層的支援会議 shares with consent: only the persons concerned (who all consented) bring
        # in the agencies that serve them; another member's 生活保護 must not invite 福祉事務所
        served = served_silos(hh, self.on_iso, concerned_persons(cand, hh) if kind == "multi" else None)
        lead, more = lead_for_case(
            self.config,
            CaseLead(old_lead, old_rule, old_reason, old_shared, confirmed_on, previous_lead, continued),
            area=cand.area,
            flag_ids=cand.flag_ids,
            served_silos=served,
            conference_type=kind,
            led=self.led,
        )
        basis += more
        if lead:
            self.led[lead.agency_id] = self.led.get(lead.agency_id, 0) + 1
        silos = {s for f in cand.flag_ids for s in self.rules.flags[f].silos} | served
        if self.locks.case(hh.household_id, cand.flag_ids):
            silos.add(DV_CENTRE_SILO)  # DV-locked by its flag or by a DV support measure alone
        invited, excluded = participants(
            self.config, area=cand.area, silos=silos, lead=lead.agency_id if lead else None, conference_type=kind
        )
        if excluded:
            basis += "。構成員でないため招集しない機関: " + "、".join(self.config.agencies[a].name for a in excluded)
        if old_meeting and old_meeting != meeting_id and old_day and old_day >= self.on_iso:
            # left before it was held: it owes no outcome (a held meeting still does)
            self.conn.execute("DELETE FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (case_id, old_meeting))
        new_status = status if status in ("lead_pending", "active") else ("convened" if meeting_id else "detected")
        record_conference(
            self.conn, self.log, case_id, new_status, cand.severity, kind, note + basis, lead, invited, meeting_id
        )

    def _meeting(
        self, kind: ConferenceType, basis: str, cand: Candidate, hh: Household, old_meeting: str | None, old_day
    ) -> tuple[str | None, ConferenceType, str]:
        """The case's upcoming meeting if it still fits, else the next free one; a 重層的支援会議
        only if the consent lasts until its day."""
        meeting_id = self._keep(old_meeting, old_day, kind, cand.urgent)
        if meeting_id is None:
            self.booker.release(old_meeting if old_day and old_day >= self.on_iso else None)
            meeting_id, basis = self._book(kind, cand, basis)
        if kind == "multi" and meeting_id:
            held_on = self.booker.known[meeting_id].held_on.isoformat()
            kind, why = choose_conference(cand, hh, self.on_iso, self.config, through_iso=held_on)
            if kind != "multi":  # the consent ends before the meeting: a 支援会議 instead
                self.booker.release(meeting_id)
                meeting_id, basis = self._book(kind, cand, why)
        return meeting_id, kind, basis

    def _book(self, kind: ConferenceType, cand: Candidate, basis: str) -> tuple[str | None, str]:
        known_before = len(self.booker.known)
        try:
            meeting = self.booker.book(kind, cand.urgent)
        except NoSlot as err:  # keep the case (and the rest of the night's work); say why it waits
            self.result.cases_unbooked += 1
            return None, basis + f"。会議に予約できていない: {err}"
        self.result.meetings_added += int(meeting.added_for_urgent and len(self.booker.known) > known_before)
        return meeting.meeting_id, basis

    def _keep(self, meeting_id: str | None, held_on: str | None, kind: str, urgent: bool) -> str | None:
        if not meeting_id or not held_on or held_on < self.on_iso:
            return None  # no meeting yet, or it has been held: book the next one
        m = self.booker.known.get(meeting_id)
        if m is None or m.conference_type != kind:
            return None
        if urgent and m.held_on > self.booker.calendar.add(self.on, self.config.conference.urgent_business_days):
            return None
        return meeting_id

    def attach(self, case_id: str, flags) -> None:
        self.conn.executemany("INSERT INTO case_flags VALUES (?,?,?)", [(case_id, f[0], self.on_iso) for f in flags])

    def add_to_open_case(self, case_id: str, status: str, cand: Candidate, hh: Household) -> None:
        reopening.add_to_open_case(self, case_id, status, cand, hh)

    def reopen(self, case_id: str, hh: Household, reason: str) -> None:
        reopening.reopen_case(self, case_id, hh, reason)

    def case_flags(self, case_id: str, *, open_only: bool = True) -> list[Flag]:
        return candidates.case_flags(self.conn, self.rules, case_id, open_only=open_only)

    def load_case(self, case_id: str) -> tuple[str, Candidate, Household]:
        """One case with all its flags (open or not) and its household."""
        return next(
            self.recheck(
                "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id WHERE c.case_id = ?",
                (case_id,),
                open_only=False,
            )
        )

    def recheck(
        self, sql: str, params: tuple = (), *, open_only: bool = True
    ) -> Iterator[tuple[str, Candidate, Household]]:
        return candidates.case_candidates(self.conn, self.rules, self.on, sql, params, open_only=open_only)


def record_conference(
    conn: sqlite3.Connection,
    log: Log,
    case_id: str,
    status: str,
    severity: str,
    kind: ConferenceType,
    basis: str,
    lead: LeadProposal | None,
    invited: list[str],
    meeting_id: str | None,
) -> None:
    """Store what was decided for the case: its meeting, state, conference, lead and participants."""
    if meeting_id:
        conn.execute("INSERT OR IGNORE INTO case_meetings VALUES (?, ?)", (case_id, meeting_id))
    log.move(case_id, status, basis, meeting_id=meeting_id)
    conn.execute(
        "UPDATE cases SET severity = ?, conference_type = ?, conference_basis = ?, lead_agency_id = ?, lead_rule_id = ?, lead_reason = ?, lead_reason_shared = ?, meeting_id = ?, routed_to = NULL WHERE case_id = ?",
        (
            severity,
            kind,
            basis,
            lead.agency_id if lead else None,
            lead.rule_id if lead else None,
            lead.reason if lead else "候補となる機関がない（lead_rules.yaml を確認）",
            lead.shared_reason if lead else "",
            meeting_id,
            case_id,
        ),
    )
    log.event(
        "conference_decided",
        case_id=case_id,
        meeting_id=meeting_id,
        rule_id=lead.rule_id if lead else None,
        reason=basis,
        conference_type=kind,
        lead=lead.agency_id if lead else None,
        participants=invited,
    )
    conn.execute("DELETE FROM case_agencies WHERE case_id = ?", (case_id,))
    conn.executemany(
        "INSERT OR REPLACE INTO case_agencies VALUES (?,?,?)",
        [(case_id, a, "lead" if lead and a == lead.agency_id else "participant") for a in invited],
    )
