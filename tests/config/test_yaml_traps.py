"""The typing traps of YAML, told with what to write (support/yamlhints.py): a number or yes/no
where text is meant gets the quotes to add, full-width digits the half-width ones, and a union field
(`flags: [..] | any`) only the error of the member that was meant. A problem names its entry as
what it is (agency, place, figure), not as a rule. Dates in configuration files take every form
the rest of the engine accepts (support/dates.py `Day`), 和暦 included."""

from __future__ import annotations

from datetime import date

import pytest

from engine.config import ConfigInvalid, load_config
from engine.report.model import ReportInvalid, load_report
from tests.helpers.configs import configs, line_of, name, only_problem


@pytest.mark.parametrize(
    ("edit", "field", "entry", "message", "suggestion"),
    [
        (
            ("lead_rules.yaml", 'flags: ["8050", isolated_elder]', "flags: [8050, isolated_elder]"),
            "lead_rules.flags",
            "rule elder_care",
            "Input should be a valid string (got 8050)",
            'YAML reads 8050 as a number, not as text: write it in quotes, "8050"',
        ),
        (
            ("triage_rules.yaml", 'when: {flags: ["8050"]}', "when: {flags: [8050]}"),
            "triage_rules.when.flags",
            "rule care_and_hardship",
            "Input should be a valid string (got 8050)",
            'YAML reads 8050 as a number, not as text: write it in quotes, "8050"',
        ),
        (
            ("agencies.yaml", "areas: [中央, 港]", "areas: [中央, 港, no]"),
            "agencies.areas",
            "agency houkatsu_chuo",
            "Input should be a valid string (got False)",
            'YAML reads no as false, not as text: write it in quotes, "no"',
        ),
        (
            ("agencies.yaml", "    member: true\n    capacity: 40\n  - id: houkatsu_kita", None),
            "agencies.capacity",
            "agency houkatsu_chuo",
            "unable to parse string as an integer (got '４０')",
            "write the number in half-width digits: 40",
        ),
        (
            ("triage_rules.yaml", "assessments_per_week: 10", "assessments_per_week: ０"),
            "settings.assessments_per_week",
            None,
            "unable to parse string as an integer (got '０')",
            "write the number in half-width digits: 0",
        ),
    ],
)
def test_a_yaml_typing_trap_says_what_to_write(tmp_path, rules, edit, field, entry, message, suggestion):
    file, old, new = edit
    if new is None:  # the first agency's capacity only: `capacity: 40` is on every agency
        new = old.replace("capacity: 40", "capacity: ４０")
    d = configs(tmp_path, (file, old, new))
    p = only_problem(d, rules)  # one problem: for a union, not also "Input should be 'any'"
    assert (name(p), p.line, p.field) == (file, line_of(d / file, new.split("\n")[1] if "\n" in new else new), field)
    assert message in p.message
    assert p.suggestion == suggestion
    assert (f": {entry} [" if entry else f": [{field}]") in str(p)


def test_a_union_of_which_no_member_fits_still_tells_each(tmp_path, rules):
    """`flags: 8050`: neither a list nor `any`; both members' errors stay, each on the field."""
    d = configs(tmp_path, ("lead_rules.yaml", 'flags: ["8050", isolated_elder]', "flags: 8050"))
    with pytest.raises(ConfigInvalid) as err:
        load_config(d, rules)
    messages = sorted(p.message for p in err.value.problems if p.field == "lead_rules.flags")
    assert messages == ["Input should be 'any' (got 8050)", "Input should be a valid tuple (got 8050)"]


def test_a_value_that_is_no_trap_gets_no_hint(tmp_path, rules):
    d = configs(tmp_path, ("triage_rules.yaml", "assessments_per_week: 10", "assessments_per_week: ten"))
    p = only_problem(d, rules)
    assert "unable to parse string as an integer (got 'ten')" in p.message and p.suggestion is None


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ("    assured_on: 2026-10-01\n\n  - id: ibasho_minato", "R8.10.1", "assured_on", date(2026, 10, 1)),
        ("maximum: 10, updated_on: 2026-10-01}", "令和8年9月30日", "updated_on", date(2026, 9, 30)),
        ("maximum: 10, updated_on: 2026-10-01}", "20260930", "updated_on", date(2026, 9, 30)),  # an 8-digit YAML number
    ],
)
def test_dates_of_resources_yaml_take_wareki(tmp_path, rules, old, new, field, expected):
    d = configs(tmp_path, ("resources.yaml", old, old.replace("2026-10-01", new)))
    place = load_config(d, rules).participation.places["ibasho_chuo"]
    assert (place.assured_on if field == "assured_on" else place.capacity.updated_on) == expected


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [("R8.4.1", date(2026, 4, 1)), ("令和8年4月1日", date(2026, 4, 1)), ("20260401", date(2026, 4, 1))],
)
def test_report_yaml_as_of_takes_the_same_forms(tmp_path, as_of, expected):
    d = configs(tmp_path, ("report.yaml", "as_of: 2026-04-01", f"as_of: {as_of}"))
    assert load_report(d).population.as_of == expected


def test_a_date_in_no_form_says_which_forms_to_write(tmp_path):
    d = configs(tmp_path, ("report.yaml", "as_of: 2026-04-01", "as_of: 4月1日"))
    with pytest.raises(ReportInvalid) as err:
        load_report(d)
    (p,) = err.value.problems
    assert (p.line, p.field) == (line_of(d / "report.yaml", "as_of: 4月1日"), "population.as_of")
    assert "not a recognised date; accepted formats: 2024-04-01" in p.message and "R6.4.1" in p.message
