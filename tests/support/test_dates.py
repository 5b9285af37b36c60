"""parse_date and to_wareki: Gregorian and 和暦 forms, era boundaries, errors."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.support.dates import ACCEPTED_FORMATS, ERAS, DateError, parse_date, to_wareki


@pytest.mark.parametrize(
    "text",
    [
        "2024-04-01",
        "2024/4/1",
        "2024/04/01",
        "2024.4.1",
        "20240401",
        "2024年4月1日",
        " 2024-04-01 ",
        "２０２４－０４－０１",
    ],
)
def test_gregorian_forms(text):
    assert parse_date(text) == date(2024, 4, 1)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("令和6年4月1日", date(2024, 4, 1)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("昭和64年1月7日", date(1989, 1, 7)),
        ("昭和元年12月25日", date(1926, 12, 25)),
        ("大正15年12月24日", date(1926, 12, 24)),
        ("大正元年7月30日", date(1912, 7, 30)),
        ("明治45年7月29日", date(1912, 7, 29)),
        ("明治元年1月25日", date(1868, 1, 25)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("令和６年４月１日", date(2024, 4, 1)),  # full-width digits
        ("令和 6年 4月 1日", date(2024, 4, 1)),
        ("令和　６年　４月　１日", date(2024, 4, 1)),  # full-width spaces
        ("令和6年4月1", date(2024, 4, 1)),
        ("㋿6年4月1日", date(2024, 4, 1)),  # one-character era sign
    ],
)
def test_kanji_eras(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("R6.4.1", date(2024, 4, 1)),
        ("R06.04.01", date(2024, 4, 1)),
        ("R6/4/1", date(2024, 4, 1)),
        ("R6-4-1", date(2024, 4, 1)),
        ("r6.4.1", date(2024, 4, 1)),
        ("Ｒ６．４．１", date(2024, 4, 1)),
        ("R1.5.1", date(2019, 5, 1)),
        ("R元.5.1", date(2019, 5, 1)),
        ("H31.4.30", date(2019, 4, 30)),
        ("H1.1.8", date(1989, 1, 8)),
        ("S64.1.7", date(1989, 1, 7)),
        ("S1.12.25", date(1926, 12, 25)),
        ("T15.12.24", date(1926, 12, 24)),
        ("T1.7.30", date(1912, 7, 30)),
        ("M45.7.29", date(1912, 7, 29)),
        ("M1.1.25", date(1868, 1, 25)),
    ],
)
def test_abbreviated_eras(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text, era, era_range",
    [
        ("H31.5.1", "平成", "1989-01-08 to 2019-04-30"),
        ("令和元年4月30日", "令和", "from 2019-05-01"),
        ("S64.1.8", "昭和", "1926-12-25 to 1989-01-07"),
        ("昭和64年1月8日", "昭和", "1926-12-25 to 1989-01-07"),
        ("H1.1.7", "平成", "1989-01-08 to 2019-04-30"),
        ("T15.12.25", "大正", "1912-07-30 to 1926-12-24"),
        ("T1.7.29", "大正", "1912-07-30 to 1926-12-24"),
        ("M45.7.30", "明治", "1868-01-25 to 1912-07-29"),
        ("M1.1.24", "明治", "1868-01-25 to 1912-07-29"),
        ("平成99年1月1日", "平成", "1989-01-08 to 2019-04-30"),
    ],
)
def test_dates_outside_their_era_are_errors(text, era, era_range):
    with pytest.raises(DateError) as e:
        parse_date(text)
    message = str(e.value)
    assert f"outside the {era}" in message
    assert era_range in message


@pytest.mark.parametrize(
    "text", ["R6.2.30", "2023-02-29", "2024/4/31", "令和6年2月30日", "R6.13.1", "20241301", "R6.0.1"]
)
def test_invalid_calendar_days(text):
    with pytest.raises(DateError, match="not a calendar date"):
        parse_date(text)


def test_year_zero_of_an_era():
    with pytest.raises(DateError, match="元年"):
        parse_date("R0.1.1")


@pytest.mark.parametrize(
    "text", ["", "   ", "abc", "2024-4", "24/4/1", "X6.4.1", "令和6年", "2024/4.1", "R6.4", "2024-04-01T00:00", "1.5e3"]
)
def test_garbage_says_what_is_accepted(text):
    with pytest.raises(DateError) as e:
        parse_date(text)
    assert ACCEPTED_FORMATS in str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("text", ["H31.5.1", "R6.2.30", "garbage-1234", "1990-13-45"])
def test_messages_never_repeat_the_input(text):
    with pytest.raises(DateError) as e:
        parse_date(text)
    assert text not in str(e.value)


def test_to_wareki_styles():
    assert to_wareki(date(2019, 5, 1)) == "令和元年5月1日"
    assert to_wareki(date(2024, 4, 1), "kanji") == "令和6年4月1日"
    assert to_wareki(date(2024, 4, 1), "abbr") == "R6.4.1"
    assert to_wareki(date(2019, 4, 30), "abbr") == "H31.4.30"
    assert to_wareki(date(1989, 1, 7), "abbr") == "S64.1.7"
    assert to_wareki(date(1989, 1, 8)) == "平成元年1月8日"
    with pytest.raises(ValueError):
        to_wareki(date(1868, 1, 24))
    with pytest.raises(ValueError):
        to_wareki(date(2024, 4, 1), "roman")  # type: ignore[arg-type]


def test_eras_are_contiguous():
    for before, after in zip(ERAS, ERAS[1:]):
        assert (after.first - before.last).days == 1


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(["kanji", "abbr"]))
def test_wareki_round_trip(d, style):
    assert parse_date(to_wareki(d, style)) == d


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_iso_round_trip(d):
    assert parse_date(d.isoformat()) == d
