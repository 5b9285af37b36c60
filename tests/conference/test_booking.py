"""Booking a case into a meeting (engine/conference/booking.py): the first free slot on a business day
far enough ahead, the nearest slot within two business days for an urgent case (a meeting added
when none is free), meetings filled up to the configured number, a case waiting for a free slot."""

from __future__ import annotations

from datetime import date

from engine.conference.booking import Booker
from engine.conference.convene import convene
from engine.screening.screen import screen
from tests.helpers.conference import case_of
from tests.helpers.town import ON, add_household, elder_and_son, person


def test_normal_case_skips_a_holiday_slot(conn, cfg):
    # 2026-10-26 (Mon) + 5 business days = 11-02 (Mon); Tue 11-03 is 文化の日 → Fri 11-06 10:00
    m = Booker(conn, cfg, date(2026, 10, 26)).book("support", urgent=False)
    assert (m.held_on, m.start_time) == (date(2026, 11, 6), "10:00")


def test_normal_case_skips_the_new_year_closure(conn, cfg):
    # 2026-12-22 (Tue) + 5 business days: 23, 24, 25, 28, then 12/29-1/3 closed → 2027-01-04; first slot Tue 01-05
    m = Booker(conn, cfg, date(2026, 12, 22)).book("support", urgent=False)
    assert m.held_on == date(2027, 1, 5) and m.meeting_id == "M-20270105-1400-S"


def test_meetings_fill_up_to_the_configured_number_of_cases(conn, cfg):
    b = Booker(conn, cfg, ON)
    ids = [b.book("support", urgent=False).meeting_id for _ in range(cfg.conference.cases_per_meeting + 1)]
    assert len(set(ids[:-1])) == 1 and ids[-1] != ids[0]


def test_urgent_case_takes_the_nearest_slot_within_two_business_days(conn, cfg):
    # Fri 2026-11-27: the window is Mon 11-30 and Tue 12-01; the Tuesday 14:00 支援会議 slot is in it
    m = Booker(conn, cfg, ON).book("support", urgent=True)
    assert m.meeting_id == "M-20261201-1400-S" and not m.added_for_urgent


def test_urgent_case_adds_a_meeting_when_no_slot_is_near(conn, cfg):
    # 重層的支援会議 meets on Thursdays: nothing in Mon 11-30..Tue 12-01 → a meeting is added on Monday 16:00
    b = Booker(conn, cfg, ON)
    m = b.book("multi", urgent=True)
    assert m.added_for_urgent and m.held_on == date(2026, 11, 30) and m.start_time == "16:00"
    for _ in range(cfg.conference.cases_per_meeting - 1):
        assert b.book("multi", urgent=True).meeting_id == m.meeting_id
    assert b.book("multi", urgent=True).held_on == date(2026, 12, 1)  # full → the next day in the window


def test_urgent_booking_over_new_year_stays_on_business_days(conn, cfg):
    b = Booker(conn, cfg, date(2026, 12, 28))
    m = b.book("support", urgent=True)  # 12/29-1/3 closed: window Mon 1/4, Tue 1/5 → the Tuesday slot
    assert m.meeting_id == "M-20270105-1400-S" and not m.added_for_urgent
    m = b.book("multi", urgent=True)  # no Thursday in the window → added on Monday 1/4
    assert m.held_on == date(2027, 1, 4) and m.added_for_urgent


def test_extra_meetings_of_both_types_do_not_share_the_room_at_the_same_time(conn, cfg):
    b = Booker(conn, cfg, date(2026, 12, 28))  # window 1/4, 1/5: no Thursday, and Tuesday's slot is filled first
    for _ in range(cfg.conference.cases_per_meeting):
        b.book("support", urgent=True)  # fills Tue 1/5 14:00
    s = b.book("support", urgent=True)  # → an added meeting on Mon 1/4 16:00
    m = b.book("multi", urgent=True)  # → added on Mon 1/4, but not at 16:00 in the same room
    assert (s.held_on, s.start_time, s.added_for_urgent) == (date(2027, 1, 4), "16:00", True)
    assert m.held_on == date(2027, 1, 4) and m.start_time == "17:30" and m.added_for_urgent


def test_a_case_without_a_free_slot_waits_and_is_booked_later(conn, workspace, rules, cfg, monkeypatch):
    import engine.conference.booking

    add_household(conn, "H8050", *elder_and_son())
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    monkeypatch.setattr(engine.conference.booking, "HORIZON_DAYS", 3)  # nothing within reach for a normal case
    screen(conn, workspace, rules, ON)
    first = convene(conn, rules, cfg, ON)
    assert first.cases_unbooked == 1 and first.cases_opened == 2  # the urgent one still got its meeting
    waiting = case_of(conn, "H8050")
    assert (
        waiting["status"] == "detected" and waiting["meeting"] is None and "会議に予約できていない" in waiting["basis"]
    )
    assert case_of(conn, "HDV")["meeting"] is not None
    monkeypatch.setattr(engine.conference.booking, "HORIZON_DAYS", 3 * 366)
    later = convene(conn, rules, cfg, date(2026, 11, 30))
    assert later.cases_rebooked == 1 and case_of(conn, "H8050")["status"] == "convened"
