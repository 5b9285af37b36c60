"""The DV centre is named to itself only (its name says DV), also once a lock has ended: a case the
DV centre led and closed comes back relinked (もどし・つなぎ直し) after the DV support measure ended;
the other agencies' agendas propose 「会議の場でお伝えします」 as the lead and leave the DV centre out of
これまでの経過, while the DV centre's own agenda names itself (engine/papers/casebrief.py)."""

from __future__ import annotations

from engine.casework.watch import answer_checkpoint
from engine.papers.casebrief import UNNAMED
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import add_arrears, d, decided_and_accepted, morning
from tests.helpers.conference import case_of, send_by_file
from tests.helpers.mail import sent_texts
from tests.helpers.town import ON, add_household, person


def test_a_relinked_case_once_led_by_the_dv_centre_does_not_name_it_to_other_agencies(conn, workspace, rules, cfg):
    add_household(
        conn,
        "H1",
        person(82, "世帯主", ("care_level", "要介護2"), sex="M"),
        person(52, "子", ("dv_support_measure", "", "2024-04-01", "2027-06-30"), sex="M"),
        area="中央",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    first = case_of(conn, "H1")
    assert first["lead"] == "dv_center"
    decided_and_accepted(
        conn, workspace, rules, cfg, first, "decision: close\nlead: dv_center\nreason: 体制が整ったため\n"
    )
    for (due,) in conn.execute(
        "SELECT due_on FROM checkpoints WHERE case_id = ? AND kind = 'watch' ORDER BY due_on", (first["case_id"],)
    ).fetchall():
        answer_checkpoint(conn, rules, cfg, first["case_id"], "stable", d(due), "dv_center")
    add_arrears(conn, "H1", 1, "2028-01-10")  # the measure ended in 2027: no lock any more
    nightly_cycle(conn, workspace, rules, cfg, d("2028-01-10"))
    (meeting,) = conn.execute("SELECT meeting_id FROM cases WHERE household_id = 'H1' AND is_open = 1").fetchone()
    send_by_file(conn, cfg, workspace, now=morning("2028-01-10"))
    agendas = {k.split(":")[2]: t for k, t in sent_texts(workspace).items() if k.startswith(f"agenda:{meeting}:")}
    dv_name = cfg.agencies["dv_center"].name
    others = {a: t for a, t in agendas.items() if a != "dv_center"}
    assert others, agendas.keys()
    for agency_id, text in others.items():
        assert dv_name not in text and "配偶者暴力" not in text, agency_id
        assert f"主担当機関（案）: {UNNAMED}" in text, agency_id
    if "dv_center" in agendas:
        assert dv_name in agendas["dv_center"]
