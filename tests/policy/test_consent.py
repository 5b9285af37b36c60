"""Whose consent a case needs (engine/policy/consent.py): every member any of its flags names; a flag
that names nobody concerns the whole household, also next to flags that do."""

from __future__ import annotations

import json

import pytest

from engine.policy.consent import case_consented, concerned
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of
from tests.helpers.town import CONSENT, ON, add_household, person


def test_the_persons_concerned_are_every_member_the_flags_name():
    assert concerned([["A", "B"], ["B", "C"]], ["A", "B", "C", "D"]) == {"A", "B", "C"}
    assert concerned([], ["A", "B"]) == {"A", "B"}  # no flag: the whole household


@pytest.mark.regression("issue 12: a flag naming no members was ignored next to another flag")
def test_a_flag_naming_nobody_concerns_the_whole_household_also_next_to_other_flags():
    assert concerned([["A", "B"], []], ["A", "B", "C"]) == {"A", "B", "C"}


@pytest.mark.regression("issue 12: a flag naming no members was ignored next to another flag")
def test_evidence_stored_before_flags_named_their_members_still_needs_everyones_consent(conn, workspace, rules, cfg):
    # a case screened by an earlier engine: its multi_domain evidence names nobody
    elder = person(82, "世帯主", ("care_level", "要介護2"), CONSENT, sex="M")
    son = person(52, "子", CONSENT, sex="M")
    wife = person(78, "妻", ("disability_certificate", "精神"), ("public_assistance", ""))
    add_household(conn, "HOLD", elder, son, wife, area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    for flag_id, raw in conn.execute(
        "SELECT flag_id, evidence FROM flags WHERE household_id = 'HOLD' AND rule_id = 'multi_domain'"
    ).fetchall():
        conn.execute(
            "UPDATE flags SET evidence = ? WHERE flag_id = ?", (json.dumps(json.loads(raw) | {"members": []}), flag_id)
        )
    conn.commit()
    assert not case_consented(conn, case_of(conn, "HOLD")["case_id"], ON.isoformat())
