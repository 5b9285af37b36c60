"""The engine CLI end to end: demo JSON, import errors, bad arguments, README coverage."""

import json
import re

from typer.testing import CliRunner

from engine.cli.main import app
from tests.conftest import ROOT

runner = CliRunner()
RULES = str(ROOT / "configs" / "rules")


def demo(workspace, *extra, days=0):
    """The first night only (days=0), unless a simulated span is asked for."""
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
            str(workspace),
            "--rules",
            RULES,
            "--json",
            "--days",
            str(days),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


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


def test_conference_commands_end_to_end(tmp_path):
    ws = tmp_path / "ws"
    out = demo(ws)
    listed = runner.invoke(app, ["meetings", "--workspace", str(ws), "--date", "2026-11-27", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert sum(len(r["cases"]) for r in rows) == out["cases_opened"]
    meeting, agency = rows[0]["meeting_id"], rows[0]["cases"][0]["lead_agency_id"]
    shown = runner.invoke(app, ["agenda", meeting, "--agency", agency, "--workspace", str(ws)])
    assert shown.exit_code == 0 and meeting in shown.output and "第1版" in shown.output
    missing = runner.invoke(app, ["agenda", "M-19990101-1400-S", "--workspace", str(ws)])
    assert missing.exit_code == 2 and "no meeting" in missing.output
    box = runner.invoke(app, ["outbox", "--workspace", str(ws), "--json"])
    assert json.loads(box.output)["counts"]["sent"] == out["emails_sent"]
    again = runner.invoke(app, ["run", "--workspace", str(ws), "--date", "2026-11-27", "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.output)
    assert result["cycle"]["convene"]["cases_opened"] == 0 and result["dispatch"]["send"]["sent"] == 0
    # privacy scan of everything e-mailed, against the synthetic town's names, kana, addresses, birth dates

    assert_no_personal_data_mailed(ws)
    check = runner.invoke(app, ["config", "check"])
    assert check.exit_code == 0 and "12 agencies" in check.output


def assert_no_personal_data_mailed(ws) -> None:
    """Every e-mail in the outbox, scanned for every name, kana, address and birth date of the town."""
    import email
    import email.policy
    import sqlite3

    db = sqlite3.connect(ws / "engine.db")
    secrets = {
        v
        for row in db.execute(
            "SELECT p.name, p.kana, h.address, p.birth_date FROM persons p JOIN households h USING (household_id)"
        )
        for v in row
        if v
    }
    # family and given names alone, from 3 characters (2-character kana such as リー occur in ordinary words: アウトリーチ)
    secrets |= {
        n
        for row in db.execute("SELECT name, kana FROM persons")
        for full in row
        if full
        for n in full.split()
        if len(n) >= 3
    }
    assert len(secrets) > 1000
    mails = list((ws / "outbox").glob("*.eml"))
    assert mails
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = "\n".join(str(msg[h]) for h in ("Subject", "To", "From")) + "\n".join(
            p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"
        )
        hits = [s for s in secrets if s in text]
        assert not hits, f"{hits[:5]} in {path.name}"


def test_demo_simulated_span_ends_with_a_clean_audit(tmp_path):
    """120 days on a fake clock: outcomes, late and missing answers, reminders, escalations, watch
    checkpoints, relapses; the span ends with `engine audit` finding no gap."""
    ws = tmp_path / "ws"
    out = demo(ws, days=120)
    assert out["simulated_until"] == "2027-03-27"
    for key in ("reminders_sent", "escalations", "reopened", "watch_checks"):
        assert out[key] > 0, key
    assert out["audit_violations"] == 0
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
    audit = runner.invoke(app, ["audit", "--workspace", str(ws), "--rules", RULES, "--date", "2027-03-27", "--json"])
    assert audit.exit_code == 0 and json.loads(audit.output)["violations"] == []
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


def test_import_refused_file_gives_message_not_traceback(tmp_path):
    src = tmp_path / "extract"
    src.mkdir()
    (src / "households.csv").write_text("household_id,area\nH1,中央\n", encoding="utf-8")
    (src / "persons.csv").write_text(
        "person_id,household_id,name,kana,birth_date,sex,relationship,nationality\n", encoding="utf-8"
    )
    (src / "records.csv").write_text("person_id,source,code,value,start_date,end_date\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(src), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "import refused" in result.output and "address" in result.output and "Traceback" not in result.output


def test_bad_date_argument(tmp_path):
    result = runner.invoke(app, ["screen", "--workspace", str(tmp_path / "ws"), "--rules", RULES, "--date", "R6.13.1"])
    assert result.exit_code == 2 and "--date" in result.output


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [f"{g.name} {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]
    for name in names:
        assert re.search(rf"`engine {name}\b", readme), f"engine {name} is not documented in README.md"


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


def test_paths_and_encodings_are_checked(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["generate", str(a_file)], "is a file"),
        (["generate", str(tmp_path / "t"), "--encoding", "latin1"], "use utf-8 or cp932"),
        (["import", str(tmp_path), "--workspace", str(a_file)], "is a file"),
        (["demo", "--workspace", str(a_file), "--rules", RULES], "is a file"),
        (["screen", "--workspace", str(tmp_path / "typo"), "--rules", RULES], "no database at"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not (tmp_path / "typo").exists()
