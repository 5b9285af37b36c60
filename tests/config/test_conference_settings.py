"""conference.yaml as load_config checks it: routing, discussion points, locked flags, meeting slots and
their times, extra meetings, closed days, numbers in range, the local names of the two conferences."""

from datetime import time

import pytest

from engine.config import load_config
from tests.helpers.configs import configs, line_of, name, only_problem, problems


def test_routing_with_unknown_owner_kind(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "owner_kind: こども家庭センター", "owner_kind: こども家庭センタ"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "owner_kind:"),
        "routing.owner_kind",
    )
    assert "no agency of kind 'こども家庭センタ' in agencies.yaml" in p.message
    assert p.suggestion == "did you mean 'こども家庭センター'?"


def test_routing_with_unknown_record_code(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "code: yotaikyo_registered", "code: yotaikyo_registerd"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "code: yotaikyo_registerd"),
        "routing.code",
    )
    assert "unknown record code 'yotaikyo_registerd'" in p.message
    assert "did you mean 'yotaikyo_registered'?" in p.message  # the hint is part of the message here


def test_discussion_by_flag_with_unknown_flag(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "  hikikomori: [", "  hikikomor: ["))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "hikikomor:"),
        "discussion_by_flag.hikikomor",
    )
    assert p.message == "unknown flag 'hikikomor'" and p.suggestion == "did you mean 'hikikomori'?"


def test_locked_flags_with_unknown_flag(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "locked_flags: [dv]", "locked_flags: [dv, d_v]"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "locked_flags:"),
        "locked_flags",
    )
    assert p.message == "unknown flag 'd_v'" and p.suggestion == "did you mean 'dv'?"


def test_locked_flag_on_its_own_line(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "locked_flags: [dv]", "locked_flags:\n  - dv\n  - child_rsk"))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "- child_rsk"), "locked_flags")
    assert p.suggestion == "did you mean 'child_risk'?"


def test_slot_with_unknown_weekday(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "weekday: 金,", "weekday: 金曜,"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "金曜"),
        "slots.support.weekday",
    )
    assert "unknown weekday '金曜'" in p.message


def test_slot_weekday_in_english_any_case(tmp_path, rules):
    config = load_config(configs(tmp_path, ("conference.yaml", "weekday: 金,", "weekday: Fri,")), rules)
    assert [s.weekday_number for s in config.conference.slots["support"]] == [1, 4]


def test_slots_for_one_conference_type_missing(tmp_path, rules):
    d = configs(
        tmp_path,
        ("conference.yaml", '  multi:\n    - {weekday: 木, time: "14:00", place: 福祉センター 2階 研修室}\n', ""),
    )
    p = only_problem(d, rules)
    assert name(p) == "conference.yaml"
    assert "slots.multi: list at least one meeting slot" in p.message


def test_slots_missing_names_the_slots_line_and_field(tmp_path, rules):
    d = configs(
        tmp_path,
        ("conference.yaml", '  multi:\n    - {weekday: 木, time: "14:00", place: 福祉センター 2階 研修室}\n', ""),
    )
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "slots:"), "slots.multi")


def test_slots_only_on_weekends(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "weekday: 木,", "weekday: 土,"))
    p = only_problem(d, rules)
    assert (
        "is a weekend day" in p.message
        and p.field == "slots.multi.weekday"
        and p.line == line_of(d / "conference.yaml", "weekday: 土,")
    )


def test_unknown_field_in_extra_meeting_suggests(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", '{time: "16:00", place:', '{time: "16:00", plase:'))
    ps = problems(d, rules)
    p = next(p for p in ps if "unknown field" in p.message)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "plase:"), "extra_meeting.plase")
    assert p.suggestion == "did you mean 'place'?"


def test_unknown_field_in_a_slot_suggests(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "{weekday: 金, time:", "{weekday: 金, tme:"))
    p = next(p for p in problems(d, rules) if "unknown field" in p.message)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "tme:"), "slots.support.tme")
    assert p.suggestion == "did you mean 'time'?"


def test_unquoted_slot_time_is_still_hh_mm(tmp_path, rules):
    # YAML 1.1 reads 14:00 as the sexagesimal number 840
    d = configs(
        tmp_path,
        ("conference.yaml", 'weekday: 木, time: "14:00"', "weekday: 木, time: 14:00"),
        ("conference.yaml", '{time: "16:00"', "{time: 16:00"),
    )
    config = load_config(d, rules)
    assert config.conference.slots["multi"][0].time == time(14, 0)
    assert config.conference.extra_meeting.time == time(16, 0)
    assert config.conference.slots["multi"][0].time.strftime("%H:%M") == "14:00"


def test_quoted_slot_time_out_of_range(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", 'weekday: 木, time: "14:00"', 'weekday: 木, time: "25:30"'))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "25:30"), "slots.multi.time")


@pytest.mark.parametrize("unquoted", ["24:00", "25:30"])
def test_unquoted_slot_time_out_of_range_is_a_problem(tmp_path, rules, unquoted):
    d = configs(tmp_path, ("conference.yaml", 'weekday: 木, time: "14:00"', f"weekday: 木, time: {unquoted}"))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", unquoted), "slots.multi.time")


@pytest.mark.parametrize(
    "entry", ["13-01", "12-29..01-32", "02-30", "12-29..01-03..01-05", "2027-02-30", "2027-1-4", "holidays"]
)
def test_invalid_closed_day(tmp_path, rules, entry):
    d = configs(tmp_path, ("conference.yaml", '  - "12-29..01-03"', f'  - "12-29..01-03"\n  - "{entry}"'))
    p = only_problem(d, rules)
    # each entry is checked on its own, so the problem points at the bad entry's line
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", f'"{entry}"'),
        "closed_days",
    )
    assert f"closed day '{entry}' must be MM-DD, MM-DD..MM-DD" in p.message


def test_valid_closed_days(tmp_path, rules):
    d = configs(
        tmp_path,
        (
            "conference.yaml",
            '  - "12-29..01-03"',
            '  - "12-29..01-03"\n  - "02-29"\n  - "08-13..08-15"\n  - "2027-01-04"',
        ),
    )
    assert load_config(d, rules).conference.closed_days == ("12-29..01-03", "02-29", "08-13..08-15", "2027-01-04")


def test_unquoted_closed_date_is_accepted_as_the_date_it_reads_as(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", '  - "12-29..01-03"', '  - "12-29..01-03"\n  - 2027-01-04'))
    assert load_config(d, rules).conference.closed_days == ("12-29..01-03", "2027-01-04")


def test_a_number_as_closed_day_is_reported_on_its_line(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", '  - "12-29..01-03"', '  - "12-29..01-03"\n  - 1229'))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (
        line_of(d / "conference.yaml", "- 1229"),
        "closed_days",
    ) and "must be text" in p.message


def test_conference_numbers_in_range(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "cases_per_meeting: 8", "cases_per_meeting: 0"))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "conference.yaml", "cases_per_meeting"), "cases_per_meeting")
    assert "(got 0)" in p.message


@pytest.mark.parametrize("escape", ["\\n", "\\r", "\\u2028", "\\x85"])
def test_a_line_break_in_a_conference_name_or_place_is_refused(tmp_path, rules, escape):
    """Names and places go into e-mail subjects and .ics invitations: a line break there could
    add a header (a recipient), so `engine config check` refuses it where it is written."""
    d = configs(
        tmp_path, ("conference.yaml", "  support: 支援会議 ", f'  support: "支援会議{escape}Bcc: x@evil.example" ')
    )
    p = only_problem(d, rules)
    assert (name(p), p.field) == ("conference.yaml", "names.support") and "one line" in p.message


def test_a_local_name_for_one_conference_type_keeps_the_other(tmp_path, rules):
    d = configs(tmp_path)
    text = (d / "conference.yaml").read_text(encoding="utf-8")
    start = text.index("names:")
    end = text.index("\n", text.index("multi:", start))
    (d / "conference.yaml").write_text(
        text[:start] + "names:\n  support: みどり市支援会議" + text[end:], encoding="utf-8"
    )
    from engine.config import load_config

    names = load_config(d, rules).conference.names
    assert names == {"support": "みどり市支援会議", "multi": "重層的支援会議"}
