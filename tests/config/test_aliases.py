"""Japanese names of codes in the configuration files (conference.yaml's record codes and severity)
and in an outcome file: read as the codes; an unknown name is refused with a did-you-mean."""

import pytest
from pydantic import ValidationError

from engine.casework.outcome_file import Outcome
from engine.config import load_config
from engine.support.vocabulary import ARREARS_NAMES, CODE_NAMES, SEVERITY_JA, code_of, fold, names_of
from tests.helpers.configs import configs, line_of, name, only_problem


def test_conference_codes_and_severity_by_their_japanese_names(tmp_path, rules, cfg):
    d = configs(
        tmp_path,
        ("conference.yaml", "code: yotaikyo_registered", "code: 要対協"),
        ("conference.yaml", "locked_codes: [dv_support_measure]", "locked_codes: [DV等支援措置]"),
        ("conference.yaml", "min_severity: medium", "min_severity: 高"),
    )
    conf = load_config(d, rules).conference
    assert conf.routing[0].code == "yotaikyo_registered"
    assert conf.locked_codes == ("dv_support_measure",)
    assert conf.min_severity == "high"
    assert cfg.conference.min_severity == "medium"  # the shipped file, by code


def test_an_unknown_locked_code_name_is_refused_with_did_you_mean(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "locked_codes: [dv_support_measure]", "locked_codes: [DV支援措置]"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == (
        "conference.yaml",
        line_of(d / "conference.yaml", "locked_codes:"),
        "locked_codes",
    )
    assert p.message == "unknown record code 'DV支援措置'" and p.suggestion == "did you mean 'DV等支援措置'?"


def test_an_unknown_severity_name_is_refused(tmp_path, rules):
    d = configs(tmp_path, ("conference.yaml", "min_severity: medium", "min_severity: 至急"))
    p = only_problem(d, rules)
    assert p.field == "min_severity" and "'low', 'medium', 'high' or 'urgent'" in p.message


def test_an_outcome_takes_the_japanese_decision_and_consent():
    assert Outcome(decision="終結", consent="取得済").model_dump(include={"decision", "consent"}) == {
        "decision": "close",
        "consent": "obtained",
    }
    with pytest.raises(ValidationError):
        Outcome(decision="plan", consent="同意した")


@pytest.mark.parametrize("labels", [ARREARS_NAMES, CODE_NAMES, SEVERITY_JA], ids=["arrears", "codes", "severity"])
def test_every_name_stands_for_one_code_only(labels):
    folded = [fold(n) for n in names_of(labels)]
    assert len(folded) == len(set(folded))
    assert all(code_of(n, labels) == code for code in labels for n in names_of({code: labels[code]}))
