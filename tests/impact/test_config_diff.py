"""config_diff on a hand-made town: one more 社会福祉協議会 (困窮, member) becomes the proposed lead
of the case the next night opens and is invited to the open one; nothing is written. A case closed
under watch is decided again by neither the night nor the replay."""

from __future__ import annotations

from engine.config import load_config
from engine.impact.config_diff import config_diff
from engine.rules.loader import load_rules
from engine.store.db import connect
from tests.helpers.casework import MEETING_DAY, close, open_cases
from tests.helpers.paths import CONFIG_DIR
from tests.helpers.town import ON, add_household, person
from tests.impact.town import (
    INCOME,
    LOWER_TO_2,
    SHAKYO,
    arrears_town,
    candidate,
    closed_by_assessment,
    fingerprint,
    screened,
)


def _town_with_a_new_flag(conn, workspace, rules, cfg):
    """HA3's case convened (lead: the 自立相談支援機関), then HB flagged but not yet convened."""
    arrears_town(conn)
    screened(conn, workspace, rules, cfg)
    add_household(conn, "HB", person(55, "世帯主", ("arrears", "kokuho:6"), ("arrears", "rent:3"), INCOME), area="南部")
    screened(conn, workspace, rules)


def test_a_new_agency_changes_the_lead_of_the_coming_case_and_the_participants_of_the_open_one(
    conn, workspace, rules, cfg, tmp_path
):
    _town_with_a_new_flag(conn, workspace, rules, cfg)
    folder = candidate(tmp_path, SHAKYO)
    cand = load_config(folder, rules)
    case_id = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HA3'").fetchone()[0]
    conn.close()
    before = fingerprint(workspace)
    ro = connect(workspace, readonly=True)
    d = config_diff(ro, rules, cfg, cand)
    ro.close()
    assert fingerprint(workspace) == before  # nothing written
    assert not d.rules_changed
    by_household = {c.household_id: c for c in d.cases}
    assert set(by_household) == {"HA3", "HB", "H8050"}  # H8050: its ひきこもり flag is 困窮's too
    new = by_household["HB"]
    assert new.new_case and new.case_id is None
    lead = next(ch for ch in new.changes if ch.what == "lead")
    assert lead.before.startswith("自立相談支援機関（くらし相談窓口）（規則 ") and lead.after.startswith(
        "社会福祉協議会（規則 "
    )
    # it serves 全域 (agencies.yaml): said so, not the household's area as households.csv writes it
    assert "社会福祉協議会は全域を担当" in lead.reason and "現在の主担当 0件／上限 40件" in lead.reason
    kept = by_household["HA3"]
    assert kept.case_id == case_id and not kept.new_case
    for c in (kept, by_household["H8050"]):
        assert [ch.what for ch in c.changes] == ["participants"]  # an unconfirmed lead is not switched over load
        assert "社会福祉協議会（困窮分野）を招集" in c.changes[0].reason


def test_the_same_configuration_changes_nothing(conn, workspace, rules, cfg):
    _town_with_a_new_flag(conn, workspace, rules, cfg)
    d = config_diff(conn, rules, cfg, cfg)
    assert d.cases == [] and d.cases_compared == 3


def test_candidate_rules_open_cases_the_current_rules_do_not(conn, workspace, rules, cfg, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules, cfg)
    folder = candidate(tmp_path, LOWER_TO_2, SHAKYO)
    cand_rules = load_rules(folder / "rules")
    d = config_diff(conn, rules, cfg, load_config(folder, cand_rules), candidate_rules=cand_rules)
    assert d.rules_changed
    new = next(c for c in d.cases if c.household_id == "HA2")
    assert new.new_case
    lead = next(ch for ch in new.changes if ch.what == "lead")
    assert lead.before == "なし" and lead.after.startswith("社会福祉協議会（規則 ")


def test_a_case_an_assessment_closed_is_not_convened_again(conn, workspace, rules):
    """Closed under watch and in no meeting: the night books only the cases waiting for a meeting, and
    so does the replay (it used to move this one to 会議に付議, which the lifecycle refuses: the diff failed)."""
    case_id = closed_by_assessment(conn, workspace, rules)
    live = load_config(CONFIG_DIR, rules)  # with triage, as the case was decided
    d = config_diff(conn, rules, live, live)  # `engine config diff --against configs`
    assert d.on == ON and d.cases == [] and d.cases_compared == 1
    assert conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone() == ("closed",)


def test_a_case_its_meeting_closed_after_the_last_screening_is_not_decided_again(conn, workspace, rules, cfg, tmp_path):
    """Screened on ON; the meeting of 4 December closed the case (the lead took it over). That meeting
    is still to come on ON, but it has discussed the case: the replay leaves it closed."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY)
    d = config_diff(conn, rules, cfg, load_config(candidate(tmp_path, SHAKYO), rules))
    assert d.on == ON and d.cases == [] and d.cases_compared == 1
