"""agencies.yaml and lead_rules.yaml as load_config checks them: fields, addresses, silos, members;
lead rules naming unknown flags, kinds or agencies, rules never used, flags without a lead rule."""

import pytest

from engine.config import load_config
from engine.rules.loader import RulesInvalid
from tests.helpers.configs import configs, line_of, name, only_problem, problems


# --- agencies.yaml -----------------------------------------------------------------------------------
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


# --- lead_rules.yaml ---------------------------------------------------------------------------------
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
        ("lead_rules.yaml", "flags: [multiple_arrears, self_neglect]", "flags: [multiple_arrears]"),
        # both rules naming hikikomori now name another flag (8050, which no earlier rule always decides)
        ("lead_rules.yaml", "[hikikomori]\n    lead: {kind: ひきこもり", '["8050"]\n    lead: {kind: ひきこもり'),
        ("lead_rules.yaml", "[hikikomori]\n    lead: {kind: 自立", '["8050"]\n    lead: {kind: 自立'),
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


def test_a_flag_whose_member_leads_miss_an_area_is_reported(tmp_path, rules):
    """dv cases: the only member named (北部地域包括) serves 北部 and 山手; the fallback is a
    non-member. A 支援会議 DV case in 南部 would have no lead: config check says where."""
    d = configs(
        tmp_path,
        ("lead_rules.yaml", "lead: {kind: 配偶者暴力相談支援センター}", "lead: {agency: houkatsu_kita}"),
        (
            "lead_rules.yaml",
            "flags: any\n    lead: {kind: 自立相談支援機関}",
            "flags: any\n    lead: {agency: hikikomori_npo}",
        ),
        (
            "lead_rules.yaml",
            "flags: [multiple_arrears, self_neglect]",
            "flags: [multiple_arrears, self_neglect, multi_domain]",
        ),
    )
    from engine.config import load_config

    with pytest.raises(RulesInvalid) as err:
        load_config(d, rules)
    gap = [p for p in err.value.problems if "dv" in p.message and "serves" in p.message]
    assert len(gap) == 1 and "南部" in gap[0].message and gap[0].field == "lead_rules"
    assert "北部" not in gap[0].message.split("serves")[1]
