"""Open cases for newly flagged households: route, choose the conference, propose the lead, book.

One transaction per call: a crash leaves either all of a night's cases or none, and a re-run
finds the households already in an open case and does nothing twice (cases_one_open index).

The work is in candidates (which households), choose (which conference), convener (open, decide
and book a case), lead and booking, and reopening (もどし・つなぎ直し); their names used elsewhere
are imported from here too."""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.casework.steps import cancel_checkpoints
from engine.conference.candidates import Candidate, served_silos, severities_from, unhandled_flags
from engine.conference.choose import choose_conference, concerned_persons, routing_for
from engine.conference.convener import Convener, ConveneResult
from engine.config import SEVERITY_ORDER, Config
from engine.policy.dv import DV_CENTRE_SILO, locked_among
from engine.policy.members import may_share_with
from engine.rules.facts import load_households
from engine.rules.model import RuleSet
from engine.store.db import write_transaction
from engine.support import clock
from engine.triage import backlog, pathways

__all__ = [
    "Candidate",
    "ConveneResult",
    "Convener",
    "choose_conference",
    "concerned_persons",
    "convene",
    "routing_for",
    "served_silos",
    "severities_from",
    "unhandled_flags",
]


WAITING = "c.status = 'detected' AND c.is_open = 1 AND c.meeting_id IS NULL"
"""The cases (`c`) waiting for a meeting: sent to a conference when no slot was free (or left
without one). The night books them again; no other case without a meeting is the conference's
to decide (one closed under watch, suspended, or on a triage pathway). The config diff's replay
(engine/impact/config_diff.py) decides the same ones."""

TO_DISCUSS = (
    "c.is_open = 1 AND c.status NOT IN ('routed', 'assessing', 'watching') AND m.held_on >= ? "
    "AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.case_id = c.case_id AND o.meeting_id = c.meeting_id)"
)
"""The cases (`c`, in their meeting `m` joined on c.meeting_id) a meeting held on or after the day
given (the one parameter) has still to discuss: no outcome recorded there yet. A case closed,
suspended or given a plan at a meeting held that day is no longer the conference's (the lifecycle
refuses to convene a closed or suspended one). The night's re-checks of a coming meeting (consent
withdrawn, a DV lock) and the config diff's replay decide again only these."""


def lacking_dv_centre(conn: sqlite3.Connection, config: Config, on: date) -> tuple[str, tuple]:
    """The query (for Convener.recheck) of the cases a coming meeting is still to discuss (TO_DISCUSS)
    whose household is DV-locked (dv.locked_among) but that invite no DV centre that could take part."""
    on_iso = on.isoformat()
    centres = [a for a in config.agencies.values() if a.silo == DV_CENTRE_SILO]
    rows = conn.execute(
        "SELECT c.case_id, c.household_id, h.area, c.conference_type FROM cases c JOIN households h ON h.household_id = c.household_id "
        f"JOIN meetings m ON m.meeting_id = c.meeting_id WHERE {TO_DISCUSS} "
        f"AND NOT EXISTS (SELECT 1 FROM case_agencies a WHERE a.case_id = c.case_id AND a.agency_id IN ({','.join('?' * len(centres))}))",
        (on_iso, *(a.id for a in centres)),
    ).fetchall()
    locked = locked_among(conn, config, {hid for _, hid, *_ in rows}, on_iso)
    wanted = [
        case_id
        for case_id, hid, area, kind in rows
        if any(a.serves(area) and may_share_with(a, kind or "support") for a in centres) and hid in locked
    ]
    return (
        "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
        f"WHERE c.case_id IN ({','.join('?' * len(wanted))}) ORDER BY c.case_id",
        tuple(wanted),
    )


def booking_priority(rules: RuleSet, cand: Candidate, since: str) -> tuple:
    """The order in which waiting households get the meeting slots: severity, then the number of
    silos their flags touch, then how long they have waited (`since`: the earliest flag's first
    detection, or the day the case was opened), then the household id (a stable tie-break)."""
    silos = {s for f in cand.flags if f[1] in rules.flags for s in rules.flags[f[1]].silos}
    return (-SEVERITY_ORDER.index(cand.severity), -len(silos), since, cand.household_id)


def convene(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> ConveneResult:
    """Open, route or extend cases for every unhandled flag; one transaction, which reads them under
    the write lock (another `engine run` may be convening the same flags)."""
    with write_transaction(conn):
        return _convene(conn, rules, config, on)


def _convene(conn: sqlite3.Connection, rules: RuleSet, config: Config, on: date) -> ConveneResult:
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
        c.locks.read(households)  # kept: nothing in convening changes a flag or a record
        waited = dict(
            conn.execute(
                "SELECT f.flag_id, f.first_detected FROM flags f JOIN convene_ids t ON t.household_id = f.household_id "
                "WHERE f.status = 'open'"
            ).fetchall()
            if cands
            else ()
        )
        order = sorted(
            cands.values(), key=lambda k: booking_priority(rules, k, min(waited.get(f[0], "") for f in k.flags))
        )
        for cand in order:
            if cand.household_id in open_cases:
                case_id, status = open_cases[cand.household_id]
                c.add_to_open_case(case_id, status, cand, households[cand.household_id])
            else:
                c.open_case(cand, households[cand.household_id])
        # cases that found no free meeting on an earlier night try again, by the same priority
        waiting = list(
            c.recheck(
                "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
                f"WHERE {WAITING} AND c.opened_on < ? ORDER BY c.case_id",  # tonight's new cases have just tried
                (on.isoformat(),),
            )
        )
        opened = dict(conn.execute(f"SELECT c.case_id, c.opened_on FROM cases c WHERE {WAITING}").fetchall())
        waiting.sort(key=lambda w: booking_priority(rules, w[1], opened.get(w[0], "")))
        for case_id, cand, hh in waiting:
            before = c.result.cases_unbooked
            c.convene_case(case_id, cand, hh)
            c.result.cases_rebooked += int(c.result.cases_unbooked == before)
        # consent can be withdrawn, up to the night before the meeting: the case moves to a 支援会議
        # (not once that meeting has discussed it, on its day: TO_DISCUSS)
        for case_id, cand, hh in c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
            f"JOIN meetings m ON m.meeting_id = c.meeting_id WHERE {TO_DISCUSS} AND c.conference_type = 'multi' ORDER BY c.case_id",
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
        # a household DV-locked since its case was decided (a DV support measure alone, which the
        # rules may not turn into a DV flag): the DV centre is brought into its coming meeting
        for case_id, cand, hh in c.recheck(*lacking_dv_centre(conn, config, on)):
            if cand.flags:
                c.convene_case(case_id, cand, hh, note="DVロックの対象となったため、DVの相談支援機関を加えて再検討。")
        # a silo conference can let a household go (要対協 registration ended): it must not fall between
        # (a case a serving agency checks, triage's `served`, is not a silo conference's: it is checked back)
        for case_id, cand, hh in c.recheck(
            "SELECT c.case_id, c.household_id, h.area FROM cases c JOIN households h ON h.household_id = c.household_id "
            "WHERE c.status = 'routed' AND c.is_open = 1 AND COALESCE(c.pathway_rule, 'routing') IN ('routing', 'before_triage') "
            "ORDER BY c.case_id",
        ):
            if cand.flags and routing_for(conn, cand, hh, c.on_iso, config, rules, locks=c.locks) is None:
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
        # a household DV-locked since triage left its case with one agency: to a conference
        c.result.cases_escalated += pathways.locked_to_conference(c)
        # …and one a serving agency checks whose flags have all resolved ends
        c.result.archived += pathways.settle_served(c)
        # more new cases than the town can take this week: a backlog plan for the coordinator
        c.result.backlog_plan = backlog.propose_if_needed(
            conn, config, c.log, c.result.assessments_deferred, c.result.conference_overflow
        )
    c.result.seconds = round(clock.monotonic() - started, 3)
    return c.result
