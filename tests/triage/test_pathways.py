"""New cases on their pathways through the nightly cycle and the daily sweep (engine/triage/pathways.py,
engine/triage/assessment.py): the pathway recorded on the case and in its history, the state and the
next step of each pathway, the assessment e-mail, the pace of assessments per agency and week, a
conference case with no meeting in reach first assessed (overflow), a watched case's re-screen day, a
new flag on an assessing case, and the gap audit's triage invariants."""

from __future__ import annotations

import json
from datetime import date

from engine.casework.audit import run_audit
from engine.casework.sweep import daily_sweep
from tests.helpers.cli import cli
from tests.helpers.conference import cycle, new_import, send_by_file
from tests.helpers.mail import emails
from tests.helpers.town import ON, add_household, elder_and_son, person

LATER = date(2026, 11, 30)  # the Monday after ON


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- households, one per pathway -------------------------------------------------------------------
def elder_alone(conn, hid="HELDER", area="中央"):
    """An elder of 80 living alone, in need of care, using no service: isolated_elder → 地域包括."""
    return add_household(conn, hid, person(80, "世帯主", ("care_level", "要介護1")), area=area)


def withdrawn(conn, hid, *records, area="中央"):
    """Someone of 30 with no work, school or income record: hikikomori (its centre is no member)."""
    return add_household(conn, hid, person(30, "世帯主", *records), area=area)


def arrears_only(conn, hid="HWATCH"):
    """Two 4-month arrears and nothing else: multiple_arrears (medium) → watch."""
    return add_household(
        conn,
        hid,
        person(45, "世帯主", ("earned_income", "3000000"), ("arrears", "kokuho:4"), ("arrears", "water:4")),
        area="中央",
    )


def case(conn, hid: str) -> dict:
    row = conn.execute(
        "SELECT case_id, status, pathway, pathway_rule, pathway_reason, pathway_on, routed_to, meeting_id "
        "FROM cases WHERE household_id = ? AND is_open = 1",
        (hid,),
    ).fetchone()
    assert row, f"世帯 {hid} に開いている事案がない"
    keys = ("case_id", "status", "pathway", "rule", "reason", "on", "owner", "meeting")
    return dict(zip(keys, row))


def checkpoints(conn, case_id: str, kind: str | None = None) -> list[dict]:
    rows = conn.execute(
        "SELECT checkpoint_id, kind, due_on, status, answer_due FROM checkpoints WHERE case_id = ? "
        "AND (? IS NULL OR kind = ?) ORDER BY checkpoint_id",
        (case_id, kind, kind),
    ).fetchall()
    return [dict(zip(("id", "kind", "due_on", "status", "answer_due"), r)) for r in rows]


def chosen(conn, case_id: str) -> list[dict]:
    """The case's `pathway_chosen` entries: rule id and detail."""
    return [
        {"rule": r, "reason": why, **json.loads(detail)}
        for r, why, detail in conn.execute(
            "SELECT rule_id, reason, detail FROM audit_log WHERE case_id = ? AND event = 'pathway_chosen' ORDER BY seq",
            (case_id,),
        )
    ]


def with_triage(cfg, **settings):
    return cfg.model_copy(
        update={"triage": cfg.triage.model_copy(update={"settings": cfg.triage.settings.model_copy(update=settings)})}
    )


def with_conference(cfg, **values):
    return cfg.model_copy(update={"conference": cfg.conference.model_copy(update=values)})


def kinds(conn, cfg, on) -> list[tuple[str, str | None]]:
    return [(v.kind, v.case_id) for v in run_audit(conn, cfg, on).violations]


# --- each pathway on the first night ------------------------------------------------------------------
def test_each_pathway_of_a_new_case_is_recorded_with_its_state_and_next_step(conn, workspace, rules, cfg, cal):
    add_household(conn, "HCONF", *elder_and_son(), area="中央")
    elder_alone(conn)
    withdrawn(conn, "HSERVED", ("service_use", "困窮"))
    arrears_only(conn)
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    night, _ = cycle(conn, workspace, rules, cfg)
    assert night.convene.pathways == {"urgent_conference": 1, "conference": 1, "assessment": 1, "served": 1, "watch": 1}
    expected = {
        "HDV": ("convened", "urgent_conference", "urgent", None),
        "HCONF": ("convened", "conference", "several_problems", None),
        "HELDER": ("assessing", "assessment", "elder_alone", "houkatsu_chuo"),
        "HSERVED": ("routed", "served", "already_served", "jiritsu_soudan"),
        "HWATCH": ("watching", "watch", "arrears_only", None),
    }
    for hid, (status, pathway, rule, owner) in expected.items():
        c = case(conn, hid)
        assert (c["status"], c["pathway"], c["rule"], c["owner"]) == (status, pathway, rule, owner), hid
        assert c["on"] == ON.isoformat() and c["reason"], f"{hid}: 振り分けの日と理由を記録すること"
        (entry,) = chosen(conn, c["case_id"])
        assert (entry["rule"], entry["pathway"], entry["agency"]) == (rule, pathway, owner or entry["agency"])
        assert c["reason"] in entry["reason"], "履歴の理由は事案の理由と同じ"
    elder = case(conn, "HELDER")
    assert [(p["kind"], p["due_on"], p["status"], p["answer_due"]) for p in checkpoints(conn, elder["case_id"])] == [
        ("assessment", ON.isoformat(), "pending", cal.add(ON, 10).isoformat())
    ]
    served = case(conn, "HSERVED")
    assert [(p["kind"], p["due_on"]) for p in checkpoints(conn, served["case_id"])] == [
        ("check_back", cal.add(ON, 10).isoformat())
    ]
    watched = case(conn, "HWATCH")
    assert [(p["kind"], p["due_on"]) for p in checkpoints(conn, watched["case_id"])] == [
        ("rescreen", cal.add(ON, 60).isoformat())
    ]
    assert case(conn, "HCONF")["meeting"] and case(conn, "HDV")["meeting"], "会議の事案は予約されている"
    assert kinds(conn, cfg, ON) == [], "振り分け直後の監査に抜け漏れはない"


def test_child_safety_answers_within_its_own_five_days(conn, workspace, rules, cfg, cal):
    add_household(
        conn,
        "HCHILD",
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし")),
        area="東部",
    )
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HCHILD")
    assert (c["pathway"], c["rule"], c["owner"]) == ("assessment", "child_safety", "kodomo_center")
    (p,) = checkpoints(conn, c["case_id"], "assessment")
    assert p["answer_due"] == cal.add(ON, 5).isoformat(), "child_safety は5営業日で回答"


def test_engine_history_shows_the_pathway_and_its_reason(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    result = cli(workspace, "history", c["case_id"])
    assert result.exit_code == 0, result.output
    line = next((ln for ln in result.output.splitlines() if "振り分け — " in ln), None)
    assert line is not None, f"履歴に振り分けの行がない:\n{result.output}"
    assert "一機関によるアセスメント" in line and c["reason"] in line, line


def test_the_assessment_email_names_no_person_and_carries_an_answer_link(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    assert daily_sweep(conn, rules, cfg, ON).checkpoints_asked == 1
    (p,) = checkpoints(conn, c["case_id"], "assessment")
    assert p["status"] == "asked"
    send_by_file(conn, cfg, workspace)  # the 08:00 dispatch
    msg = next(m for m in emails(workspace) if m["X-Engine-Key"] == f"checkpoint:{p['id']}")
    text = msg.get_body(("plain",)).get_content()
    assert "アセスメント" in msg["Subject"] + text and c["case_id"] in text
    assert "/a/" in text, "回答用のリンクがあること"
    (birth,) = conn.execute("SELECT birth_date FROM persons WHERE household_id = 'HELDER'").fetchone()
    for secret in ("試験", "太郎", "シケン", "テスト町", birth, "HELDER"):
        assert secret not in text, f"メールに個人を特定できる情報 {secret!r} がある"


# --- pacing ------------------------------------------------------------------------------------------
PACED = ("HZ1", "HZ2", "HZ3", "HA1", "HA2")


def test_assessments_are_paced_per_agency_and_week_by_booking_priority(conn, workspace, rules, cfg, cal):
    """Five cases for 自立相談 with two a week: the three elders (high) of an area no 地域包括 serves
    start first, then the two withdrawn adults (medium), whatever their household ids."""
    for hid in ("HA1", "HA2"):
        withdrawn(conn, hid)
    for hid in ("HZ1", "HZ2", "HZ3"):
        elder_alone(conn, hid, area="離島")
    config = with_triage(cfg, assessments_per_week=2)
    night, _ = cycle(conn, workspace, rules, config)
    assert (night.convene.assessments_started, night.convene.assessments_deferred) == (5, 3)
    start = {hid: checkpoints(conn, case(conn, hid)["case_id"], "assessment")[0]["due_on"] for hid in PACED}
    weeks = [ON.isoformat(), cal.add(ON, 5).isoformat(), cal.add(ON, 10).isoformat()]
    assert {h: case(conn, h)["owner"] for h in start} == dict.fromkeys(start, "jiritsu_soudan")
    assert start == {"HZ1": weeks[0], "HZ2": weeks[0], "HZ3": weeks[1], "HA1": weeks[1], "HA2": weeks[2]}, start
    deferred = conn.execute(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'checkpoint_scheduled' AND reason LIKE '%後の週に予定%'"
    ).fetchone()[0]
    assert deferred == 3, "後の週に回した依頼は理由を記録する"
    assert kinds(conn, config, ON) == [], "後の週の依頼も日付のある次の一歩"


def test_the_sweep_asks_a_deferred_assessment_on_its_start_day(conn, workspace, rules, cfg, cal):
    for hid in ("HA1", "HA2"):
        withdrawn(conn, hid)
    config = with_triage(cfg, assessments_per_week=1)
    cycle(conn, workspace, rules, config)
    later = checkpoints(conn, case(conn, "HA2")["case_id"], "assessment")[0]
    assert later["due_on"] == cal.add(ON, 5).isoformat()
    assert daily_sweep(conn, rules, config, ON).checkpoints_asked == 1, "今週分だけ依頼する"
    assert checkpoints(conn, case(conn, "HA2")["case_id"])[0]["status"] == "pending"
    assert daily_sweep(conn, rules, config, d(later["due_on"])).checkpoints_asked == 1
    asked = checkpoints(conn, case(conn, "HA2")["case_id"])[0]
    assert asked["status"] == "asked" and asked["answer_due"] >= cal.add(d(later["due_on"]), 1).isoformat()


# --- overflow ----------------------------------------------------------------------------------------
def test_a_conference_case_without_a_meeting_in_reach_is_first_assessed(conn, workspace, rules, cfg):
    """One case per meeting and a window of five business days: one meeting (12-04) is in reach, so
    the second 8050 household is first assessed by the lead the lead rules propose."""
    for hid in ("H1", "H2"):
        add_household(conn, hid, *elder_and_son(), area="中央")
    config = with_conference(cfg, cases_per_meeting=1, max_business_days_to_conference=5)
    cycle(conn, workspace, rules, config)
    first, second = case(conn, "H1"), case(conn, "H2")
    assert (first["status"], first["pathway"], first["rule"]) == ("convened", "conference", "several_problems")
    assert (second["status"], second["pathway"], second["rule"], second["owner"]) == (
        "assessing",
        "assessment",
        "several_problems:overflow",
        "houkatsu_chuo",
    )
    assert "会議の空き枠がない" in second["reason"], second["reason"]
    assert checkpoints(conn, second["case_id"], "assessment"), "アセスメントの依頼が予定されている"


def test_overflow_conference_keeps_the_case_waiting_for_a_slot(conn, workspace, rules, cfg):
    for hid in ("H1", "H2"):
        add_household(conn, hid, *elder_and_son(), area="中央")
    config = with_triage(
        with_conference(cfg, cases_per_meeting=1, max_business_days_to_conference=5), conference_overflow="conference"
    )
    cycle(conn, workspace, rules, config)
    second = case(conn, "H2")
    assert (second["pathway"], second["rule"]) == ("conference", "several_problems")
    assert second["status"] in ("convened", "detected") and not checkpoints(conn, second["case_id"], "assessment")


# --- a watched case's re-screen day ------------------------------------------------------------------
def test_a_watched_case_whose_flag_is_gone_is_archived_on_its_rescreen_day(conn, workspace, rules, cfg):
    arrears_only(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HWATCH")
    (p,) = checkpoints(conn, c["case_id"], "rescreen")
    conn.execute("UPDATE records SET end_date = '2026-12-31' WHERE code = 'arrears'")  # paid off
    conn.commit()
    new_import(conn, 2, "HWATCH", "2027-01-15")
    cycle(conn, workspace, rules, cfg, d("2027-01-15"))
    assert conn.execute("SELECT status FROM flags WHERE household_id = 'HWATCH'").fetchone()[0] == "resolved"
    assert case(conn, "HWATCH")["status"] == "watching", "再確認日までは経過観察のまま"
    daily_sweep(conn, rules, cfg, d(p["due_on"]))
    status, is_open = conn.execute("SELECT status, is_open FROM cases WHERE case_id = ?", (c["case_id"],)).fetchone()
    assert (status, is_open) == ("archived", 0), "課題が解消していれば終了"
    assert checkpoints(conn, c["case_id"], "rescreen")[0]["status"] == "done"


def test_a_watched_case_still_flagged_is_assessed_on_its_rescreen_day(conn, workspace, rules, cfg, cal):
    arrears_only(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HWATCH")
    (p,) = checkpoints(conn, c["case_id"], "rescreen")
    day = d(p["due_on"])
    daily_sweep(conn, rules, cfg, day)
    now = case(conn, "HWATCH")
    assert (now["status"], now["pathway"], now["rule"], now["owner"]) == (
        "assessing",
        "assessment",
        "fallback",
        "jiritsu_soudan",
    ), "経過観察を除いて振り分け直す"
    assert now["on"] == day.isoformat()
    assessment = checkpoints(conn, c["case_id"], "assessment")
    assert [(a["due_on"], a["status"]) for a in assessment] == [(day.isoformat(), "pending")]
    assert [e["pathway"] for e in chosen(conn, c["case_id"])] == ["watch", "assessment"]
    assert daily_sweep(conn, rules, cfg, cal.add(day, 1)).checkpoints_asked == 1, "翌日の点検で依頼する"


# --- a new flag on an assessing case -----------------------------------------------------------------
def test_a_new_flag_that_needs_a_conference_convenes_an_assessing_case(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    assert c["status"] == "assessing"
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = 'HELDER'").fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|consultation", pid, "t", "consultation", "ごみ", "2026-11-20", None),
    )
    new_import(conn, 2, "HELDER", LATER.isoformat())
    cycle(conn, workspace, rules, cfg, LATER)
    now = case(conn, "HELDER")
    assert now["case_id"] == c["case_id"], "同じ事案のまま"
    assert (now["status"], now["pathway"], now["rule"], now["owner"]) == ("convened", "conference", "complex", None)
    assert now["meeting"], "会議に予約されている"
    assert [a["status"] for a in checkpoints(conn, c["case_id"], "assessment")] == ["cancelled"]
    assert [e["pathway"] for e in chosen(conn, c["case_id"])] == ["assessment", "conference"]


def test_a_new_flag_that_needs_no_conference_keeps_the_assessment(conn, workspace, rules, cfg):
    """Without the rules that send two flags to a conference, withdrawal and arrears stay with 自立相談."""
    kept_rules = tuple(r for r in cfg.triage.rules if r.id not in ("complex", "several_problems"))
    cfg = cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"rules": kept_rules})})
    withdrawn(conn, "HW")
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HW")
    assert (c["status"], c["rule"]) == ("assessing", "fallback")
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = 'HW'").fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|arrears", pid, "t", "arrears", "kokuho:4", "2026-09-01", None),
    )
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|arrears2", pid, "t", "arrears", "water:4", "2026-09-01", None),
    )
    new_import(conn, 2, "HW", LATER.isoformat())
    cycle(conn, workspace, rules, cfg, LATER)
    now = case(conn, "HW")
    assert (now["status"], now["pathway"]) == ("assessing", "assessment")
    kept = conn.execute(
        "SELECT COUNT(*) FROM audit_log WHERE case_id = ? AND event = 'pathway_kept'", (c["case_id"],)
    ).fetchone()[0]
    assert kept == 1 and checkpoints(conn, c["case_id"], "assessment")[0]["status"] == "pending"


# --- the gap audit -----------------------------------------------------------------------------------
def test_audit_no_pathway(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    assert kinds(conn, cfg, ON) == []
    conn.execute("UPDATE cases SET pathway = NULL WHERE case_id = ?", (c["case_id"],))
    conn.commit()
    found = run_audit(conn, cfg, ON).violations
    assert [(v.kind, v.case_id, v.household_id) for v in found] == [("no_pathway", c["case_id"], "HELDER")]
    assert "振り分けが記録されていない" in found[0].detail


def test_audit_no_pathway_for_an_assessment_without_an_agency(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    conn.execute("UPDATE cases SET routed_to = NULL WHERE case_id = ?", (c["case_id"],))
    conn.commit()
    (v,) = run_audit(conn, cfg, ON).violations
    assert (v.kind, v.case_id) == ("no_pathway", c["case_id"]) and "担当する機関がない" in v.detail


def test_audit_assessment_overdue_when_nobody_asked_it_on_its_start_day(conn, workspace, rules, cfg):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)  # no sweep: the agency is never asked
    c = case(conn, "HELDER")
    found = run_audit(conn, cfg, LATER).violations
    assert [(v.kind, v.case_id, v.since) for v in found] == [("assessment_overdue", c["case_id"], ON.isoformat())]
    assert daily_sweep(conn, rules, cfg, LATER).violations == 0, "点検が依頼すれば抜け漏れではない"


def test_audit_assessment_overdue_until_the_sweep_escalates_it(conn, workspace, rules, cfg, cal):
    elder_alone(conn)
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HELDER")
    daily_sweep(conn, rules, cfg, ON)
    (p,) = checkpoints(conn, c["case_id"], "assessment")
    after = cal.add(d(p["answer_due"]), 1)
    assert kinds(conn, cfg, d(p["answer_due"])) == [], "回答期限の当日はまだ抜け漏れではない"
    found = run_audit(conn, cfg, after).violations
    assert [(v.kind, v.case_id, v.since) for v in found] == [("assessment_overdue", c["case_id"], p["answer_due"])]
    result = daily_sweep(conn, rules, cfg, after)
    assert result.escalations == 1 and result.violations == 0, "点検がコーディネーターに上げれば抜け漏れではない"
    (kind,) = conn.execute("SELECT kind FROM escalations WHERE subject_key = ?", (f"checkpoint:{p['id']}",)).fetchone()
    assert kind == "checkpoint_no_answer"


def test_audit_conference_too_far_is_measured_from_the_pathway_day(conn, workspace, rules, cfg):
    add_household(conn, "HCONF", *elder_and_son(), area="中央")
    cycle(conn, workspace, rules, cfg)
    c = case(conn, "HCONF")
    assert c["status"] == "convened" and kinds(conn, cfg, ON) == []
    # opened long ago (an assessment first), sent to a conference today: not too far
    conn.execute("UPDATE cases SET opened_on = '2026-09-01' WHERE case_id = ?", (c["case_id"],))
    conn.commit()
    assert kinds(conn, cfg, ON) == [], "会議までの営業日は振り分けの日から数える"
    conn.execute("UPDATE cases SET pathway_on = '2026-10-01' WHERE case_id = ?", (c["case_id"],))
    conn.commit()
    (v,) = run_audit(conn, cfg, ON).violations
    assert (v.kind, v.case_id, v.since) == ("conference_too_far", c["case_id"], "2026-10-01"), v
