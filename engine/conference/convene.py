"""Open cases for newly flagged households: route, choose the conference, propose the lead, book.

One transaction per call: a crash leaves either all of a night's cases or none, and a re-run
finds the households already in an open case and does nothing twice (cases_one_open index)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel

from engine.casework.steps import begin_reopen, cancel_checkpoints, schedule_check_back
from engine.conference.booking import Booker, NoSlot
from engine.conference.lead import LeadProposal, participants, propose_lead
from engine.config.files import SEVERITY_ORDER, Agency, ConferenceType, Config, Routing
from engine.papers.agenda import consenting, household_locked
from engine.rules.facts import Household, current, load_households
from engine.rules.model import RuleSet
from engine.store.lifecycle import Log
from engine.support import clock
from engine.support.vocabulary import CODES


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
    seconds: float = 0.0


@dataclass
class Candidate:
    household_id: str
    area: str
    flags: list[tuple[int, str, str, list[str]]] = field(default_factory=list)  # flag_id, rule_id, severity, members

    @property
    def flag_ids(self) -> set[str]:
        return {f[1] for f in self.flags}

    @property
    def urgent(self) -> bool:
        return any(f[2] == "urgent" for f in self.flags)

    @property
    def severity(self) -> str:
        return max((f[2] for f in self.flags), key=SEVERITY_ORDER.index, default="low")


def severities_from(minimum: str) -> tuple[str, ...]:
    return SEVERITY_ORDER[SEVERITY_ORDER.index(minimum) :]


def unhandled_flags(conn: sqlite3.Connection, config: Config) -> dict[str, Candidate]:
    """Open flags at or above the threshold that are in no case yet, grouped by household."""
    sev = severities_from(config.conference.min_severity)
    rows = conn.execute(
        f"SELECT f.flag_id, f.household_id, f.rule_id, f.severity, f.evidence, h.area FROM flags f "
        f"JOIN households h ON h.household_id = f.household_id "
        f"WHERE f.status = 'open' AND f.severity IN ({','.join('?' * len(sev))}) "
        f"AND NOT EXISTS (SELECT 1 FROM case_flags c WHERE c.flag_id = f.flag_id) ORDER BY f.household_id, f.rule_id",
        sev,
    )
    out: dict[str, Candidate] = {}
    for flag_id, hid, rule_id, severity, evidence, area in rows:
        members = json.loads(evidence).get("members", [])
        out.setdefault(hid, Candidate(hid, area)).flags.append((flag_id, rule_id, severity, members))
    return out


def served_silos(hh: Household, on_iso: str) -> set[str]:
    """Silos whose agencies already serve a member (service use, 生活保護, 要対協 registration)."""
    out = set()
    for p in hh.persons:
        for code, recs in p.records.items():
            spec = CODES[code]
            if not spec.served:
                continue
            for r in recs:
                if current(r, on_iso):
                    out.add(r.value if spec.silo_from_value else spec.silo)
    return out


def consent_lasts(hh: Household, persons: set[str], on_iso: str, through_iso: str) -> bool:
    """Every one of `persons` has a consent record valid from `on_iso` through `through_iso` (the meeting day)."""
    by_id = {p.person_id: p for p in hh.persons}
    return all(
        any(
            r.start <= on_iso and (r.end is None or r.end >= through_iso) for r in by_id[pid].records.get("consent", ())
        )
        if pid in by_id
        else False
        for pid in persons
    )


def concerned_persons(cand: Candidate, hh: Household) -> set[str]:
    return {m for f in cand.flags for m in f[3]} or {p.person_id for p in hh.persons}


def choose_conference(
    cand: Candidate, hh: Household, on_iso: str, config: Config, *, through_iso: str | None = None
) -> tuple[ConferenceType, str]:
    """重層的支援会議 only when every person concerned has consented, and (given the meeting day)
    the consent lasts until the meeting; else 支援会議."""
    concerned = concerned_persons(cand, hh)
    agreed = concerned & consenting(hh, on_iso)
    names = config.conference.names
    if agreed == concerned and (through_iso is None or consent_lasts(hh, concerned, on_iso, through_iso)):
        return "multi", f"対象者{len(concerned)}人全員の本人同意あり → {names['multi']}"
    if agreed == concerned:
        return "support", (
            f"本人同意の期限が会議日（{through_iso}）より前に切れる対象者がいる → "
            f"{names['support']}（社会福祉法第106条の6。同意なしの情報共有は構成員に限る）"
        )
    return "support", (
        f"本人同意が確認できない対象者がいる（{len(concerned)}人中 同意 {len(agreed)}人）→ "
        f"{names['support']}（社会福祉法第106条の6。同意なしの情報共有は構成員に限る）"
    )


def routing_for(
    conn: sqlite3.Connection, cand: Candidate, hh: Household, on_iso: str, config: Config, rules: RuleSet
) -> tuple[Routing, Agency] | None:
    """The silo conference already handling this household, if every flag lies wholly within its
    silo. A locked (DV) household is never left to a silo conference: the DV centre must take part."""
    if (
        not cand.flags
        or cand.flag_ids & set(config.conference.locked_flags)
        or household_locked(conn, config, hh.household_id, on_iso)
    ):
        return None
    for routing in config.conference.routing:
        if not any(current(r, on_iso) for p in hh.persons for r in p.records.get(routing.code, ())):
            continue
        owners = sorted(
            (a for a in config.agencies.values() if a.kind == routing.owner_kind and a.serves(cand.area)),
            key=lambda a: a.id,
        )
        if not owners:
            continue
        owner = owners[0]
        if all(set(rules.flags[f].silos) <= {owner.silo} for f in cand.flag_ids):
            return routing, owner
    return None


class Convener:
    def __init__(self, conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date, *, log: Log | None = None):
        self.conn, self.rules, self.config, self.on, self.on_iso = conn, rules, config, on, on.isoformat()
        self.booker = Booker(conn, config, on)
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

    def next_case_id(self) -> str:
        self.seq += 1
        return f"{self.prefix}{self.seq:05d}"

    def open_case(self, cand: Candidate, hh: Household) -> None:
        routed = routing_for(self.conn, cand, hh, self.on_iso, self.config, self.rules)
        case_id = self.next_case_id()
        earlier = self.conn.execute(
            "SELECT case_id, lead_agency_id FROM cases WHERE household_id = ? AND status = 'archived' ORDER BY opened_on DESC, case_id DESC LIMIT 1",
            (cand.household_id,),
        ).fetchone()
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
            reason="フラグを検知し事案を開始",
            flags=sorted(cand.flag_ids),
        )
        self.attach(case_id, cand.flags)
        note = ""
        if earlier:
            note = f"見守りを終えた事案 {earlier[0]} の世帯に新たな課題（つなぎ直し、前回の主担当機関を含める）。"
            self.log.event(
                "relinked", case_id=case_id, reason=note, previous_case_id=earlier[0], previous_lead=earlier[1]
            )
            self.result.relinked += 1
        if routed:
            self.route_case(case_id, cand, *routed)
            self.result.cases_routed += 1
        else:
            self.convene_case(case_id, cand, hh, note=note, previous_lead=earlier[1] if earlier else None)
            self.result.cases_opened += 1

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
        self, case_id: str, cand: Candidate, hh: Household, note: str = "", previous_lead: str | None = None
    ) -> None:
        """Decide (or decide again) conference type, lead, participants and meeting for a case.

        A case keeps its upcoming meeting when the type is unchanged and, if urgent, the meeting is
        within the urgent window; otherwise it leaves that meeting and is booked anew.
        A confirmed lead (the hand-shake was accepted) stays the lead; a reopened or re-linked case
        proposes its previous lead again (もどし・つなぎ直し). A case under way (lead_pending,
        active) keeps its state: it is only brought to a meeting."""
        status, confirmed_on = self.conn.execute(
            "SELECT status, lead_confirmed_on FROM cases WHERE case_id = ?", (case_id,)
        ).fetchone()
        if status == "routed":  # the silo conference's check-back ends with its remit
            cancel_checkpoints(self.log, case_id, "要対協等から会議へ", ("check_back",))
        kind, basis = choose_conference(cand, hh, self.on_iso, self.config)
        old_meeting, old_lead, old_day, old_rule, old_reason, old_shared = self._current(case_id)
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
        if old_lead:
            self.led[old_lead] = max(0, self.led.get(old_lead, 0) - 1)
        served = served_silos(hh, self.on_iso)
        keep = old_lead if confirmed_on else previous_lead
        agency = self.config.agencies.get(keep) if keep else None
        if agency and (confirmed_on or kind == "multi" or agency.member):
            why = (
                f"{confirmed_on}に受諾した主担当機関を継続"
                if confirmed_on
                else "前回の主担当機関（もどし・つなぎ直し）"
            )
            lead = LeadProposal(
                agency_id=agency.id,
                rule_id=old_rule or "previous",
                reason=f"{why}: {agency.name}。",
                shared_reason=f"{why}。",
                candidates=(agency.id,),
            )
        else:
            lead = propose_lead(
                self.config,
                area=cand.area,
                flag_ids=cand.flag_ids,
                served_silos=served,
                conference_type=kind,
                led=self.led,
            )
            if agency:  # the previous lead cannot take part in a 支援会議 it is not a member of (社会福祉法106条の6)
                basis += f"。前回の主担当機関（{agency.name}）は{self.config.name_of('support')}の構成員でないため招集しない（本人同意を得て{self.config.name_of('multi')}で再検討を）"
        if (
            lead
            and not confirmed_on
            and old_lead
            and old_lead != lead.agency_id
            and lead.rule_id == old_rule
            and old_lead in lead.candidates
        ):
            # same rule, and the earlier lead is still eligible: do not switch the lead over load alone
            lead = lead.model_copy(update={"agency_id": old_lead, "reason": old_reason, "shared_reason": old_shared})
        if lead:
            self.led[lead.agency_id] = self.led.get(lead.agency_id, 0) + 1
        silos = {s for f in cand.flag_ids for s in self.rules.flags[f].silos} | served
        invited, excluded = participants(
            self.config, area=cand.area, silos=silos, lead=lead.agency_id if lead else None, conference_type=kind
        )
        if excluded:
            basis += "。構成員でないため招集しない機関: " + "、".join(self.config.agencies[a].name for a in excluded)
        if old_meeting and old_meeting != meeting_id and old_day and old_day >= self.on_iso:
            # left before it was held: it owes no outcome (a held meeting still does)
            self.conn.execute("DELETE FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (case_id, old_meeting))
        if meeting_id:
            self.conn.execute("INSERT OR IGNORE INTO case_meetings VALUES (?, ?)", (case_id, meeting_id))
        new_status = status if status in ("lead_pending", "active") else ("convened" if meeting_id else "detected")
        self.log.move(case_id, new_status, note + basis, meeting_id=meeting_id)
        self.conn.execute(
            "UPDATE cases SET severity = ?, conference_type = ?, conference_basis = ?, lead_agency_id = ?, lead_rule_id = ?, lead_reason = ?, lead_reason_shared = ?, meeting_id = ?, routed_to = NULL WHERE case_id = ?",
            (
                cand.severity,
                kind,
                note + basis,
                lead.agency_id if lead else None,
                lead.rule_id if lead else None,
                lead.reason if lead else "候補となる機関がない（lead_rules.yaml を確認）",
                lead.shared_reason if lead else "",
                meeting_id,
                case_id,
            ),
        )
        self.log.event(
            "conference_decided",
            case_id=case_id,
            meeting_id=meeting_id,
            rule_id=lead.rule_id if lead else None,
            reason=note + basis,
            conference_type=kind,
            lead=lead.agency_id if lead else None,
            participants=invited,
        )
        self.conn.execute("DELETE FROM case_agencies WHERE case_id = ?", (case_id,))
        self.conn.executemany(
            "INSERT OR REPLACE INTO case_agencies VALUES (?,?,?)",
            [(case_id, a, "lead" if lead and a == lead.agency_id else "participant") for a in invited],
        )

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
        """New flags of a household already in a case join that case, and the case is decided
        again with all its flags: a new lead, new participants, urgency and a meeting if needed.
        A routed case whose flags no longer lie within its silo conference gets a conference."""
        self.attach(case_id, cand.flags)
        self.result.flags_attached += len(cand.flags)
        self.log.event(
            "flags_added", case_id=case_id, reason="開いている事案に新たなフラグ", flags=sorted(cand.flag_ids)
        )
        everything = Candidate(cand.household_id, cand.area, self.case_flags(case_id))
        if status in ("closed", "suspended"):
            self.reopen(
                case_id,
                hh,
                "新たな課題を検知（"
                + "、".join(self.rules.flags[f].title for f in sorted(cand.flag_ids) if f in self.rules.flags)
                + "）",
            )
            return
        if status == "routed":
            routed = routing_for(self.conn, everything, hh, self.on_iso, self.config, self.rules)
            if routed:
                self.route_case(case_id, everything, *routed)  # still within its remit: the owner hears of the new flag
                return
            self.convene_case(case_id, everything, hh, note="要対協等の範囲外の課題が加わったため会議に付議。")
            self.result.cases_escalated += 1
            return
        self.convene_case(case_id, everything, hh, note="新たな課題が加わったため再検討。")

    def reopen(self, case_id: str, hh: Household, reason: str) -> None:
        """もどし・つなぎ直し: bring a closed (or suspended) case back and convene it again with its
        previous lead, who must accept again. Pending checkpoints, requests and actions end."""
        previous = begin_reopen(self.log, self.config, case_id, reason)
        flags = self.case_flags(case_id) or self.case_flags(case_id, open_only=False)
        area = self.conn.execute("SELECT area FROM households WHERE household_id = ?", (hh.household_id,)).fetchone()[0]
        self.convene_case(
            case_id,
            Candidate(hh.household_id, area, flags),
            hh,
            note=f"{reason}のため再開（もどし）。",
            previous_lead=previous,
        )
        self.result.reopened += 1

    def case_flags(self, case_id: str, *, open_only: bool = True):
        """The case's flags (open ones by default) whose rule still exists: a rule renamed or
        removed from the rule set must not stop the night."""
        return [
            (fid, rule_id, sev, json.loads(ev).get("members", []))
            for fid, rule_id, sev, ev in self.conn.execute(
                "SELECT f.flag_id, f.rule_id, f.severity, f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id "
                "WHERE c.case_id = ? AND (? = 0 OR f.status = 'open') ORDER BY f.rule_id",
                (case_id, int(open_only)),
            )
            if rule_id in self.rules.flags
        ]

    def load_case(self, case_id: str) -> tuple[str, Candidate, Household]:
        """One case with all its flags (open or not) and its household."""
        return next(
            self.recheck(
                "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id WHERE c.case_id = ?",
                (case_id,),
                open_only=False,
            )
        )

    def recheck(self, sql: str, params: tuple = (), *, open_only: bool = True):
        """The cases selected by `sql` (columns case_id, household_id, area) as (case id, candidate
        with the case's flags — open ones only unless open_only=False — household)."""
        rows = self.conn.execute(sql, params).fetchall()
        loaded = (
            {hh.household_id: hh for hh in load_households(self.conn, [r[1] for r in rows], self.on)} if rows else {}
        )
        for case_id, hid, area in rows:
            yield case_id, Candidate(hid, area, self.case_flags(case_id, open_only=open_only)), loaded[hid]


def convene(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> ConveneResult:
    """Open, route or extend cases for every unhandled flag; one transaction."""
    started = clock.monotonic()
    cands = unhandled_flags(conn, config)
    with conn:
        c = Convener(conn, rules, config, on)
        open_cases = {}
        if cands:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS convene_ids (household_id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM convene_ids")
            conn.executemany("INSERT INTO convene_ids VALUES (?)", ((h,) for h in cands))
            open_cases = {
                h: (cid, st)
                for h, cid, st in conn.execute(
                    "SELECT c.household_id, c.case_id, c.status FROM convene_ids t JOIN cases c ON c.household_id = t.household_id AND c.is_open = 1"
                )
            }
        households = {hh.household_id: hh for hh in load_households(conn, list(cands), on)}
        order = sorted(cands.values(), key=lambda k: (-SEVERITY_ORDER.index(k.severity), k.household_id))
        for cand in order:
            if cand.household_id in open_cases:
                case_id, status = open_cases[cand.household_id]
                c.add_to_open_case(case_id, status, cand, households[cand.household_id])
            else:
                c.open_case(cand, households[cand.household_id])
        # cases that found no free meeting on an earlier night try again
        for case_id, cand, hh in c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
            "WHERE c.status = 'detected' AND c.is_open = 1 AND c.meeting_id IS NULL AND c.opened_on < ? ORDER BY c.case_id",
            (on.isoformat(),),
        ):
            before = c.result.cases_unbooked
            c.convene_case(case_id, cand, hh)
            c.result.cases_rebooked += int(c.result.cases_unbooked == before)
        # consent can be withdrawn, up to the night before the meeting: the case moves to a 支援会議
        for case_id, cand, hh in c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
            "JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.is_open = 1 AND c.conference_type = 'multi' AND m.held_on >= ? ORDER BY c.case_id",
            (on.isoformat(),),
            open_only=False,
        ):
            held_on = conn.execute(
                "SELECT m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ?",
                (case_id,),
            ).fetchone()[0]
            if choose_conference(cand, hh, c.on_iso, config, through_iso=held_on)[0] != "multi":
                c.convene_case(case_id, cand, hh, note="本人同意が撤回されたため重層的支援会議から移す。")
                c.result.consent_withdrawn += 1
        # a silo conference can let a household go (要対協 registration ended): it must not fall between
        for case_id, cand, hh in c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
            "WHERE c.status = 'routed' AND c.is_open = 1 ORDER BY c.case_id",
        ):
            if cand.flags and routing_for(conn, cand, hh, c.on_iso, config, rules) is None:
                c.convene_case(case_id, cand, hh, note="要対協等での支援が終了または範囲外となったため会議に付議。")
                c.result.cases_escalated += 1
            elif (
                not cand.flags
                and routing_for(
                    conn,
                    Candidate(hh.household_id, cand.area, c.case_flags(case_id, open_only=False)),
                    hh,
                    c.on_iso,
                    config,
                    rules,
                )
                is None
            ):
                # the silo conference let the household go and nothing is open: the case ends here
                c.log.move(case_id, "archived", "要対協等での支援が終了し、開いている課題もないため終了")
                cancel_checkpoints(c.log, case_id, "要対協等での支援が終了")
                c.result.archived += 1
    c.result.seconds = round(clock.monotonic() - started, 3)
    return c.result
