"""A hand-made town for the area view, written row by row so that every figure can be counted by
hand (the counts are in tests/region/test_figures.py's docstrings). The view's day is ON
(Friday 2026-11-27); with --months 2 the window is 2026-10 (1–31) and 2026-11 (1–27).

Households: 中央 C1 C2 C3 C4 (4), 北部 N1 N2 (2).
Flags (rule, first_detected → resolved_on):
  F1 C1 8050            2026-10-01 → open
  F2 C2 8050            2026-10-05 → 2026-11-01
  F3 C2 isolated_elder  2026-11-10 → open
  F4 C3 8050            2026-08-01 → 2026-10-01   (open until 30 Sep: in neither month)
  F5 C4 isolated_elder  2026-10-26 → 2026-10-30
  F6 N1 8050            2026-11-20 → open
  F7 N2 8050            2026-11-28 → open         (after the day: not counted)
Cases (household, flag, opened_on, meetings held):
  K1 C2 F2 2026-10-05 (closed)  10-16
  K2 C1 F1 2026-10-01           10-08, 10-22
  K3 C4 F5 2026-10-26           12-03 (after the day: no conference yet)
  K4 N1 F6 2026-11-20           11-26
  K5 C2 F3 2026-11-10           11-17
Needs (case, need, recorded_on, status):
  n1 K2 social_contact 10-08 unmatched     n2 K2 social_contact 11-02 unmatched
  n3 K5 respite        11-17 open          n4 K5 role           11-25 open
  n5 K1 social_contact 10-16 open          n6 K2 social_contact 10-20 settled
  n7 K4 respite        11-26 unmatched     n8 K4 respite        11-26 unmatched
Referrals (case, need, place, status, reason, closed_on):
  r1 K1 n5  P1 declined at_capacity       11-24
  r2 K2 —   P2 declined not_eligible      10-22   (no need: the place's category, ibasho)
  r3 K5 n3  P3 declined could_not_contact 11-18
  r4 K4 n7  P3 declined at_capacity       11-25
  r5 K2 n6  P1 accepted (answered 11-05: P1's free places 2 → 1)
Places (resources.yaml):
  P1 ibasho 中央 available 2 (updated 10-28)   P2 ibasho 中央 available 0, stale
  P3 salon 北部 available 0                     P4 volunteer 中央 temporarily closed
  P5 salon 中央 inactive
"""

from __future__ import annotations

from datetime import date

from tests.helpers.matching import STALE, place
from tests.helpers.town import ON, add_household, person

MONTHS = 2
PLACES = [
    place("P1", "ibasho", area="中央", available=2, updated_on=date(2026, 10, 28)),
    place("P2", "ibasho", area="中央", available=0, assured_on=STALE),
    place("P3", "salon", area="北部", available=0),
    place("P4", "volunteer", area="中央", status="temporarily_closed"),
    place("P5", "salon", area="中央", status="inactive"),
]


def _flag(conn, fid, hid, rule, detected, resolved=None):
    conn.execute(
        "INSERT INTO flags (flag_id, household_id, rule_id, rule_version, severity, status, first_detected, "
        "last_confirmed, resolved_on, run_id, evidence) VALUES (?,?,?,1,'high',?,?,?,?,1,'{}')",
        (fid, hid, rule, "resolved" if resolved else "open", detected, resolved or detected, resolved),
    )


def _case(conn, cid, hid, fid, opened, held, *, is_open=1):
    conn.execute(
        "INSERT INTO cases (case_id, household_id, status, is_open, opened_on, severity, conference_basis, "
        "rules_hash, config_hash) VALUES (?,?,'detected',?,?,'high','test','r','c')",
        (cid, hid, is_open, opened),
    )
    conn.execute("INSERT INTO case_flags VALUES (?,?,?)", (cid, fid, opened))
    for day in held:
        mid = f"M-{day}-{cid}"
        conn.execute(
            "INSERT INTO meetings (meeting_id, conference_type, held_on, start_time, place, capacity) "
            "VALUES (?, 'support', ?, ?, '会議室', 8)",
            (mid, day, f"1{len(cid)}:{cid[-1]}0"),
        )
        conn.execute("INSERT INTO case_meetings VALUES (?,?)", (cid, mid))


def _need(conn, nid, cid, need, recorded, status, person_id="P-1"):
    conn.execute(
        "INSERT INTO participation_needs (need_id, case_id, person_id, need, recorded_on, status) VALUES (?,?,?,?,?,?)",
        (nid, cid, person_id, need, recorded, status),
    )


def _referral(conn, rid, cid, nid, place_id, status, reason=None, closed=None, answered=None):
    conn.execute(
        "INSERT INTO referrals (referral_id, case_id, need_id, person_id, place_id, introduced_by, consent, channel, "
        "status, requested_on, answer_due) VALUES (?,?,?,'P-1',?,'houkatsu_chuo',1,'place','requested','2026-10-01','2026-10-15')",
        (rid, cid, nid, place_id),
    )
    conn.execute(
        "UPDATE referrals SET status = ?, reason = ?, closed_on = ?, answered_on = ? WHERE referral_id = ?",
        (status, reason, closed, answered or closed, rid),
    )


def build(conn, *, central: str = "中央") -> None:
    """The town above; `central` renames the area 中央 (a hostile name for the escaping tests)."""
    for hid in ("C1", "C2", "C3", "C4"):
        add_household(conn, hid, person(70), area=central)
    for hid in ("N1", "N2"):
        add_household(conn, hid, person(70), area="北部")
    _flag(conn, 1, "C1", "8050", "2026-10-01")
    _flag(conn, 2, "C2", "8050", "2026-10-05", "2026-11-01")
    _flag(conn, 3, "C2", "isolated_elder", "2026-11-10")
    _flag(conn, 4, "C3", "8050", "2026-08-01", "2026-10-01")
    _flag(conn, 5, "C4", "isolated_elder", "2026-10-26", "2026-10-30")
    _flag(conn, 6, "N1", "8050", "2026-11-20")
    _flag(conn, 7, "N2", "8050", "2026-11-28")
    _case(conn, "K1", "C2", 2, "2026-10-05", ["2026-10-16"], is_open=0)
    _case(conn, "K2", "C1", 1, "2026-10-01", ["2026-10-08", "2026-10-22"])
    _case(conn, "K3", "C4", 5, "2026-10-26", ["2026-12-03"])
    _case(conn, "K4", "N1", 6, "2026-11-20", ["2026-11-26"])
    _case(conn, "K5", "C2", 3, "2026-11-10", ["2026-11-17"])
    _need(conn, 1, "K2", "social_contact", "2026-10-08", "unmatched")
    _need(conn, 2, "K2", "social_contact", "2026-11-02", "unmatched")
    _need(conn, 3, "K5", "respite", "2026-11-17", "open")
    _need(conn, 4, "K5", "role", "2026-11-25", "open")
    _need(conn, 5, "K1", "social_contact", "2026-10-16", "open")
    _need(conn, 6, "K2", "social_contact", "2026-10-20", "settled")
    _need(conn, 7, "K4", "respite", "2026-11-26", "unmatched")
    _need(conn, 8, "K4", "respite", "2026-11-26", "unmatched", person_id="P-2")
    _referral(conn, 1, "K1", 5, "P1", "declined", "at_capacity", "2026-11-24")
    _referral(conn, 2, "K2", None, "P2", "declined", "not_eligible", "2026-10-22")
    _referral(conn, 3, "K5", 3, "P3", "declined", "could_not_contact", "2026-11-18")
    _referral(conn, 4, "K4", 7, "P3", "declined", "at_capacity", "2026-11-25")
    _referral(conn, 5, "K2", 6, "P1", "accepted", answered="2026-11-05")
    conn.commit()


__all__ = ["MONTHS", "ON", "PLACES", "build"]
