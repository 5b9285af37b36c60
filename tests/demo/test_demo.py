"""`engine demo`: the JSON summary of the first night, the simulated span (120 days by default, as `make
demo` runs it) ending with a clean audit, reproducible, never run over a workspace with real data."""

from __future__ import annotations

import json
import re

import pytest
import typer

from engine.cli.main import app
from tests.helpers.casework import d
from tests.helpers.cli import cli, runner
from tests.helpers.demo import assert_no_personal_data_mailed, demo
from tests.helpers.paths import ROOT, RULES_DIR

RULES = str(RULES_DIR)


def test_demo_json_summary(tmp_path, rules):
    out = demo(tmp_path / "ws")
    assert out["households"] == 400 and out["persons"] > 400 and out["records"] > 0
    assert out["rejected_rows"] == 5  # the demo's deliberately broken rows
    assert set(out["flags"]) == set(rules.flags)
    assert sum(out["flags"].values()) == out["screen"]["flags_opened"] > 0
    assert out["flagged_households"] <= out["households"]
    assert (tmp_path / "ws" / "engine.db").exists()
    # the whole cycle: flags → cases → meetings → agendas → outbox
    assert out["cases_opened"] > 0 and out["cases_routed"] >= 0 and out["meetings"] > 0
    assert out["agendas"] > 0 and out["emails_sent"] == len(list((tmp_path / "ws" / "outbox").glob("*.eml"))) > 0
    assert out["emails_failed"] == 0


PARTICIPATION_KEYS = (
    "referrals_requested",
    "referrals_accepted",
    "referrals_declined",
    "followups_answered",
    "participation_reopened",
    "unmatched_needs",
)


def test_demo_simulated_span_ends_with_an_audit_of_only_unmatched_needs(tmp_path):
    """120 days on a fake clock: outcomes, late and missing answers, reminders, escalations, watch
    checkpoints, relapses, 参加支援's referrals; the span ends with `engine audit` finding no gap but
    the needs no place of the town could take (need_without_referral)."""
    ws = tmp_path / "ws"
    out = demo(ws, days=120)
    assert out["simulated_until"] == "2027-03-27"
    for key in ("reminders_sent", "escalations", "reopened", "watch_checks", "link_answers", *PARTICIPATION_KEYS):
        assert out[key] > 0, key
    assert out["audit_violations"] <= out["unmatched_needs"]
    life = out["lifecycle"]
    assert life["outcomes"] > 0 and life["outcomes_late"] > 0 and life["accepted_late"] > 0 and life["declined"] > 0
    assert life["relapse_households"] > 0 and life["actions_late"] > 0
    assert {"active", "closed"} <= set(out["case_states"])
    # the figures come from the database: the same counts as the tables hold
    import sqlite3

    db = sqlite3.connect(ws / "engine.db")
    assert (
        out["reminders_sent"]
        == db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'reminder' AND status = 'sent'").fetchone()[0]
    )
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'digest'").fetchone()[0] > 60  # one per business day
    # the agencies answered through the links in their e-mails: the audit log says so
    assert (
        out["link_answers"]
        == out["lifecycle"]["link_answers"]
        == db.execute(
            "SELECT COUNT(*) FROM audit_log WHERE event = 'answered_via_link' AND actor LIKE '% (リンク)'"
        ).fetchone()[0]
    )
    audit = runner.invoke(app, ["audit", "--workspace", str(ws), "--rules", RULES, "--date", "2027-03-27", "--json"])
    violations = json.loads(audit.output)["violations"]
    assert len(violations) == out["audit_violations"]
    assert {v["kind"] for v in violations} <= {"need_without_referral"}
    open_needs = db.execute(
        "SELECT COUNT(*) FROM participation_needs n JOIN cases c USING (case_id) WHERE n.status = 'open' AND c.is_open = 1"
    ).fetchone()[0]
    assert len(violations) <= open_needs  # only needs the coordinator has not yet referred or explained
    no_place = db.execute("SELECT COUNT(*) FROM participation_needs WHERE status = 'unmatched'").fetchone()[0]
    assert no_place == out["lifecycle"]["needs_settled"] > 0  # no place in town: the coordinator said so
    # `engine cases` agrees with the clean audit: every open case shows a dated next step
    listed = runner.invoke(app, ["cases", "--workspace", str(ws), "--date", "2027-03-27", "--json"])
    rows = json.loads(listed.output)
    assert listed.exit_code == 0 and len(rows) == db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    assert all(r["next_on"] for r in rows if r["status"] != "archived"), [r for r in rows if not r["next_on"]][:3]
    suspended = runner.invoke(
        app, ["cases", "--workspace", str(ws), "--date", "2027-03-27", "--status", "lead_pending"]
    )
    assert suspended.exit_code == 0 and "受諾回答期限" in suspended.output
    assert runner.invoke(app, ["cases", "--workspace", str(ws), "--status", "open"]).exit_code == 2
    case = db.execute("SELECT case_id FROM cases WHERE reopen_count > 0 ORDER BY case_id LIMIT 1").fetchone()[0]
    shown = runner.invoke(app, ["history", case, "--workspace", str(ws)])
    assert shown.exit_code == 0 and "再開（もどし）" in shown.output and "会議の結果" in shown.output
    assert_no_personal_data_mailed(ws)


def test_demo_is_reproducible(tmp_path):
    a, b = demo(tmp_path / "a"), demo(tmp_path / "b")
    assert a["flags"] == b["flags"] and a["records"] == b["records"]


def test_demo_refuses_a_workspace_with_other_data(tmp_path):
    ws = tmp_path / "real"
    ws.mkdir()
    (ws / "engine.db").write_bytes(b"")
    result = runner.invoke(app, ["demo", "--households", "10", "--workspace", str(ws), "--rules", RULES])
    assert result.exit_code == 2 and "not from a demo" in result.output
    assert (ws / "engine.db").exists()


def test_demo_never_wipes_an_import_of_real_data(tmp_path):
    ws = tmp_path / "ws"
    demo(ws)
    src = tmp_path / "extract"
    runner.invoke(app, ["generate", str(src), "--households", "5", "--seed", "1"])
    imported = runner.invoke(app, ["import", str(src), "--workspace", str(ws)])
    assert imported.exit_code == 0, imported.output
    again = runner.invoke(app, ["demo", "--households", "10", "--workspace", str(ws), "--rules", RULES])
    assert again.exit_code == 2 and "not from a demo" in again.output
    assert (ws / "engine.db").exists()


# --- `make demo` runs the span by default ------------------------------------------------------------
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
    assert out["audit_violations"] <= out["unmatched_needs"]
    life = out["lifecycle"]
    assert life["never_answered"] > 0 and life["accepted_late"] > 0  # some agencies answer late or never
    assert out["case_states"].get("closed", 0) + out["case_states"].get("archived", 0) > 0 and out["reopened"] > 0
    assert cli(ws, "audit", on=d("2027-03-27")).exit_code == (1 if out["audit_violations"] else 0)


def test_demo_reports_participation_from_the_database(default_demo):
    """参加支援 in the span: places answer referrals (some decline), the lead and the place answer
    follow-ups, a concern or a stop brings a case back; the figures are the tables' own."""
    import sqlite3

    ws, out = default_demo
    for key in PARTICIPATION_KEYS:
        assert isinstance(out[key], int) and out[key] >= 0, key
    assert out["referrals_requested"] >= out["referrals_accepted"] + out["referrals_declined"]
    assert out["referrals_accepted"] > 0 and out["followups_answered"] > 0
    db = sqlite3.connect(ws / "engine.db")
    assert out["referrals_requested"] == db.execute("SELECT COUNT(*) FROM referrals").fetchone()[0] > 0
    assert out["followups_answered"] == db.execute("SELECT COUNT(*) FROM followups WHERE status = 'done'").fetchone()[0]
    unmatched = db.execute("SELECT need_id FROM participation_needs WHERE status IN ('open', 'unmatched')").fetchall()
    assert out["unmatched_needs"] == len(unmatched)
    # every case brought back by a participation answer is one follow-up's concern or stop, or a decline with no place left
    backs = db.execute(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'participation_concern' AND json_extract(detail, '$.brought_back') = 1"
    ).fetchone()[0]
    answers = (
        db.execute("SELECT COUNT(*) FROM followups WHERE result IN ('concern', 'stopped')").fetchone()[0]
        + db.execute("SELECT COUNT(*) FROM referrals WHERE status = 'declined'").fetchone()[0]
    )
    assert out["participation_reopened"] == backs <= answers
    # places answered through the links in their e-mails, introducers through theirs
    assert (
        db.execute(
            "SELECT COUNT(*) FROM answer_links WHERE kind IN ('referral', 'followup') AND used_at IS NOT NULL"
        ).fetchone()[0]
        > 0
    )
    # the directory: 40 places of the demo town, some not verified for a year
    assert out["places"] == 40 and 0 < out["stale_places"] < out["places"]
    (line,) = [x for x in out["text"].splitlines() if x.startswith("参加支援: ")]
    assert f"紹介 {out['referrals_requested']} 件" in line and f"受入れ {out['referrals_accepted']}" in line
    assert f"紹介先の決まらないニーズ {out['unmatched_needs']} 件" in line


def test_demo_participation_is_reproducible(default_demo, tmp_path):
    """The same seed gives the same 参加支援 story."""
    _, out = default_demo
    again = runner.invoke(
        app,
        ["demo", "--households", "400", "--seed", "3", "--date", "2026-11-27", "--workspace", str(tmp_path / "ws")]
        + ["--rules", str(RULES_DIR), "--json"],
    )
    assert again.exit_code == 0, again.output
    other = json.loads(again.stdout)
    assert {k: other[k] for k in PARTICIPATION_KEYS} == {k: out[k] for k in PARTICIPATION_KEYS}


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


def test_a_bad_date_leaves_the_previous_demo_workspace_as_it_was(tmp_path):
    """Every input is checked before the old demo is removed: a typo in --date costs nothing."""
    ws = tmp_path / "ws"
    demo(ws)
    before = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    result = runner.invoke(app, ["demo", "--households", "50", "--workspace", str(ws), "--date", "2026-13-01"])
    assert result.exit_code != 0 and "--date" in result.output
    assert sorted(p.relative_to(ws) for p in ws.rglob("*")) == before
