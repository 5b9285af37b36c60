"""A small town whose national figures are counted by hand (see SmallTown's docstring)."""

from __future__ import annotations

from datetime import date

import pytest

from engine.report.figures import Context
from engine.store.lifecycle import Log
from tests.helpers.town import add_household, person


def _case(conn, case_id: str, hid: str, opened_on: str) -> None:
    conn.execute(
        "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_basis, rules_hash, "
        "config_hash) VALUES (?, ?, 'detected', ?, 'medium', 'テスト', 'r', 'c')",
        (case_id, hid, opened_on),
    )


def _meeting(conn, meeting_id: str, kind: str, held_on: str, *outcomes: tuple[str, str]) -> None:
    conn.execute(
        "INSERT INTO meetings (meeting_id, conference_type, held_on, start_time, place, capacity) "
        "VALUES (?, ?, ?, '14:00', '会議室', 8)",
        (meeting_id, kind, held_on),
    )
    for case_id, decision in outcomes:
        conn.execute("INSERT INTO case_meetings VALUES (?, ?)", (case_id, meeting_id))
        conn.execute(
            "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, NULL, NULL, '{}')",
            (case_id, meeting_id, held_on, held_on, decision),
        )


def _referral(conn, case_id, person_id, place_id, requested, *moves: tuple[str, str]) -> None:
    """moves: (status, day); an answer sets answered_on, a final state closed_on."""
    cur = conn.execute(
        "INSERT INTO referrals (case_id, person_id, place_id, introduced_by, consent, channel, status, "
        "requested_on, answer_due) VALUES (?, ?, ?, 'hokatsu_chuo', 1, 'place', 'requested', ?, ?)",
        (case_id, person_id, place_id, requested, requested),
    )
    for status, day in moves:
        answered = day if status in ("accepted", "declined", "waitlisted") else None
        closed = day if status in ("declined", "cancelled", "ended") else None
        conn.execute(
            "UPDATE referrals SET status = ?, answered_on = COALESCE(?, answered_on), closed_on = ? "
            "WHERE referral_id = ?",
            (status, answered, closed, cur.lastrowid),
        )


def _checkpoint(conn, case_id, kind, asked_on) -> int:
    return conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status, asked_on) VALUES (?, ?, '2026-04-01', ?, ?)",
        (case_id, kind, "asked" if asked_on else "pending", asked_on),
    ).lastrowid


class SmallTown:
    """Five households, five cases; March 2027 is the month, 令和8年度 (2026-04-01〜2027-03-31) the year.

    cases opened: C1 2027-03-02, C2 2027-03-15, C3 2026-11-10, C4 2027-04-01 (next year), C5 2026-03-31 (last year)
        new_cases            March {C1, C2} = 2                       year {C1, C2, C3} = 3
    meetings (outcomes):  MS1 support 2027-03-05 (C1 plan); MS2 support 2027-03-20 (booked, no outcome);
        MM1 multi 2027-03-25 (C1 plan, C3 continue); MM2 multi 2026-12-01 (C3 plan); MS3 support 2027-04-02 (C4 plan)
        support_meetings     March {MS1} = 1                          year {MS1} = 1
        multi_meetings       March {MM1} = 1                          year {MM1, MM2} = 2
        cases_discussed      March {C1, C3} = 2                       year {C1, C3} = 2
        plans                March C1@MS1, C1@MM1 = 2                 year + C3@MM2 = 3
    referrals (places: ibasho_chuo 居場所, salon_chuo サロン, shuro_chuo 就労体験; ibasho_kita inactive):
        R1 C1 P1a ibasho_chuo req 03-03, accepted 03-08, attending
        R2 C1 P1a shuro_chuo  req 03-04, declined 03-09
        R3 C3 P3a salon_chuo  req 2026-12-02, accepted 12-10, ended 2027-02-15
        R4 C2 P2a salon_chuo  req 03-16, cancelled 03-17
        R5 C3 P3b shuro_chuo  req 03-20, accepted 03-25
        participation_persons  March {P1a, P3b} = 2 (R4 cancelled)    year {P1a, P3a, P3b} = 3
        cooperating_places     March {ibasho_chuo, shuro_chuo} = 2    year + salon_chuo = 3
        listed_places          {ibasho_chuo, salon_chuo, shuro_chuo} = 3 (any period)
        community_hubs         {ibasho_chuo, salon_chuo} = 2 (any period)
        community_participants March {P1a} = 1 (R3 ended before March) year {P1a, P3a} = 2; February {P3a} = 1
    checkpoints: assessment C2 asked 03-16 and 03-25, C3 asked 2026-11-12, C4 pending; check_back C1 asked 03-10
        outreach             March 2                                  year 3
    audit: relinked C1 03-02, reopened C3 03-10 and 2027-01-20, closed C1 03-05, relinked C5 2026-03-30
        relinks              March 2                                  year 3
    February 2027: every figure 0 but listed_places 3, community_hubs 2, community_participants 1, relinks 0.
    """

    MARCH = {
        "new_cases": 2,
        "support_meetings": 1,
        "multi_meetings": 1,
        "cases_discussed": 2,
        "plans": 2,
        "participation_persons": 2,
        "cooperating_places": 2,
        "listed_places": 3,
        "community_hubs": 2,
        "community_participants": 1,
        "outreach": 2,
        "relinks": 2,
    }
    YEAR = MARCH | {
        "new_cases": 3,
        "multi_meetings": 2,
        "plans": 3,
        "participation_persons": 3,
        "cooperating_places": 3,
        "community_participants": 2,
        "outreach": 3,
        "relinks": 3,
    }
    FEBRUARY_NONZERO = {"listed_places": 3, "community_hubs": 2, "community_participants": 1}


@pytest.fixture
def small_town(conn, cfg):
    members = {}
    for n in range(1, 6):
        a, b = person(70, "世帯主", pid=f"P{n}a"), person(40, "子", pid=f"P{n}b")
        add_household(conn, f"H{n}", a, b)
        members[n] = (a, b)
    for case_id, hid, opened in (
        ("C1", "H1", "2027-03-02"),
        ("C2", "H2", "2027-03-15"),
        ("C3", "H3", "2026-11-10"),
        ("C4", "H4", "2027-04-01"),
        ("C5", "H5", "2026-03-31"),
    ):
        _case(conn, case_id, hid, opened)
    _meeting(conn, "MS1", "support", "2027-03-05", ("C1", "plan"))
    _meeting(conn, "MS2", "support", "2027-03-20")
    conn.execute("INSERT INTO case_meetings VALUES ('C2', 'MS2')")
    _meeting(conn, "MM1", "multi", "2027-03-25", ("C1", "plan"), ("C3", "continue"))
    _meeting(conn, "MM2", "multi", "2026-12-01", ("C3", "plan"))
    _meeting(conn, "MS3", "support", "2027-04-02", ("C4", "plan"))
    _referral(conn, "C1", "P1a", "ibasho_chuo", "2027-03-03", ("accepted", "2027-03-08"), ("attending", "2027-03-12"))
    _referral(conn, "C1", "P1a", "shuro_chuo", "2027-03-04", ("declined", "2027-03-09"))
    _referral(conn, "C3", "P3a", "salon_chuo", "2026-12-02", ("accepted", "2026-12-10"), ("ended", "2027-02-15"))
    _referral(conn, "C2", "P2a", "salon_chuo", "2027-03-16", ("cancelled", "2027-03-17"))
    _referral(conn, "C3", "P3b", "shuro_chuo", "2027-03-20", ("accepted", "2027-03-25"))
    outreach = {
        "march": [
            _checkpoint(conn, "C2", "assessment", "2027-03-16"),
            _checkpoint(conn, "C2", "assessment", "2027-03-25"),
        ],
        "november": _checkpoint(conn, "C3", "assessment", "2026-11-12"),
    }
    _checkpoint(conn, "C4", "assessment", None)
    _checkpoint(conn, "C1", "check_back", "2027-03-10")
    for day, event, case_id, to in (
        ("2027-03-02", "relinked", "C1", None),
        ("2027-03-10", "transition", "C3", "reopened"),
        ("2027-01-20", "transition", "C3", "reopened"),
        ("2027-03-05", "transition", "C1", "closed"),
        ("2026-03-30", "relinked", "C5", None),
    ):
        Log(conn, date.fromisoformat(day), "tester").event(event, case_id=case_id, to_status=to, reason="テスト")
    conn.commit()
    places = {p: cfg.participation.places[p] for p in ("ibasho_chuo", "salon_chuo", "shuro_chuo")}
    places["ibasho_kita"] = cfg.participation.places["ibasho_kita"].model_copy(update={"status": "inactive"})
    town = SmallTown()
    town.ctx = Context(conn, places, ("ibasho", "salon"))
    town.outreach = outreach
    return town
