"""`engine meetings` (engine/casework/listing.py): each meeting with its cases and agencies, no personal
data, and a held meeting listed while it still owes a case's outcome."""

from __future__ import annotations

import json

from engine.casework.listing import meetings
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    add_arrears,
    case,
    d,
    decide,
    open_cases,
    plan_text,
)
from tests.helpers.conference import case_of, cycle
from tests.helpers.town import ON


def test_meetings_listing_shows_cases_and_agencies(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    rows = meetings(town, cfg, ON)
    case = case_of(town, "H8050")
    row = next(r for r in rows if r.meeting_id == case["meeting"])
    item = next(c for c in row.cases if c.case_id == case["case_id"])
    assert (
        row.conference == "支援会議" and item.lead_agency_id == "houkatsu_chuo" and item.agencies[0] == "houkatsu_chuo"
    )
    assert json.dumps([r.model_dump() for r in rows], ensure_ascii=False).count("試験") == 0


def test_engine_meetings_lists_a_case_under_a_held_meeting_it_still_owes_an_outcome_for(conn, workspace, rules, cfg):
    from engine.casework.listing import meetings

    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # M1 held without outcome; the case moves to M2
    m2 = case(conn, cid)["meeting_id"]
    listed = {
        m.meeting_id: {c.case_id: c.outcome_recorded for c in m.cases}
        for m in meetings(conn, cfg, d("2026-12-07"), include_past=True)
    }
    assert listed[m1] == {cid: False} and listed[m2] == {cid: False}
    decide(conn, workspace, rules, cfg, cid, m1, d("2026-12-07"), plan_text())
    listed = {
        m.meeting_id: {c.case_id: c.outcome_recorded for c in m.cases}
        for m in meetings(conn, cfg, d("2026-12-07"), include_past=True)
    }
    assert listed[m1] == {cid: True}
