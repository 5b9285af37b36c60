"""New flags of a household that already has a case: they join an open case (which is decided
again), bring a closed or suspended case back (もどし), or open a new case linked to the
household's archived one (つなぎ直し)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from engine.casework.steps import begin_reopen, cancel_checkpoints
from engine.conference.candidates import Candidate
from engine.conference.choose import routing_for
from engine.rules.facts import Household

if TYPE_CHECKING:
    from engine.conference.convener import Convener


def archived_case(conn: sqlite3.Connection, household_id: str) -> tuple[str, str | None] | None:
    """The household's latest archived case and its lead, if any: a new case is linked to it."""
    return conn.execute(
        "SELECT case_id, lead_agency_id FROM cases WHERE household_id = ? AND status = 'archived' ORDER BY opened_on DESC, case_id DESC LIMIT 1",
        (household_id,),
    ).fetchone()


def relink(c: Convener, case_id: str, earlier: tuple[str, str | None]) -> str:
    """Record that the new case follows the archived one; the note starts its conference basis."""
    note = f"見守りを終えた事案 {earlier[0]} の世帯に新たな課題（つなぎ直し、前回の主担当機関を含める）。"
    c.log.event("relinked", case_id=case_id, reason=note, previous_case_id=earlier[0], previous_lead=earlier[1])
    c.result.relinked += 1
    return note


def add_to_open_case(c: Convener, case_id: str, status: str, cand: Candidate, hh: Household) -> None:
    """New flags of a household already in a case join that case, and the case is decided
    again with all its flags: a new lead, new participants, urgency and a meeting if needed.
    A routed case whose flags no longer lie within its silo conference gets a conference."""
    c.attach(case_id, cand.flags)
    c.result.flags_attached += len(cand.flags)
    c.log.event(
        "flags_added",
        case_id=case_id,
        reason="開いている事案に新たなフラグ" + c.rules.versions_note(cand.flag_ids),
        flags=sorted(cand.flag_ids),
    )
    everything = Candidate(cand.household_id, cand.area, c.case_flags(case_id))
    if status in ("closed", "suspended"):
        c.reopen(
            case_id,
            hh,
            "新たな課題を検知（"
            + "、".join(c.rules.flags[f].title for f in sorted(cand.flag_ids) if f in c.rules.flags)
            + "）",
        )
        return
    pathway_rule = c.conn.execute("SELECT pathway_rule FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    if status in ("assessing", "watching") or (
        status == "routed" and pathway_rule not in (None, "routing", "before_triage")
    ):
        triaged_again(c, case_id, status, everything, hh)
        return
    if status == "routed":
        routed = routing_for(c.conn, everything, hh, c.on_iso, c.config, c.rules, locks=c.locks)
        if routed:
            c.route_case(case_id, everything, *routed)  # still within its remit: the owner hears of the new flag
            return
        c.convene_case(case_id, everything, hh, note="要対協等の範囲外の課題が加わったため会議に付議。")
        c.result.cases_escalated += 1
        return
    c.convene_case(case_id, everything, hh, note="新たな課題が加わったため再検討。")


def triaged_again(c: Convener, case_id: str, status: str, everything: Candidate, hh: Household) -> None:
    """A case on a triage pathway (assessing, watching, checked by its serving agency) with a new
    flag is triaged again with all its open flags: a conference (or urgent one) takes over at once;
    otherwise an assessment under way goes on, and a watched or served case takes its new pathway."""
    from engine.triage.pathways import choose, start

    d = choose(c, case_id, everything, hh, relinked=False)
    if status == "assessing" and d.pathway not in ("urgent_conference", "conference"):
        c.log.event(
            "pathway_kept",
            case_id=case_id,
            reason="新たな課題が加わったが、アセスメントを続ける（振り分けは変わらない）",
        )
        return
    if status in ("routed", "watching"):
        cancel_checkpoints(c.log, case_id, "振り分けの見直し", ("check_back", "rescreen"))
    if status == "routed" and d.pathway not in ("urgent_conference", "conference"):
        c.log.move(case_id, "detected", "新たな課題が加わったため振り分けを見直し")  # routed → its new pathway
    start(c, case_id, everything, hh, d, note="新たな課題が加わったため再検討。", previous_lead=None, new=False)


def reopen_case(c: Convener, case_id: str, hh: Household, reason: str) -> None:
    """もどし・つなぎ直し: bring a closed (or suspended) case back and convene it again with its
    previous lead, who must accept again. Pending checkpoints, requests and actions end."""
    previous = begin_reopen(c.log, c.config, case_id, reason)
    flags = c.case_flags(case_id) or c.case_flags(case_id, open_only=False)
    area = c.conn.execute("SELECT area FROM households WHERE household_id = ?", (hh.household_id,)).fetchone()[0]
    c.convene_case(
        case_id,
        Candidate(hh.household_id, area, flags),
        hh,
        note=f"{reason}のため再開（もどし）。",
        previous_lead=previous,
    )
    c.result.reopened += 1
