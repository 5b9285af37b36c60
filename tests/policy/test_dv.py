"""The DV lock: a DV household is never detailed in an e-mail (one line: 「1件（詳細は会議にて）」), its
case id never appears in a notice, later cases of the household stay locked, the DV centre is
involved (urgently) wherever the household is discussed, and nothing another agency is sent says DV."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.outbox import FileTransport, send_pending
from engine.papers.agenda import meeting_papers
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import decide
from tests.helpers.conference import case_of, cycle, new_import
from tests.helpers.mail import DV_WORDS, body, emails, messages, part
from tests.helpers.town import ON, add_household, person


def test_dv_household_never_appears_in_an_email_beyond_one_line(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    dv = case_of(town, "HDV")
    assert dv["lead"] == "dv_center"
    msgs = emails(workspace)
    assert msgs
    dv_title = rules.flags["dv"].title
    for m in msgs:
        text = body(m) + m["Subject"]
        assert dv["case_id"] not in text and dv_title not in text and "DV等支援措置" not in text
    to_dv_center = [m for m in msgs if m["To"] == cfg.agencies["dv_center"].email]
    assert to_dv_center and all("1件（詳細は会議にて）" in body(m) for m in to_dv_center)
    coordinator = next((workspace / "agendas" / dv["meeting"]).glob("coordinator.v*.html")).read_text(encoding="utf-8")
    assert dv["case_id"] in coordinator  # the coordinator's local version has it


@pytest.mark.regression("review of the conference slice")
def test_new_dv_flag_on_a_convened_case_brings_in_the_dv_centre_urgently(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    pid = town.execute("SELECT person_id FROM persons WHERE household_id = 'H8050' AND relationship = '子'").fetchone()[
        0
    ]
    town.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", "2026-11-30", None),
    )
    new_import(town, 1, "H8050", "2026-12-01")
    result, _ = cycle(town, workspace, rules, cfg, date(2026, 12, 1))
    assert result.convene.flags_attached == 1  # the urgent DV flag joined the open case…
    invited = {a for (a,) in town.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case["case_id"],))}
    severity = town.execute("SELECT severity FROM cases WHERE case_id = ?", (case["case_id"],)).fetchone()[0]
    assert "dv_center" in invited and severity == "urgent"  # …but nobody from DV is invited and it is not urgent


@pytest.mark.regression("review of the conference slice")
def test_dv_household_known_to_yotaikyo_involves_the_dv_centre(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HDVY",
        person(34, "世帯主", ("dv_support_measure", ""), ("earned_income", "2400000")),
        person(4, "子", ("yotaikyo_registered", "要保護児童")),
        area="南部",
    )
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HDVY")
    invited = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (case["case_id"],))}
    assert "dv_center" in invited, (case["status"], invited)


@pytest.mark.regression("review of the conference slice")
def test_dv_case_id_never_appears_in_a_routing_notice(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HDVY",
        person(34, "世帯主", ("dv_support_measure", ""), ("earned_income", "2400000")),
        person(4, "子", ("yotaikyo_registered", "要保護児童")),
        area="南部",
    )
    cycle(conn, workspace, rules, cfg)
    case_id = case_of(conn, "HDVY")["case_id"]
    msgs = emails(workspace)
    assert msgs
    for m in msgs:
        assert case_id not in body(m) + m["Subject"] + m["Message-ID"] + m["X-Engine-Key"]


@pytest.mark.regression("review of the conference slice")
def test_a_later_case_of_a_dv_household_is_still_locked(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HDV2",
        person(34, "世帯主", ("dv_support_measure", ""), ("earned_income", "2400000")),
        person(6, "子"),
        area="南部",
    )
    cycle(conn, workspace, rules, cfg)
    first = case_of(conn, "HDV2")
    conn.execute(
        "UPDATE cases SET is_open = 0 WHERE case_id = ?", (first["case_id"],)
    )  # closed (終結) by the coordinator
    pid = conn.execute(
        "SELECT person_id FROM persons WHERE household_id = 'HDV2' AND relationship = '世帯主'"
    ).fetchone()[0]
    for kind in ("kokuho", "water"):
        conn.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
            (f"{pid}|t|arrears|{kind}", pid, "t", "arrears", f"{kind}:4", "2026-09-01", None),
        )
    new_import(conn, 1, "HDV2", "2026-12-01")
    later = date(2026, 12, 1)
    cycle(conn, workspace, rules, cfg, later)
    second = conn.execute(
        "SELECT case_id, meeting_id FROM cases WHERE household_id = 'HDV2' AND is_open = 1"
    ).fetchone()
    assert second and second[0] != first["case_id"]
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM flags WHERE household_id = 'HDV2' AND rule_id = 'dv' AND status = 'open'"
        ).fetchone()[0]
        == 1
    )
    shown = [
        (a.agency_id, c.lead_reason)
        for a in meeting_papers(conn, rules, cfg, second[1], later).agendas
        for c in a.cases
        if c.case_id == second[0]
    ]
    assert shown == []  # e-mailed with its facts, member labels and "…は南部地区を担当"


@pytest.mark.regression("second review of the conference slice")
def test_a_later_case_of_a_household_with_an_open_dv_flag_is_not_routed(conn, workspace, rules, cfg):
    # DV consultation (not a locked record code): the household's dv flag stays open
    mother = person(31, "世帯主", ("consultation", "DV"), ("earned_income", "2400000"))
    child = person(1, "子")
    add_household(conn, "HDVC", mother, child, area="南部")
    cycle(conn, workspace, rules, cfg)
    first = case_of(conn, "HDVC")
    conn.execute(
        "UPDATE cases SET is_open = 0 WHERE case_id = ?", (first["case_id"],)
    )  # closed (終結) by the coordinator
    for code, value in (("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")):
        conn.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
            (f"{child['pid']}|t|{code}", child["pid"], "t", code, value, "2026-11-30", None),
        )
    new_import(conn, 1, "HDVC", "2026-12-01")
    later = date(2026, 12, 1)
    cycle(conn, workspace, rules, cfg, later)
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM flags WHERE household_id = 'HDVC' AND rule_id = 'dv' AND status = 'open'"
        ).fetchone()[0]
        == 1
    )
    second = conn.execute("SELECT case_id, status FROM cases WHERE household_id = 'HDVC' AND is_open = 1").fetchone()
    assert second and second[0] != first["case_id"]
    mailed = [m["X-Engine-Key"] for m in emails(workspace) if second[0] in m["X-Engine-Key"] + body(m)]
    assert second[1] != "routed" and mailed == [], (
        second,
        mailed,
    )  # routed, and the notice names the case with its facts


# --- DV over the lifecycle ---------------------------------------------------------------------------
@pytest.fixture
def dv_centre_declined(conn, workspace, rules, cfg):
    """A DV household (support measure, two arrears): its case is led by the DV centre, closed at
    the conference with the DV centre as lead, and the DV centre declines; everything is sent."""
    from engine.casework.handshake import decline

    add_household(
        conn,
        "HDV",
        person(
            34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限"), ("arrears", "kokuho:4"), ("arrears", "water:4")
        ),
        person(6, "子"),
        area="南部",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    case_id, meeting_id, lead = conn.execute(
        "SELECT case_id, meeting_id, lead_agency_id FROM cases WHERE household_id = 'HDV'"
    ).fetchone()
    assert lead == "dv_center"
    held = date.fromisoformat(
        conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone()[0]
    )
    decide(
        conn, workspace, rules, cfg, case_id, meeting_id, held, "decision: close\nlead: dv_center\nconsent: pending\n"
    )
    assert (
        decline(
            conn, rules, cfg, case_id, "担当件数が上限のため", held + timedelta(days=1), "tester", "dv_center"
        ).next_agency
        == "jiritsu_soudan"
    )
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    dv_addresses = {a.email for a in cfg.agencies.values() if a.silo == "DV"}
    assert any(
        m["X-Engine-Key"].startswith("lead_request:") and m["To"] not in dv_addresses
        for m in messages(workspace / "outbox").values()
    )
    return case_id, dv_addresses


def test_a_lead_request_after_the_dv_centre_declines_does_not_say_dv(dv_centre_declined, workspace):
    case_id, dv_addresses = dv_centre_declined
    told = []
    for name, msg in messages(workspace / "outbox").items():
        body = msg["Subject"] + part(msg, "plain") + part(msg, "html")
        if msg["To"] not in dv_addresses and case_id in body:
            told += [(name, msg["To"], w) for w in DV_WORDS if w in body]
    assert told == [], told
