"""`load_config`: the four configuration files (agencies, conference, lead rules, mail) are checked
like the rules — every problem names file, line, field and, where possible, a suggestion, and
every problem of every file is reported at once. Also the business-day calendar."""

import shutil
from datetime import date, time
from pathlib import Path

import pytest

from engine.config.files import ConfigInvalid, load_config
from engine.rules.loader import RulesInvalid
from engine.support.business_days import Calendar
from tests.conftest import ROOT

# ---------------------------------------------------------------- helpers


def configs(tmp_path: Path, *edits: tuple[str, str, str], delete: tuple[str, ...] = (), under: str = "configs") -> Path:
    """Copy the shipped configs/ into tmp_path and apply text edits (file, old, new).

    `old` must occur exactly once, so that an edit can never silently hit a comment instead."""
    d = tmp_path / under
    shutil.copytree(ROOT / "configs", d)
    for name, old, new in edits:
        p = d / name
        text = p.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{name}: {old!r} occurs {text.count(old)} times"
        p.write_text(text.replace(old, new), encoding="utf-8")
    for name in delete:
        (d / name).unlink()
    return d


def line_of(path: Path, fragment: str) -> int:
    """1-based line number of the only line of `path` containing `fragment`."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line]
    assert len(hits) == 1, f"{path.name}: {fragment!r} on lines {hits}"
    return hits[0]


def problems(d: Path, rules) -> list:
    with pytest.raises(ConfigInvalid) as exc:
        load_config(d, rules)
    return exc.value.problems


def only_problem(d: Path, rules):
    ps = problems(d, rules)
    assert len(ps) == 1, [str(p) for p in ps]
    return ps[0]


def name(p) -> str:
    return Path(p.file).name


# ---------------------------------------------------------------- the shipped configuration


def test_shipped_configs_load(rules):
    config = load_config(ROOT / "configs", rules)
    assert len(config.agencies) == 12
    members = {a for a, ag in config.agencies.items() if ag.member}
    non_members = set(config.agencies) - members
    assert {"houkatsu_chuo", "kodomo_center", "jiritsu_soudan", "dv_center"} <= members
    assert non_members == {"soudan_jigyosho_hikari", "hikikomori_npo"}
    assert config.agencies["kodomo_center"].serves("南部")  # 全域
    assert config.agencies["houkatsu_chuo"].serves("港") and not config.agencies["houkatsu_chuo"].serves("北部")
    support = [(s.weekday, s.time) for s in config.conference.slots["support"]]
    multi = [(s.weekday, s.time) for s in config.conference.slots["multi"]]
    assert support == [("火", time(14, 0)), ("金", time(10, 0))]
    assert multi == [("木", time(14, 0))]
    assert config.conference.closed_days == ("12-29..01-03",)
    assert config.conference.extra_meeting.time == time(16, 0)
    assert [r.id for r in config.lead_rules][-1] == "fallback" and config.lead_rules[-1].flags == "any"
    assert config.mail.transport == "file"
    assert config.name_of("support") == "支援会議" and config.name_of("multi") == "重層的支援会議"
    assert len(config.hash) == 16 and config.hash == load_config(ROOT / "configs", rules).hash


def test_a_copy_loads_and_an_edit_changes_the_hash(tmp_path, rules):
    shipped = load_config(ROOT / "configs", rules)
    copy = load_config(configs(tmp_path), rules)
    assert copy.hash == shipped.hash
    changed = load_config(
        configs(tmp_path / "b", ("conference.yaml", "cases_per_meeting: 8", "cases_per_meeting: 9")), rules
    )
    assert changed.hash != shipped.hash and changed.conference.cases_per_meeting == 9


def test_config_invalid_is_rules_invalid_and_prints_every_problem(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "\ntransport: file\n", "\ntransport: fax\n"))
    with pytest.raises(RulesInvalid) as exc:
        load_config(d, rules)
    assert isinstance(exc.value, ConfigInvalid)
    line = line_of(d / "mail.yaml", "transport: fax")
    assert f"mail.yaml:{line}: [transport]" in str(exc.value)


# ---------------------------------------------------------------- YAML-level problems


def test_yaml_syntax_error_names_the_line(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "    name: 北部地域包括支援センター", "    name: 北部: センター"))
    p = only_problem(d, rules)
    assert name(p) == "agencies.yaml"
    assert p.line == line_of(d / "agencies.yaml", "北部: センター")
    assert "YAML syntax error" in p.message and "mapping values are not allowed" in p.message
    assert "indentation" in p.suggestion


def test_duplicate_key_in_a_mapping(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "    capacity: 20\n", "    capacity: 20\n    capacity: 25\n"))
    p = only_problem(d, rules)
    first = line_of(d / "agencies.yaml", "capacity: 20")
    assert (name(p), p.line, p.field) == ("agencies.yaml", first + 1, "agencies.capacity")
    assert f"duplicate key 'capacity' (also on line {first})" in p.message


def test_missing_file_is_named(tmp_path, rules):
    d = configs(tmp_path, delete=("mail.yaml",))
    p = only_problem(d, rules)
    assert p.file == str(d / "mail.yaml")
    assert p.line == 0 and "file not found" in p.message
    assert "copy it from the engine's configs/" in p.suggestion


def test_every_missing_file_is_named(tmp_path, rules):
    d = configs(tmp_path, delete=("mail.yaml", "lead_rules.yaml"))
    assert sorted(name(p) for p in problems(d, rules)) == ["lead_rules.yaml", "mail.yaml"]


# ---------------------------------------------------------------- agencies.yaml


def test_unknown_field_in_an_agency_suggests_the_right_one(tmp_path, rules):
    d = configs(
        tmp_path, ("agencies.yaml", "    email: hikari@soudan.example.jp", "    emial: hikari@soudan.example.jp")
    )
    ps = problems(d, rules)
    unknown = [p for p in ps if "unknown field" in p.message]
    assert len(unknown) == 1, [str(p) for p in ps]
    p = unknown[0]
    assert (name(p), p.line, p.field, p.rule_id) == (
        "agencies.yaml",
        line_of(d / "agencies.yaml", "emial:"),
        "agencies.emial",
        "soudan_jigyosho_hikari",
    )
    assert p.message == "unknown field 'emial'"
    assert p.suggestion == "did you mean 'email'?"
    # and the then-missing email is reported too, at the start of the entry
    missing = [p for p in ps if p.message == "missing field 'email'"]
    assert len(missing) == 1 and missing[0].line == line_of(d / "agencies.yaml", "- id: soudan_jigyosho_hikari")


def test_invalid_email_address(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "hikari@soudan.example.jp", "hikari@soudan"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field, p.rule_id) == (
        "agencies.yaml",
        line_of(d / "agencies.yaml", "hikari@soudan"),
        "agencies.email",
        "soudan_jigyosho_hikari",
    )
    assert "'hikari@soudan' is not an e-mail address" in p.message


def test_email_address_with_trailing_newline_is_refused(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "hikari@soudan.example.jp", '"hikari@soudan.example.jp\\n"'))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "agencies.yaml", "hikari@soudan.example.jp"), "agencies.email")
    assert "is not an e-mail address" in p.message


def test_unknown_silo_in_an_agency(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "    silo: 保護", "    silo: 福祉"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field, p.rule_id) == (
        "agencies.yaml",
        line_of(d / "agencies.yaml", "silo: 福祉"),
        "agencies.silo",
        "fukushi_jimusho",
    )
    assert "unknown silo '福祉'" in p.message and "保護" in p.message


def test_duplicate_agency_id(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "  - id: houkatsu_kita", "  - id: houkatsu_chuo"))
    p = only_problem(d, rules)
    second = [
        i
        for i, line in enumerate((d / "agencies.yaml").read_text(encoding="utf-8").splitlines(), 1)
        if "id: houkatsu_chuo" in line
    ][1]
    assert (name(p), p.line, p.field, p.rule_id) == ("agencies.yaml", second, "agencies.id", "houkatsu_chuo")
    assert p.message == "duplicate agency id 'houkatsu_chuo'"
    assert p.suggestion == "give each agency its own id"


def test_missing_required_field_member(tmp_path, rules):
    d = configs(tmp_path, ("agencies.yaml", "    member: false\n    capacity: 20\n", "    capacity: 20\n"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field, p.rule_id) == (
        "agencies.yaml",
        line_of(d / "agencies.yaml", "- id: soudan_jigyosho_hikari"),
        "agencies.member",
        "soudan_jigyosho_hikari",
    )
    assert p.message == "missing field 'member'"


def test_no_member_agency_at_all(tmp_path, rules):
    d = configs(tmp_path)
    (d / "agencies.yaml").write_text(
        (d / "agencies.yaml").read_text(encoding="utf-8").replace("member: true", "member: false"), encoding="utf-8"
    )
    p = only_problem(d, rules)
    assert (p.file, p.line, p.field) == (str(d / "agencies.yaml"), 1, "member")
    assert "no agency is a registered member" in p.message and "member: true" in p.suggestion


def test_no_member_problem_names_agencies_yaml_even_in_a_folder_called_conference(tmp_path, rules):
    d = configs(tmp_path, under="conference/configs")
    (d / "agencies.yaml").write_text(
        (d / "agencies.yaml").read_text(encoding="utf-8").replace("member: true", "member: false"), encoding="utf-8"
    )
    p = only_problem(d, rules)
    assert p.file == str(d / "agencies.yaml")


# ---------------------------------------------------------------- lead_rules.yaml


def test_lead_rule_with_unknown_flag_suggests(tmp_path, rules):
    d = configs(tmp_path, ("lead_rules.yaml", "flags: [young_carer,", "flags: [young_carr,"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field, p.rule_id) == (
        "lead_rules.yaml",
        line_of(d / "lead_rules.yaml", "young_carr"),
        "lead_rules.flags",
        "children",
    )
    assert p.message == "unknown flag 'young_carr'"
    assert p.suggestion == "did you mean 'young_carer'?"


def test_lead_rule_with_unknown_flag_lists_known_flags_when_nothing_is_close(tmp_path, rules):
    d = configs(
        tmp_path, ("lead_rules.yaml", "flags: [parent_disability_child]", "flags: [parent_disability_child, zzz]")
    )
    p = only_problem(d, rules)
    assert p.message == "unknown flag 'zzz'" and p.suggestion.startswith("known flags: 8050, double_care")


def test_lead_rule_with_unknown_agency_kind(tmp_path, rules):
    d = configs(tmp_path, ("lead_rules.yaml", "lead: {kind: こども家庭センター}", "lead: {kind: こども家庭センタ}"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field, p.rule_id) == (
        "lead_rules.yaml",
        line_of(d / "lead_rules.yaml", "こども家庭センタ}"),
        "lead_rules.lead.kind",
        "children",
    )
    assert "no agency of kind 'こども家庭センタ' in agencies.yaml" in p.message
    assert p.suggestion == "did you mean 'こども家庭センター'?"


def test_lead_rule_with_unknown_agency(tmp_path, rules):
    d = configs(tmp_path, ("lead_rules.yaml", "lead: {kind: こども家庭センター}", "lead: {agency: kodomo_centre}"))
    p = only_problem(d, rules)
    assert (p.line, p.field, p.rule_id) == (
        line_of(d / "lead_rules.yaml", "kodomo_centre"),
        "lead_rules.lead.agency",
        "children",
    )
    assert p.message == "unknown agency 'kodomo_centre'" and p.suggestion == "did you mean 'kodomo_center'?"


def test_lead_rule_whose_target_matches_no_agency(tmp_path, rules):
    d = configs(
        tmp_path,
        ("lead_rules.yaml", "lead: {kind: こども家庭センター}", "lead: {kind: こども家庭センター, silo: 介護}"),
    )
    p = only_problem(d, rules)
    assert (p.line, p.field, p.rule_id) == (
        line_of(d / "lead_rules.yaml", "silo: 介護}"),
        "lead_rules.lead",
        "children",
    )
    assert "no agency matches kind, silo and agency together" in p.message


def test_lead_rule_shadowed_by_earlier_rules_is_never_used(tmp_path, rules):
    # dv is already taken by dv_safety (dv_center: town-wide member), so disability_family never applies
    d = configs(tmp_path, ("lead_rules.yaml", "flags: [parent_disability_child]", "flags: [dv]"))
    ps = problems(d, rules)
    shadow = [p for p in ps if "never used" in p.message]
    assert len(shadow) == 1, [str(p) for p in ps]
    p = shadow[0]
    assert (name(p), p.line, p.field, p.rule_id) == (
        "lead_rules.yaml",
        line_of(d / "lead_rules.yaml", "- id: disability_family"),
        "lead_rules",
        "disability_family",
    )
    assert "earlier rules already choose a lead for all its flags" in p.message
    assert p.suggestion == "move it above the rule that shadows it, or delete it"
    # parent_disability_child is still covered by the fallback: nothing else is reported
    assert len(ps) == 1


def test_lead_rule_after_the_fallback_is_never_used(tmp_path, rules):
    d = configs(
        tmp_path,
        (
            "lead_rules.yaml",
            "    reason: 複数分野にまたがるため、包括的な相談を受ける自立相談支援機関を主担当とする\n",
            "    reason: 複数分野にまたがるため、包括的な相談を受ける自立相談支援機関を主担当とする\n"
            "  - id: late\n    flags: [dv]\n    lead: {kind: 自立相談支援機関}\n    reason: 遅すぎる規則\n",
        ),
    )
    p = only_problem(d, rules)
    assert (p.line, p.rule_id) == (line_of(d / "lead_rules.yaml", "- id: late"), "late") and "never used" in p.message


def test_rule_after_a_rule_with_a_partial_lead_is_used_and_accepted(tmp_path, rules):
    from engine.conference.lead import propose_lead

    d = configs(
        tmp_path,
        (
            "lead_rules.yaml",
            "  - id: disability_family\n",
            "  - id: hikari_first\n    flags: [parent_disability_child]\n    lead: {agency: soudan_jigyosho_hikari}\n"
            "    reason: 相談支援事業所ひかりの担当地区では、ひかりを主担当とする\n"
            "  - id: disability_family\n",
        ),
    )
    config = load_config(d, rules)
    # ひかり is not a member and does not serve 南部: for a 支援会議 in 南部 the second rule decides
    proposal = propose_lead(
        config, area="南部", flag_ids={"parent_disability_child"}, served_silos=set(), conference_type="support", led={}
    )
    assert proposal.rule_id == "disability_family" and proposal.agency_id == "kikan_soudan"


def test_flag_without_any_lead_rule_is_listed(tmp_path, rules):
    d = configs(
        tmp_path,
        (
            "lead_rules.yaml",
            "  - id: fallback\n    flags: any\n    lead: {kind: 自立相談支援機関}\n"
            "    reason: 複数分野にまたがるため、包括的な相談を受ける自立相談支援機関を主担当とする\n",
            "",
        ),
    )
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "lead_rules.yaml",
        line_of(d / "lead_rules.yaml", "lead_rules:"),
        "lead_rules",
    )
    assert p.message == "no lead rule for flag(s) multi_domain: their cases would have no lead"
    assert "flags: any" in p.suggestion


def test_several_flags_without_lead_rule_are_all_listed(tmp_path, rules):
    d = configs(
        tmp_path,
        ("lead_rules.yaml", "    flags: any\n", "    flags: [multi_domain]\n"),
        ("lead_rules.yaml", "flags: [hikikomori, multiple_arrears, self_neglect]", "flags: [multiple_arrears]"),
    )
    p = only_problem(d, rules)
    assert "no lead rule for flag(s) hikikomori, self_neglect:" in p.message


def test_unquoted_8050_flag_in_lead_rule_is_reported_on_its_line(tmp_path, rules):
    d = configs(tmp_path, ("lead_rules.yaml", 'flags: ["8050", isolated_elder]', "flags: [8050, isolated_elder]"))
    ps = problems(d, rules)
    assert ps and all(
        name(p) == "lead_rules.yaml"
        and p.line == line_of(d / "lead_rules.yaml", "[8050,")
        and p.rule_id == "elder_care"
        for p in ps
    )


def test_unquoted_8050_flag_field_is_plain(tmp_path, rules):
    d = configs(tmp_path, ("lead_rules.yaml", 'flags: ["8050", isolated_elder]', "flags: [8050, isolated_elder]"))
    assert {p.field for p in problems(d, rules)} == {"lead_rules.flags"}


# ---------------------------------------------------------------- conference.yaml


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


# ---------------------------------------------------------------- mail.yaml


def test_mail_transport_must_be_file_or_smtp(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "\ntransport: file\n", "\ntransport: fax\n"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == ("mail.yaml", line_of(d / "mail.yaml", "transport: fax"), "transport")
    assert "'file' or 'smtp'" in p.message and "(got 'fax')" in p.message


def test_mail_sender_must_be_an_address(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "sender: shien-kaigi@city.example.lg.jp", "sender: shien-kaigi"))
    p = only_problem(d, rules)
    assert (p.line, p.field) == (line_of(d / "mail.yaml", "sender:"), "sender") and "not an e-mail address" in p.message


def test_mail_smtp_unknown_field_and_bad_port(tmp_path, rules):
    d = configs(
        tmp_path, ("mail.yaml", "  starttls: true", "  startls: true"), ("mail.yaml", "  port: 587", "  port: 70000")
    )
    ps = sorted(problems(d, rules), key=lambda p: p.line)
    assert [(p.line, p.field) for p in ps] == [
        (line_of(d / "mail.yaml", "port: 70000"), "smtp.port"),
        (line_of(d / "mail.yaml", "startls"), "smtp.startls"),
    ]
    assert ps[1].suggestion == "did you mean 'starttls'?"


def test_smtp_transport_loads(tmp_path, rules):
    config = load_config(configs(tmp_path, ("mail.yaml", "\ntransport: file\n", "\ntransport: smtp\n")), rules)
    assert (
        config.mail.transport == "smtp"
        and config.mail.smtp.port == 587
        and config.mail.smtp.password_env == "ENGINE_SMTP_PASSWORD"
    )


# ---------------------------------------------------------------- all problems at once


def test_problems_in_every_file_are_all_reported(tmp_path, rules):
    d = configs(
        tmp_path,
        ("agencies.yaml", "hikari@soudan.example.jp", "hikari@soudan"),
        ("conference.yaml", "weekday: 金,", "weekday: 金曜,"),
        ("lead_rules.yaml", "reason: 子どもへの支援が中心となるため", "reasn: 子どもへの支援が中心となるため"),
        ("mail.yaml", "\ntransport: file\n", "\ntransport: fax\n"),
    )
    got = sorted((name(p), p.line, p.field) for p in problems(d, rules))
    assert got == sorted(
        [
            ("agencies.yaml", line_of(d / "agencies.yaml", "hikari@soudan"), "agencies.email"),
            ("conference.yaml", line_of(d / "conference.yaml", "金曜"), "slots.support.weekday"),
            ("lead_rules.yaml", line_of(d / "lead_rules.yaml", "- id: children"), "lead_rules.reason"),
            ("lead_rules.yaml", line_of(d / "lead_rules.yaml", "reasn:"), "lead_rules.reasn"),
            ("mail.yaml", line_of(d / "mail.yaml", "transport: fax"), "transport"),
        ]
    )


def test_several_cross_check_problems_are_all_reported(tmp_path, rules):
    d = configs(
        tmp_path,
        ("conference.yaml", "owner_kind: こども家庭センター", "owner_kind: こども家庭センタ"),
        ("conference.yaml", "locked_flags: [dv]", "locked_flags: [d_v]"),
        ("lead_rules.yaml", "flags: [young_carer,", "flags: [young_carr,"),
        ("lead_rules.yaml", "lead: {silo: 困窮}", "lead: {silo: 困窮, kind: 福祉事務所X}"),
    )
    got = sorted((name(p), p.field) for p in problems(d, rules))
    assert got == [
        ("conference.yaml", "locked_flags"),
        ("conference.yaml", "routing.owner_kind"),
        ("lead_rules.yaml", "lead_rules.flags"),
        ("lead_rules.yaml", "lead_rules.lead.kind"),
    ]


def test_yaml_error_in_one_file_does_not_hide_problems_in_another(tmp_path, rules):
    d = configs(
        tmp_path,
        ("mail.yaml", "\ntransport: file\n", "\ntransport: [file\n"),
        ("lead_rules.yaml", "flags: [young_carer,", "flags: [young_carr,"),
    )
    assert sorted(name(p) for p in problems(d, rules)) == ["lead_rules.yaml", "mail.yaml"]


def test_an_agency_problem_does_not_hide_flag_problems_elsewhere(tmp_path, rules):
    d = configs(
        tmp_path,
        ("agencies.yaml", "hikari@soudan.example.jp", "hikari@soudan"),
        ("conference.yaml", "locked_flags: [dv]", "locked_flags: [d_v]"),
        ("lead_rules.yaml", "flags: [young_carer,", "flags: [young_carr,"),
    )
    got = sorted((name(p), p.field) for p in problems(d, rules))
    assert got == [
        ("agencies.yaml", "agencies.email"),
        ("conference.yaml", "locked_flags"),
        ("lead_rules.yaml", "lead_rules.flags"),
    ]


# ---------------------------------------------------------------- business days


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
    from engine.config.files import load_config

    names = load_config(d, rules).conference.names
    assert names == {"support": "みどり市支援会議", "multi": "重層的支援会議"}


def test_a_flag_whose_member_leads_miss_an_area_is_reported(tmp_path, rules):
    """dv cases: the only member named (北部地域包括) serves 北部 and 山手; the fallback is a
    non-member. A 支援会議 DV case in 南部 would have no lead: config check says where."""
    d = configs(
        tmp_path,
        ("lead_rules.yaml", "lead: {kind: 配偶者暴力相談支援センター}", "lead: {agency: houkatsu_kita}"),
        ("lead_rules.yaml", "lead: {kind: 自立相談支援機関}", "lead: {agency: hikikomori_npo}"),
        (
            "lead_rules.yaml",
            "flags: [hikikomori, multiple_arrears, self_neglect]",
            "flags: [hikikomori, multiple_arrears, self_neglect, multi_domain]",
        ),
    )
    from engine.config.files import load_config

    with pytest.raises(RulesInvalid) as err:
        load_config(d, rules)
    gap = [p for p in err.value.problems if "dv" in p.message and "serves" in p.message]
    assert len(gap) == 1 and "南部" in gap[0].message and gap[0].field == "lead_rules"
    assert "北部" not in gap[0].message.split("serves")[1]
