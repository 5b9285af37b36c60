"""The night's re-checks of a coming meeting (engine/conference/convene.py: consent withdrawn, a DV
lock since the case was decided) decide again only the cases that meeting has still to discuss
(TO_DISCUSS). A meeting held today may have decided already: a case closed, suspended or given a plan
there is left as it is. Before, a night run again on the meeting's day (after an import, say) moved
a closed or suspended case to 会議に付議, which the lifecycle refuses: the whole night failed; a plan
was moved silently to another meeting, or re-decided with another lead reason."""

from __future__ import annotations

from datetime import date

import pytest

from engine.workflows.cycle import nightly_cycle
from tests.conference.test_dv_centre import _add_measure, _invited, rules_without_dv_measure
from tests.helpers.casework import MEETING_DAY, close, decide, open_cases, plan
from tests.helpers.conference import case_of, cycle
from tests.helpers.town import add_household, elder_and_son

MULTI = "M-20261210-1400-J"  # the 重層的支援会議 a household of 北部 screened on ON is booked into
MULTI_DAY = date(2026, 12, 10)
SUSPEND = "decision: suspend\nreason: 本人の入院\nreview_on: 2027-02-01\n"


def _conclude(conn, workspace, rules, cfg, case: dict, decision: str, day: date) -> None:
    """The meeting decides on its day (the lead accepts a close or a plan the same day)."""
    if decision == "close":
        close(conn, workspace, rules, cfg, case["case_id"], case["meeting"], day, lead=case["lead"])
    elif decision == "suspend":
        decide(conn, workspace, rules, cfg, case["case_id"], case["meeting"], day, SUSPEND)
    else:
        roles = ((case["lead"], "介護サービスの利用調整", "2027-01-29"),)
        plan(conn, workspace, rules, cfg, case["case_id"], case["meeting"], on=day, lead=case["lead"], roles=roles)


@pytest.mark.regression("review of the config diff fix: the night's own re-checks")
@pytest.mark.parametrize("decision", ["close", "suspend", "plan"])
def test_consent_ended_after_the_meeting_decided_leaves_the_case(conn, workspace, rules, cfg, decision):
    """Two households of 北部 with consent, booked into the 重層的支援会議 of 10 December; it decides
    for one of them, the other's outcome is still owed. Both households' consent ends; the night runs
    again that day: only the case not yet discussed moves to a 支援会議, as before."""
    for hid in ("HDONE", "HOWED"):
        add_household(conn, hid, *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    done, owed = case_of(conn, "HDONE"), case_of(conn, "HOWED")
    assert (done["type"], done["meeting"], owed["type"], owed["meeting"]) == ("multi", MULTI, "multi", MULTI)
    _conclude(conn, workspace, rules, cfg, done, decision, MULTI_DAY)
    decided = case_of(conn, "HDONE")
    conn.execute("UPDATE records SET end_date = '2026-12-09' WHERE code = 'consent'")
    conn.commit()
    night = nightly_cycle(conn, workspace, rules, cfg, MULTI_DAY)  # failed on a closed or suspended case
    assert case_of(conn, "HDONE") == decided  # a plan was moved to the 支援会議 of 18 December
    assert conn.execute(
        "SELECT 1 FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (done["case_id"], MULTI)
    ).fetchone()  # the meeting that decided stays in its history
    moved = case_of(conn, "HOWED")
    assert night.convene.consent_withdrawn == 1 and moved["type"] == "support" and moved["meeting"] != MULTI
    assert nightly_cycle(conn, workspace, rules, cfg, date(2026, 12, 11)).convene.consent_withdrawn == 0
    assert case_of(conn, "HDONE") == decided


@pytest.mark.regression("review of the config diff fix: the night's own re-checks")
@pytest.mark.parametrize("decision", ["close", "suspend", "plan"])
def test_a_dv_lock_after_the_meeting_decided_leaves_the_case(conn, workspace, cfg, tmp_path, decision):
    """Two 8050 households of 中央 in the 支援会議 of 4 December (rules where a DV support measure
    raises no flag); it decides for H1, H2's outcome is still owed. Both become DV-locked; the night
    runs again that day: only H2's case brings in the DV centre, as before."""
    rules = rules_without_dv_measure(tmp_path)
    (h1, meeting), (h2, _) = open_cases(conn, workspace, rules, cfg, "H1", "H2")
    _conclude(conn, workspace, rules, cfg, case_of(conn, "H1"), decision, MEETING_DAY)
    decided = case_of(conn, "H1")
    for hid in ("H1", "H2"):
        _add_measure(conn, hid, "2026-12-01")
    nightly_cycle(conn, workspace, rules, cfg, MEETING_DAY)  # failed on a closed or suspended case
    assert case_of(conn, "H1") == decided and "dv_center" not in _invited(conn, h1)
    assert "dv_center" in _invited(conn, h2) and case_of(conn, "H2")["meeting"] == meeting
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 12, 7))
    assert case_of(conn, "H1") == decided
