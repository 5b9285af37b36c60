"""The DV centre takes part whenever the household is DV-locked (engine/policy/dv.py household_locked),
by its flag or by a DV support measure alone: also with rules edited so that the record no longer
raises the DV flag (issue 12), and when the lock appears after the case was decided."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from engine.rules.loader import load_rules
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of, new_import
from tests.helpers.configs import DV_MEASURE_RAISES_NO_FLAG, configs
from tests.helpers.town import ON, add_household, elder_and_son


def rules_without_dv_measure(tmp_path: Path):
    """The shipped rules with dv_signal edited: a DV support measure no longer raises the DV flag."""
    return load_rules(configs(tmp_path, DV_MEASURE_RAISES_NO_FLAG) / "rules")


def _invited(conn, case_id: str) -> set[str]:
    return {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case_id,))}


def _add_measure(conn, hid: str, start: str) -> None:
    pid = conn.execute(
        "SELECT person_id FROM persons WHERE household_id = ? AND relationship = '子'", (hid,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)", (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", start, None)
    )
    conn.commit()


@pytest.mark.regression("issue 12: a lock by the record alone left the DV centre uninvited")
def test_a_household_locked_by_a_dv_support_measure_alone_invites_the_dv_centre(conn, workspace, cfg, tmp_path):
    rules = rules_without_dv_measure(tmp_path)
    add_household(conn, "H8050DV", *elder_and_son(), area="中央")
    _add_measure(conn, "H8050DV", "2026-10-01")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    flags = {r for (r,) in conn.execute("SELECT rule_id FROM flags WHERE household_id = 'H8050DV'")}
    assert "dv" not in flags and "8050" in flags  # the record raises no DV flag any more…
    case = case_of(conn, "H8050DV")
    assert case["status"] == "convened"
    assert "dv_center" in _invited(conn, case["case_id"])  # …but the household is locked: the DV centre takes part


@pytest.mark.regression("issue 12: a lock by the record alone left the DV centre uninvited")
def test_a_dv_support_measure_after_the_case_was_decided_brings_in_the_dv_centre(conn, workspace, cfg, tmp_path):
    rules = rules_without_dv_measure(tmp_path)
    add_household(conn, "H8050DV", *elder_and_son(), area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case = case_of(conn, "H8050DV")
    assert "dv_center" not in _invited(conn, case["case_id"])
    _add_measure(conn, "H8050DV", "2026-11-28")  # the next extract: no new flag, but the household is locked
    new_import(conn, 1, "H8050DV", "2026-11-30")
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    assert "dv_center" in _invited(conn, case["case_id"])
    assert case_of(conn, "H8050DV")["meeting"] is not None
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 12, 1))  # decided once: the next night leaves it
    moves = conn.execute(
        "SELECT COUNT(*) FROM audit_log WHERE case_id = ? AND event = 'conference_decided'", (case["case_id"],)
    ).fetchone()[0]
    assert moves == 2


def test_locked_among_names_exactly_the_households_household_locked_names(conn, workspace, cfg, tmp_path):
    """policy/dv.py checks a night's households at once (locked_among); household_locked is that check
    for one household, so the two cannot drift: by a DV flag, by a current support measure alone,
    not by an ended measure, not without either."""
    from engine.policy.dv import household_locked, locked_among

    rules = rules_without_dv_measure(tmp_path)
    for hid in ("HMEASURE", "HENDED", "HPLAIN"):
        add_household(conn, hid, *elder_and_son(), area="中央")
    _add_measure(conn, "HMEASURE", "2026-10-01")
    _add_measure(conn, "HENDED", "2026-01-01")
    conn.execute(
        "UPDATE records SET end_date = '2026-03-31' WHERE code = 'dv_support_measure' "
        "AND person_id IN (SELECT person_id FROM persons WHERE household_id = 'HENDED')"
    )
    conn.commit()
    nightly_cycle(conn, workspace, rules, cfg, ON)
    with conn:  # a DV flag open on another household
        conn.execute("UPDATE flags SET rule_id = 'dv' WHERE household_id = 'HPLAIN' AND rule_id = '8050'")
    ids = ["HMEASURE", "HENDED", "HPLAIN", "NOSUCH"]
    on = ON.isoformat()
    assert locked_among(conn, cfg, ids, on) == {h for h in ids if household_locked(conn, cfg, h, on)}
    assert locked_among(conn, cfg, ids, on) == {"HMEASURE", "HPLAIN"}
    # a night's convening reads them at once (dv.Locks) and answers as case_locked does, by a
    # locked flag of the case too; a household not read at once is read on first use
    from engine.policy.dv import Locks, case_locked

    locks = Locks(conn, cfg, on)
    locks.read(ids[:2])
    for hid in ids:
        for rule_ids in ([], ["8050"], ["dv"]):
            assert locks.case(hid, rule_ids) == case_locked(conn, cfg, hid, rule_ids, on), (hid, rule_ids)
