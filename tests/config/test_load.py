"""`load_config`: the configuration files (agencies, conference, lead rules, mail, lifecycle) are checked
like the rules — every problem names file, line, field and, where possible, a suggestion, and every
problem of every file is reported at once. Here: the shipped files, YAML-level problems, all problems
at once, mail.yaml and lifecycle.yaml."""

from __future__ import annotations

import shutil
from datetime import time

import pytest

from engine.config import ConfigInvalid, load_config
from engine.rules.loader import RulesInvalid
from tests.helpers.configs import configs, line_of, name, only_problem, problems
from tests.helpers.paths import CONFIG_DIR, ROOT


# --- the shipped configuration -----------------------------------------------------------------------
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


# --- YAML-level problems -----------------------------------------------------------------------------
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


# --- all problems at once ----------------------------------------------------------------------------
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
        ("lead_rules.yaml", "lead: {silo: 障害}", "lead: {silo: 障害, kind: 福祉事務所X}"),
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


# --- mail.yaml ---------------------------------------------------------------------------------------
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


# --- lifecycle.yaml ----------------------------------------------------------------------------------
def test_lifecycle_yaml_is_read_from_the_config_folder_and_checked(tmp_path, rules):
    folder = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, folder, ignore=shutil.ignore_patterns("rules"))
    (folder / "lifecycle.yaml").write_text(
        "evaluation_months: 6\nwatch_months: [1, 2]\nno_contact_days: 30\nlead_answer_business_days: 2\n"
        "reminder_business_days: 1\noutcome_business_days: 4\nwatch_answer_business_days: 3\ncheck_back_months: 1\n",
        encoding="utf-8",
    )
    lc = load_config(folder, rules).lifecycle
    assert (lc.evaluation_months, lc.watch_months, lc.no_contact_days, lc.lead_answer_business_days) == (
        6,
        (1, 2),
        30,
        2,
    )
    assert (
        lc.reminder_business_days,
        lc.outcome_business_days,
        lc.watch_answer_business_days,
        lc.check_back_months,
    ) == (1, 4, 3, 1)
    (folder / "lifecycle.yaml").write_text("evaluation_months: 3\nwatch_months: [12, 6]\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as err:
        load_config(folder, rules)
    (problem,) = err.value.problems
    assert problem.file.endswith("lifecycle.yaml") and problem.line == 2 and problem.field == "watch_months"
