"""Business days: weekends, national holidays and the municipality's closed days (年末年始 by default,
configurable in conference.yaml) are skipped; Calendar.add counts business days."""

from datetime import date, timedelta

from engine.config import load_config
from engine.support.business_days import Calendar
from tests.helpers.configs import configs


def test_national_holidays_are_closed():
    cal = Calendar()
    assert cal.closed_reason(date(2026, 11, 23)) == "勤労感謝の日"
    assert cal.closed_reason(date(2027, 1, 11)) == "成人の日"
    assert not cal.is_business_day(date(2026, 11, 23)) and not cal.is_business_day(date(2027, 1, 11))
    assert cal.is_business_day(date(2026, 11, 24)) and cal.is_business_day(date(2027, 1, 12))


def test_weekends_are_closed():
    cal = Calendar()
    assert cal.closed_reason(date(2026, 11, 21)) == "土曜日"
    assert cal.closed_reason(date(2026, 11, 22)) == "日曜日"


def test_year_end_closure_wraps_across_the_year():
    cal = Calendar()  # default 12-29..01-03
    assert cal.is_business_day(date(2026, 12, 28))
    for d in (date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 2), date(2027, 1, 3)):
        assert not cal.is_business_day(d), d
    assert cal.closed_reason(date(2026, 12, 30)) == "閉庁日（年末年始等）"
    assert cal.closed_reason(date(2027, 1, 1)) == "元日"  # a holiday is named as such
    assert cal.is_business_day(date(2027, 1, 4))
    assert cal.is_business_day(date(2026, 6, 15)) and cal.is_business_day(date(2026, 1, 5))


def test_configured_single_date_and_month_day_closures():
    cal = Calendar(("12-29..01-03", "2027-01-04", "05-01", "08-13..08-14"))
    assert cal.closed_reason(date(2027, 1, 4)) == "閉庁日"
    assert cal.is_business_day(date(2028, 1, 4))  # a YYYY-MM-DD closure is one day only
    assert cal.closed_reason(date(2026, 5, 1)) == "閉庁日（年末年始等）"
    assert not cal.is_business_day(date(2026, 8, 13)) and not cal.is_business_day(date(2026, 8, 14))
    assert cal.is_business_day(date(2026, 8, 12)) and cal.is_business_day(date(2026, 8, 17))
    assert cal.add(date(2026, 12, 28), 1) == date(2027, 1, 5)


def test_no_closed_days_keeps_year_end_open():
    cal = Calendar(())
    assert cal.is_business_day(date(2026, 12, 29)) and cal.is_business_day(date(2026, 12, 30))


def test_calendar_of_loaded_conference(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", '  - "12-29..01-03"', '  - "12-29..01-03"\n  - "2027-01-04"'))
    cal = Calendar.of(load_config(d, rules).conference)
    assert not cal.is_business_day(date(2027, 1, 4)) and not cal.is_business_day(date(2026, 12, 31))


def test_add_skips_weekends_holidays_and_closures():
    cal = Calendar()
    assert cal.add(date(2026, 12, 25), 1) == date(2026, 12, 28)  # Fri -> Mon
    assert cal.add(date(2026, 12, 28), 1) == date(2027, 1, 4)  # over 年末年始
    assert cal.add(date(2026, 11, 20), 1) == date(2026, 11, 24)  # Fri -> Tue (Mon 23 勤労感謝の日)
    assert cal.add(date(2027, 1, 8), 1) == date(2027, 1, 12)  # Fri -> Tue (Mon 11 成人の日)
    assert cal.add(date(2026, 11, 16), 5) == date(2026, 11, 24)
    assert cal.add(date(2026, 11, 21), 1) == date(2026, 11, 24)  # from a Saturday


def test_add_zero_is_the_day_itself_or_the_next_business_day():
    cal = Calendar()
    assert cal.add(date(2026, 11, 24), 0) == date(2026, 11, 24)
    assert cal.add(date(2026, 11, 21), 0) == date(2026, 11, 24)  # Sat -> (Sun, holiday Mon) -> Tue
    assert cal.add(date(2026, 12, 29), 0) == date(2027, 1, 4)


def test_one_calendar_per_configuration_keeps_its_answers_and_gives_the_same_ones(tmp_path, rules):
    shipped = load_config(configs(tmp_path), rules).conference
    other = shipped.model_copy(update={"closed_days": ("12-29..01-03", "2027-05-06")})
    assert Calendar.of(shipped) is Calendar.of(shipped) and Calendar.of(other) is not Calendar.of(shipped)
    fresh = Calendar(("12-29..01-03", "2027-05-06"))
    days = [date(2026, 12, 25) + timedelta(days=i) for i in range(200)]
    for _ in range(2):  # the second time from what the calendar kept
        assert [Calendar.of(other).closed_reason(d) for d in days] == [fresh._reason(d) for d in days]
    assert Calendar.of(other).closed_reason(date(2027, 5, 6)) == "閉庁日"
    assert Calendar.of(shipped).closed_reason(date(2027, 5, 6)) is None
