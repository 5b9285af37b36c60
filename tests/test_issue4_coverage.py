"""Issue 4 (case lifecycle): the promises the other lifecycle tests leave open, and the defects
found by using the CLI as a coordinator would.

Tests marked xfail(strict=True) show a bug; the others fill a gap in coverage (a promise no
other test would catch breaking). The town is the one of tests/casework.py: 8050 households in
中央 (lead houkatsu_chuo) screened on ON = 2026-11-27 (Fri), booked into the 支援会議 of
2026-12-04 (Fri).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.casework.audit import run_audit
from engine.casework.handshake import accept, record_contact
from engine.casework.history import history, render_history
from engine.casework.outcome import OutcomeInvalid
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.cli.main import app
from engine.config.files import ConfigInvalid, load_config
from engine.outbox.mail import FileTransport, send_pending
from engine.support.business_days import add_months
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.casework import LEAD, MEETING_DAY, add_arrears, case, checkpoints, d, decide, open_cases
from tests.conftest import ROOT
from tests.town import ON, add_household, person

RULES_DIR = ROOT / "configs" / "rules"
CONFIG_DIR = ROOT / "configs"
runner = CliRunner()


def with_lc(cfg, **values):
    """The configuration with some lifecycle.yaml values changed."""
    return cfg.model_copy(update={"lifecycle": cfg.lifecycle.model_copy(update=values)})


def plan(
    conn,
    workspace,
    rules,
    cfg,
    case_id,
    meeting_id,
    *,
    on=MEETING_DAY,
    lead=LEAD,
    roles=((LEAD, "介護サービスの利用調整", "2027-01-29"),),
    accepted=True,
):
    lines = "".join(f"  - {{agency: {a}, action: {act}, due: {due}}}\n" for a, act, due in roles)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, on, f"decision: plan\nlead: {lead}\nroles:\n{lines}")
    if accepted:
        assert accept(conn, cfg, case_id, on, "tester").status == "active"


def close(conn, workspace, rules, cfg, case_id, meeting_id, on: date, lead: str = LEAD):
    decide(
        conn,
        workspace,
        rules,
        cfg,
        case_id,
        meeting_id,
        on,
        f"decision: close\nlead: {lead}\nreason: 介護サービスにつながったため\n",
    )
    assert accept(conn, cfg, case_id, on, "tester").status == "closed"


def escalation_kinds(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT subject_key, kind FROM escalations"))


def kinds(conn, cfg, on: date) -> list[str]:
    return [v.kind for v in run_audit(conn, cfg, on).violations]


def cli(workspace: Path, *args: str, on: date | None = None):
    extra = ["--workspace", str(workspace)]
    if args[0] != "history":
        extra += ["--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
        extra += (
            ["--by", "koordinator"] if args[0] in ("outcome", "accept", "decline", "watch", "contact", "done") else []
        )
        if on:
            extra += ["--date", on.isoformat()]
    return runner.invoke(app, [*args, *extra])


# =================================================================================================
# 1. every interval of lifecycle.yaml is honoured (the issue: "(configurable)")
# =================================================================================================
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


def test_plan_evaluation_interval_is_configurable(conn, workspace, rules, cfg, cal):
    six = with_lc(cfg, evaluation_months=6)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, six, cid, mid)
    (evaluation,) = checkpoints(conn, cid, "evaluation")
    assert (
        evaluation["due_on"] == cal.add(add_months(MEETING_DAY, 6), 0).isoformat() == "2027-06-04"
    )  # default: 2027-03-04
    assert (
        daily_sweep(conn, rules, six, d("2027-03-04")).evaluations_booked == 0 and case(conn, cid)["meeting_id"] == mid
    )
    assert daily_sweep(conn, rules, six, d("2027-06-04")).evaluations_booked == 1
    assert case(conn, cid)["meeting_id"] != mid and case(conn, cid)["status"] == "active"


def test_watch_months_are_configurable_and_the_last_one_archives(conn, workspace, rules, cfg, cal):
    short = with_lc(cfg, watch_months=(1, 2))
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, short, cid, mid, d("2026-12-07"))
    due = [c["due_on"] for c in checkpoints(conn, cid, "watch")]
    assert due == ["2027-01-07", "2027-02-08"]  # 2027-02-07 is a Sunday
    assert all(cal.is_business_day(d(x)) for x in due)
    assert answer_checkpoint(conn, rules, short, cid, "stable", d("2027-01-07"), "tester").status == "closed"
    assert answer_checkpoint(conn, rules, short, cid, "stable", d("2027-02-08"), "tester").status == "archived"


def test_no_contact_days_is_configurable(conn, workspace, rules, cfg):
    thirty = with_lc(cfg, no_contact_days=30)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    assert daily_sweep(conn, rules, thirty, d("2027-01-05")).reopened == 0  # 29 days
    assert daily_sweep(conn, rules, cfg, d("2027-01-07")).reopened == 0  # 31 days: nothing with the default 90
    assert case(conn, cid)["status"] == "closed"
    assert daily_sweep(conn, rules, thirty, d("2027-01-07")).reopened == 1
    assert case(conn, cid)["status"] in ("convened", "detected")
    reason = conn.execute(
        "SELECT reason FROM audit_log WHERE case_id = ? AND to_status = 'reopened'", (cid,)
    ).fetchone()[0]
    assert "30日間ない" in reason


def test_lead_answer_business_days_is_configurable(conn, workspace, rules, cfg, cal):
    two = with_lc(cfg, lead_answer_business_days=2)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, two, cid, mid, accepted=False)
    request_id, due = conn.execute("SELECT request_id, due_on FROM lead_requests WHERE case_id = ?", (cid,)).fetchone()
    assert due == cal.add(MEETING_DAY, 2).isoformat() == "2026-12-08"  # default: 2026-12-11
    assert daily_sweep(conn, rules, two, d("2026-12-08")).escalations == 0
    daily_sweep(conn, rules, two, d("2026-12-09"))
    assert escalation_kinds(conn).get(f"lead:{request_id}") == "lead_no_answer"


def test_reminder_business_days_is_configurable(conn, workspace, rules, cfg):
    one = with_lc(cfg, reminder_business_days=1)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,)).fetchone()
    assert daily_sweep(conn, rules, one, d("2026-12-08")).reminders == 0  # the default (3) would remind on 12-07
    assert daily_sweep(conn, rules, one, d("2026-12-09")).reminders == 1
    assert conn.execute("SELECT message_key FROM outbox WHERE kind = 'reminder'").fetchall() == [
        (f"reminder:{aid}:due",)
    ]


def test_outcome_grace_is_configurable_for_the_escalation_and_the_audit(conn, workspace, rules, cfg):
    four = with_lc(cfg, outcome_business_days=4)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert kinds(conn, cfg, d("2026-12-09")) == ["meeting_without_outcome"]  # the default grace (2) has passed
    assert kinds(conn, four, d("2026-12-10")) == []
    assert daily_sweep(conn, rules, four, d("2026-12-10")).escalations == 0
    assert daily_sweep(conn, rules, four, d("2026-12-11")).escalations == 1
    assert escalation_kinds(conn) == {f"outcome:{cid}:{mid}": "outcome_missing"}
    assert kinds(conn, four, d("2026-12-11")) == ["meeting_without_outcome"]


def test_watch_answer_business_days_is_configurable(conn, workspace, rules, cfg):
    two = with_lc(cfg, watch_answer_business_days=2)
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    assert daily_sweep(conn, rules, two, d("2027-03-23")).checkpoints_asked == 1
    first = checkpoints(conn, cid, "watch")[0]
    assert first["answer_due"] == "2027-03-25"  # default: 2027-03-30
    assert daily_sweep(conn, rules, two, d("2027-03-25")).escalations == 0
    daily_sweep(conn, rules, two, d("2027-03-26"))
    assert escalation_kinds(conn) == {f"checkpoint:{first['checkpoint_id']}": "checkpoint_no_answer"}


def add_yotaikyo(conn, hid="HYOTAI"):
    return add_household(
        conn,
        hid,
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )


def test_check_back_months_of_a_routed_case_is_configurable(conn, workspace, rules, cfg, cal):
    one = with_lc(cfg, check_back_months=1)
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, one, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    assert case(conn, cid)["status"] == "routed"
    (cb,) = checkpoints(conn, cid, "check_back")
    assert cb["due_on"] == cal.add(add_months(ON, 1), 0).isoformat() == "2026-12-28"
    assert daily_sweep(conn, rules, one, d("2026-12-28")).checkpoints_asked == 1
    assert conn.execute(
        "SELECT agency_id FROM outbox WHERE message_key = ?", (f"checkpoint:{cb['checkpoint_id']}",)
    ).fetchone() == (case(conn, cid)["routed_to"],)


# =================================================================================================
# 2. もどし・つなぎ直し: every reopen trigger convenes the case again with the previous lead
# =================================================================================================
OTHER_LEAD = "jiritsu_soudan"  # a member agency the lead rules would not choose for an 8050 household


@pytest.mark.parametrize(
    "trigger",
    [
        "watch_concern",
        "watch_lost_contact",
        "crisis_between_checkpoints",
        "no_contact",
        "new_flag",
        "suspension_review",
    ],
)
def test_every_reopen_trigger_proposes_the_previous_lead_who_must_accept_again(conn, workspace, rules, cfg, trigger):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    if trigger == "suspension_review":
        plan(conn, workspace, rules, cfg, cid, mid, lead=OTHER_LEAD, roles=((OTHER_LEAD, "家計相談", "2027-01-29"),))
        daily_sweep(conn, rules, cfg, d("2027-03-04"))  # the evaluation books a meeting
        m2 = case(conn, cid)["meeting_id"]
        held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (m2,)).fetchone()[0])
        decide(
            conn,
            workspace,
            rules,
            cfg,
            cid,
            m2,
            held,
            "decision: suspend\nreview_on: 2027-05-10\nreason: 本人が入院したため\n",
        )
        day = d("2027-05-10")
        assert daily_sweep(conn, rules, cfg, day).reopened == 1
    else:
        close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"), lead=OTHER_LEAD)
        if trigger in ("watch_concern", "watch_lost_contact"):
            record_contact(conn, cfg, cid, OTHER_LEAD, d("2027-03-01"), "tester")
            daily_sweep(conn, rules, cfg, d("2027-03-08"))
            day = d("2027-03-09")
            answer_checkpoint(conn, rules, cfg, cid, trigger.removeprefix("watch_"), day, "tester")
        elif trigger == "crisis_between_checkpoints":
            day = d("2027-01-15")
            answer_checkpoint(conn, rules, cfg, cid, "concern", day, "tester")
        elif trigger == "no_contact":
            record_contact(conn, cfg, cid, LEAD, d("2027-01-10"), "tester")  # someone else's contact does not count
            assert (
                daily_sweep(conn, rules, cfg, d("2027-03-08")).reopened == 0
            )  # 91 days, but the +3-month checkpoint is asked
            day = d(checkpoints(conn, cid, "watch")[0]["answer_due"]) + timedelta(days=1)
            assert daily_sweep(conn, rules, cfg, day).reopened == 1
        else:
            day = d("2027-01-20")
            add_arrears(conn, "H1", 1, day.isoformat())
            assert nightly_cycle(conn, workspace, rules, cfg, day).convene.reopened == 1
    row = case(conn, cid)
    assert row["status"] in ("convened", "detected") and row["reopen_count"] == 1
    assert row["lead_agency_id"] == OTHER_LEAD and "前回の主担当機関" in row["lead_reason"]
    assert row["lead_confirmed_on"] is None  # the previous lead must accept again
    assert (cid, OTHER_LEAD) in conn.execute(
        "SELECT case_id, agency_id FROM case_agencies WHERE case_id = ?", (cid,)
    ).fetchall()
    assert conn.execute("SELECT COUNT(*) FROM cases WHERE household_id = 'H1'").fetchone()[0] == 1  # the same case
    moves = conn.execute(
        "SELECT to_status FROM audit_log WHERE case_id = ? AND event = 'transition' AND on_day = ? ORDER BY seq",
        (cid, day.isoformat()),
    ).fetchall()
    assert ("reopened",) in moves


# =================================================================================================
# 3. the gap audit: the invariants (and branches) no other test creates
# =================================================================================================
def test_audit_no_lead_for_an_open_case_without_any_lead(conn, workspace, rules, cfg):
    ((cid, _),) = open_cases(conn, workspace, rules, cfg)
    conn.execute("UPDATE cases SET lead_agency_id = NULL WHERE case_id = ?", (cid,))
    conn.commit()
    (v,) = [v for v in run_audit(conn, cfg, d("2026-12-01")).violations if v.kind == "no_lead"]
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, ON.isoformat(), 4)


def test_audit_no_next_step_for_a_convened_case_without_a_meeting(conn, workspace, rules, cfg):
    ((cid, _),) = open_cases(conn, workspace, rules, cfg)
    conn.execute("UPDATE cases SET meeting_id = NULL WHERE case_id = ?", (cid,))
    conn.commit()
    assert kinds(conn, cfg, d("2026-12-01")) == ["no_next_step"]


def test_audit_no_next_step_for_a_suspended_case_without_a_review(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-02-01\nreason: 本人が入院したため\n",
    )
    assert kinds(conn, cfg, d("2026-12-10")) == []
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ?", (cid,))
    conn.commit()
    (v,) = run_audit(conn, cfg, d("2026-12-10")).violations
    assert (v.kind, v.case_id, v.since, v.days) == ("no_next_step", cid, MEETING_DAY.isoformat(), 6)


def test_audit_no_next_step_for_a_routed_case_without_a_check_back(conn, workspace, rules, cfg):
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    assert kinds(conn, cfg, d("2026-12-01")) == []
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ?", (cid,))
    conn.commit()
    (v,) = run_audit(conn, cfg, d("2026-12-01")).violations
    assert (v.kind, v.household_id, v.case_id) == ("no_next_step", "HYOTAI", cid)


def test_audit_an_overdue_lead_request_without_escalation_until_the_sweep(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, accepted=False)
    (v,) = run_audit(conn, cfg, d("2026-12-14")).violations  # due 2026-12-11
    assert (v.kind, v.case_id, v.since, v.days) == ("overdue_without_escalation", cid, "2026-12-11", 3)
    assert "受諾依頼" in v.detail
    assert daily_sweep(conn, rules, cfg, d("2026-12-14")).violations == 0


def test_audit_an_unanswered_checkpoint_without_escalation_until_the_sweep(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-23"))  # asked, answer due 2027-03-30
    (v,) = run_audit(conn, cfg, d("2027-03-31")).violations
    assert (v.kind, v.case_id, v.since, v.days) == ("overdue_without_escalation", cid, "2027-03-30", 1)
    assert daily_sweep(conn, rules, cfg, d("2027-03-31")).violations == 0


def test_audit_a_checkpoint_past_its_day_that_nobody_asked(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    (v,) = run_audit(conn, cfg, d("2027-03-25")).violations  # the sweep did not run on 03-23 / 03-24
    assert (v.kind, v.case_id, v.since, v.days) == ("overdue_without_escalation", cid, "2027-03-23", 2)
    assert daily_sweep(conn, rules, cfg, d("2027-03-25")).violations == 0  # asked now


def test_audit_text_names_household_case_since_and_days(conn, workspace, rules, cfg):
    ((cid, _),) = open_cases(conn, workspace, rules, cfg)
    conn.commit()
    shown = cli(workspace, "audit", on=d("2026-12-09"))
    assert shown.exit_code == 1
    assert f"世帯 H1 事案 {cid}" in shown.stdout and "2026-12-04 から 5 日" in shown.stdout


def test_the_digest_carries_the_audit_violations_by_case_only(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg, "HQZ9")
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ?", (cid,))
    conn.commit()
    result = daily_sweep(conn, rules, cfg, d("2026-12-08"))
    assert result.violations == 1 and result.digest
    body = json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = 'digest:2026-12-08'").fetchone()[0])[
        "text"
    ]
    assert "監査の指摘 1 件" in body and cid in body and "終結したが見守りの予定がない" in body
    assert "HQZ9" not in body  # the household number stays in `engine audit`


# =================================================================================================
# 4. `make demo` runs the span by default
# =================================================================================================
def test_make_demo_runs_the_simulated_span_by_default():
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M).group(1)
    assert "engine demo" in recipe and "--days" not in recipe  # the CLI default decides
    command = typer.main.get_command(app).commands["demo"]
    (days,) = [p for p in command.params if p.name == "days"]
    assert days.default == 120


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory):
    """`engine demo` as `make demo` calls it (no --days), on a small town."""
    ws = tmp_path_factory.mktemp("demo") / "ws"
    result = runner.invoke(
        app,
        [
            "demo",
            "--households",
            "400",
            "--seed",
            "3",
            "--date",
            "2026-11-27",
            "--workspace",
            str(ws),
            "--rules",
            str(RULES_DIR),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return ws, json.loads(result.stdout)


def test_demo_default_span_reports_the_lifecycle_keys_and_a_clean_audit(default_demo):
    ws, out = default_demo
    assert (out["simulated_days"], out["simulated_until"]) == (120, "2027-03-27")
    for key in ("reminders_sent", "escalations", "reopened", "watch_checks", "audit_violations"):
        assert isinstance(out[key], int), key
    assert out["audit_violations"] == 0
    life = out["lifecycle"]
    assert life["never_answered"] > 0 and life["accepted_late"] > 0  # some agencies answer late or never
    assert out["case_states"].get("closed", 0) + out["case_states"].get("archived", 0) > 0 and out["reopened"] > 0
    assert cli(ws, "audit", on=d("2027-03-27")).exit_code == 0


def test_demo_hint_names_an_upcoming_meeting(default_demo):
    ws, out = default_demo
    meeting = re.search(r"engine agenda (M-\d{8}-\d{4}-[A-Z])", out["text"]).group(1)
    import sqlite3

    held_on = (
        sqlite3.connect(ws / "engine.db")
        .execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting,))
        .fetchone()[0]
    )
    assert held_on >= out["simulated_until"]


# =================================================================================================
# 5. defects found with the CLI
# =================================================================================================
def test_every_history_entry_has_a_japanese_label(conn, workspace, rules, cfg):
    (a, ma), (b, mb) = open_cases(conn, workspace, rules, cfg, "HA", "HB")
    close(conn, workspace, rules, cfg, a, ma, d("2026-12-07"))
    answer_checkpoint(conn, rules, cfg, a, "concern", d("2027-01-15"), "tester")  # a crisis between checkpoints
    plan(conn, workspace, rules, cfg, b, mb, accepted=False)
    # the pending request of b is withdrawn when the conference suspends the case at its next meeting
    add_arrears(conn, "HB", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, b)["meeting_id"]
    held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (m2,)).fetchone()[0])
    decide(
        conn,
        workspace,
        rules,
        cfg,
        b,
        m2,
        held,
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が入院したため\n",
    )
    seen = {e.event: e.label for cid in (a, b) for e in history(conn, cid)}
    assert {"crisis_reported", "lead_request_withdrawn"} <= set(seen)
    english = {event: label for event, label in seen.items() if not re.search(r"[ぁ-んァ-ヶ一-龥]", label)}
    assert english == {}
    text = render_history(a, history(conn, a)) + render_history(b, history(conn, b))
    assert "crisis_reported" not in text and "lead_request_withdrawn" not in text


def test_history_shows_the_action_numbers_engine_done_needs(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        roles=((LEAD, "介護サービスの利用調整", "2027-01-29"), ("jiritsu_soudan", "就労に向けた相談", "2027-01-29")),
    )
    ids = [
        a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ? ORDER BY action_id", (cid,))
    ]
    failed = cli(workspace, "done", "9999", on=d("2026-12-07"))
    assert "engine history" in failed.output  # the hint a coordinator follows
    shown = cli(workspace, "history", cid).stdout
    assert all(re.search(rf"役割 {i}\b", shown) for i in ids), shown


@pytest.mark.parametrize(
    "command", [("accept",), ("decline", "--reason", "担当地区外のため")], ids=["accept", "decline"]
)
def test_answering_for_an_unknown_case_says_the_case_does_not_exist(conn, workspace, rules, cfg, command):
    open_cases(conn, workspace, rules, cfg)
    conn.commit()
    result = cli(workspace, command[0], "C-2026-99999", *command[1:], on=d("2026-12-07"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "事案 C-2026-99999 はありません" in result.output, result.output


def test_history_lists_only_the_agendas_that_carried_the_case(conn, workspace, rules, cfg):
    add_household(
        conn, "HCHUO", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn,
        "HMINAMI",
        person(81, "世帯主", ("care_level", "要介護2"), sex="M"),
        person(50, "子", sex="M"),
        area="南部",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    (c1, m1, lead1), (c2, m2, lead2) = conn.execute(
        "SELECT case_id, meeting_id, lead_agency_id FROM cases ORDER BY household_id"
    ).fetchall()
    assert m1 == m2 and lead1 != lead2  # one meeting, two different leads
    send_pending(
        conn,
        cfg,
        workspace,
        transport=FileTransport(workspace / "outbox"),
        now=datetime(2026, 11, 27, 23, 0, tzinfo=UTC),
    )
    invited = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (c2,))}
    assert lead1 not in invited
    told = {e.detail["agency"] for e in history(conn, c2) if e.event == "mail_sent"}
    assert told and told <= invited, f"{c2}'s history says {sorted(told - invited)} were sent it"


def test_dispatch_on_a_given_day_uses_that_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2027-01-12"),))
    daily_sweep(conn, rules, cfg, d("2027-01-07"))  # queues the "due soon" reminder
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,)).fetchone()
    day = d("2027-01-14")  # the action is overdue by then: the "due soon" reminder must be withheld
    dispatch(conn, cfg, workspace, day, transport=FileTransport(workspace / "outbox"))
    logged = {r for (r,) in conn.execute("SELECT DISTINCT on_day FROM audit_log WHERE event = 'mail_sent'")}
    status = conn.execute("SELECT status FROM outbox WHERE message_key = ?", (f"reminder:{aid}:due",)).fetchone()[0]
    assert logged == {day.isoformat()} and status == "superseded", (logged, status)


def test_an_outcome_file_that_is_a_list_says_how_to_fix_it(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    with pytest.raises(OutcomeInvalid) as err:
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, "- decision: plan\n  lead: houkatsu_chuo\n")
    text = "\n".join(str(p) for p in err.value.problems)
    assert "instance of Outcome" not in text and "decision:" in text, text


def test_closure_without_watch_names_the_configured_checkpoints(conn, workspace, rules, cfg):
    short = with_lc(cfg, watch_months=(1, 2))
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, short, cid, mid, d("2026-12-07"))
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ?", (cid,))
    conn.commit()
    (v,) = run_audit(conn, short, d("2026-12-08")).violations
    assert v.kind == "closure_without_watch" and "+12" not in v.detail and "+1" in v.detail, v.detail


def test_a_crisis_report_between_checkpoints_is_not_shown_as_checkpoint_0(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    result = cli(workspace, "watch", cid, "--result", "concern", on=d("2027-01-15"))
    assert result.exit_code == 0, result.output
    assert "確認 0" not in result.output, result.output


def test_the_hint_for_a_wrong_case_id_leads_to_the_case_ids(conn, workspace, rules, cfg, tmp_path):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.commit()
    f = tmp_path / "o.yaml"
    f.write_text("decision: continue\n", encoding="utf-8")
    refused = cli(workspace, "outcome", mid, "C-2026-0001", "--file", str(f), on=MEETING_DAY)
    assert refused.exit_code == 1
    hint = re.search(r"`(engine [^`]+)`", refused.output).group(1)
    followed = runner.invoke(app, [*hint.split()[1:], "--workspace", str(workspace)])
    assert followed.exit_code == 0 and cid in followed.output, followed.output
