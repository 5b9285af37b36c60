"""The DV lock and triage (engine/triage/decide.py, pathways.lock_to_conference): a DV-locked
household is never left with one agency. A case already watched or assessed whose household
becomes DV-locked (a DV support measure recorded, which these rules do not turn into a flag) goes
to a conference the next night, and its pending assessment is never e-mailed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.casework.sweep import daily_sweep
from engine.config import load_config
from engine.rules.loader import load_rules
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of, cycle
from tests.helpers.configs import DV_MEASURE_RAISES_NO_FLAG, configs
from tests.helpers.town import ON, add_household, person

ARREARS = (("earned_income", "3000000"), ("arrears", "kokuho:4"), ("arrears", "water:4"))


def _locked_config(tmp_path):
    folder = configs(tmp_path, DV_MEASURE_RAISES_NO_FLAG)
    rules = load_rules(folder / "rules")
    return rules, load_config(folder, rules)


def _lock(conn, pid: str, on) -> None:
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "test", "dv_support_measure", "住民票等の閲覧制限", on.isoformat(), None),
    )
    conn.commit()


def test_a_watched_case_whose_household_is_dv_locked_goes_to_a_conference(conn, workspace, tmp_path):
    rules, cfg = _locked_config(tmp_path)
    head = person(45, "世帯主", *ARREARS)
    add_household(conn, "HW", head, area="中央")
    cycle(conn, workspace, rules, cfg)
    assert case_of(conn, "HW")["status"] == "watching"
    _lock(conn, head["pid"], ON + timedelta(days=1))
    cycle(conn, workspace, rules, cfg, on=ON + timedelta(days=3))
    case = case_of(conn, "HW")
    assert case["status"] in ("convened", "detected") and case["meeting"], case
    row = conn.execute("SELECT pathway, pathway_rule FROM cases WHERE household_id = 'HW'").fetchone()
    assert row == ("conference", "dv_lock")
    assert not conn.execute(
        "SELECT 1 FROM checkpoints WHERE case_id = ? AND kind = 'rescreen' AND status = 'pending'", (case["case_id"],)
    ).fetchone()
    participants = {
        a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case["case_id"],))
    }
    assert "dv_center" in participants  # the DV centre takes part


def test_an_assessment_of_a_household_locked_before_it_is_asked_is_never_mailed(conn, workspace, tmp_path):
    rules, cfg = _locked_config(tmp_path)
    elder = person(80, "世帯主", ("care_level", "要介護1"))
    add_household(conn, "HE", elder, area="中央")  # isolated_elder: assessed by the 地域包括
    pace = cfg.triage.model_copy(
        update={"settings": cfg.triage.settings.model_copy(update={"assessments_per_week": 1})}
    )
    cfg = cfg.model_copy(update={"triage": pace})
    add_household(conn, "HE0", person(81, "世帯主", ("care_level", "要介護1")), area="中央")  # takes this week's one
    cycle(conn, workspace, rules, cfg)
    waiting = conn.execute(
        "SELECT c.case_id, p.due_on FROM cases c JOIN checkpoints p ON p.case_id = c.case_id "
        "WHERE p.kind = 'assessment' AND p.status = 'pending' AND p.due_on > ?",
        (ON.isoformat(),),
    ).fetchone()
    assert waiting, "one of the two assessments waits for next week"
    case_id, due_on = waiting
    pid = elder["pid"] if case_of(conn, "HE")["case_id"] == case_id else None
    if pid is None:  # HE0 was the one deferred
        pid = conn.execute(
            "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ?",
            (case_id,),
        ).fetchone()[0]
    _lock(conn, pid, ON + timedelta(days=1))
    # the sweep of the start day, before any night saw the lock: the agency is not asked
    from datetime import date

    start = date.fromisoformat(due_on)
    daily_sweep(conn, rules, cfg, start)
    keys = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE message_key LIKE 'checkpoint:%'")]
    asked = conn.execute(
        "SELECT status FROM checkpoints WHERE case_id = ? AND kind = 'assessment'", (case_id,)
    ).fetchone()[0]
    assert asked == "pending" and len(keys) == 1, keys  # only the other household's assessment was mailed
    cycle(conn, workspace, rules, cfg, on=start)
    assert conn.execute("SELECT pathway_rule FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0] == "dv_lock"


def test_an_assessment_request_queued_before_the_lock_is_withheld_at_dispatch(conn, workspace, tmp_path):
    """The 07:00 sweep queued the request; a lock imported before the 08:00 dispatch stops it: it
    names the flags and the agency's silo facts (engine/outbox/withhold.py)."""
    from tests.helpers.conference import send_by_file

    rules, cfg = _locked_config(tmp_path)
    elder = person(80, "世帯主", ("care_level", "要介護1"))
    add_household(conn, "HE", elder, area="中央")  # isolated_elder: assessed by the 地域包括
    nightly_cycle(conn, workspace, rules, cfg, ON)
    daily_sweep(conn, rules, cfg, ON)
    (key,) = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE message_key LIKE 'checkpoint:%'")]
    _lock(conn, elder["pid"], ON)
    send_by_file(conn, cfg, workspace)
    status = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (key,)).fetchone()[0]
    assert status != "sent", status
    assert not list((workspace / "outbox").glob(key.replace(":", "_") + "*.eml"))


@pytest.mark.parametrize("answer", ["resolved", "could_not_reach"])
def test_an_assessment_answered_after_the_household_became_dv_locked_takes_the_case_to_a_conference(
    conn, workspace, tmp_path, answer
):
    """The lock appears between the request and the agency's answer through its link: the answer is
    recorded, but the case is not closed with that agency (resolved) nor asked again (could not
    reach): it goes to a conference with the DV centre at once, and the agency's page says nothing of DV."""
    from fastapi.testclient import TestClient

    from engine.web.app import create_app
    from tests.helpers.console import answer_form_token
    from tests.helpers.mail import DV_WORDS
    from tests.triage.test_assessment import answered, ask, checkpoint, state

    folder = configs(tmp_path, DV_MEASURE_RAISES_NO_FLAG)
    rules = load_rules(folder / "rules")
    cfg = load_config(folder, rules)
    elder = person(80, "世帯主", ("care_level", "要介護1"))
    add_household(conn, "HELDER", elder, area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case_id, checkpoint_id, token = ask(conn, workspace, rules, cfg, ON)
    _lock(conn, elder["pid"], ON)  # the measure recorded after the request went out
    with TestClient(create_app(workspace, folder / "rules", folder), base_url="http://127.0.0.1:8300") as client:
        page = client.get(f"/a/{token}")
        done = client.post(f"/a/{token}", data={"csrf_token": answer_form_token(page.text), "choice": answer})
    assert done.status_code == 200 and not any(w in done.text for w in DV_WORDS), done.text
    assert checkpoint(conn, checkpoint_id) == ("done", answer)
    assert [a["result"] for a in answered(conn, case_id)] == [answer]  # the agency's answer is kept
    after = state(conn, case_id)
    assert (after["pathway"], after["rule"]) == ("conference", "dv_lock") and after["meeting"], after
    assert after["status"] != "closed" and after["lead_rule"] != "assessment", after
    assert not conn.execute(
        "SELECT 1 FROM checkpoints WHERE case_id = ? AND kind = 'assessment' AND status IN ('pending', 'asked')",
        (case_id,),
    ).fetchone(), "asked again although the case went to a conference"
    participants = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case_id,))}
    assert "dv_center" in participants
