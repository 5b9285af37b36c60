"""The lifecycle commands of the CLI (outcome, accept, decline, watch, history, audit, contact, done):
what they print, errors as a message and exit code 1, hints that lead somewhere, an example in
every --help."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from engine.cli.main import app
from tests.helpers.casework import DAY, MEETING_DAY, PLAN, ROLE, close, d, open_cases, status_of
from tests.helpers.cli import cli as run_cli
from tests.helpers.cli import runner
from tests.helpers.town import ON


def cli(ws: Path, *args: str, on: date | None = DAY):
    """A lifecycle command, recorded on DAY unless `on` says otherwise."""
    return run_cli(ws, *args, on=on)


def test_cli_outcome_accept_and_history(convened):
    ws = convened.workspace
    f = convened.file(PLAN)
    done = cli(ws, "outcome", convened.meeting, convened.case, "--file", str(f))
    assert done.exit_code == 0, done.output
    assert convened.case in done.output and "主担当機関の受諾待ち" in done.output and "受諾依頼" in done.output
    accepted = cli(ws, "accept", convened.case, "--agency", "houkatsu_chuo")
    assert accepted.exit_code == 0, accepted.output
    assert "受諾を記録" in accepted.output and "支援中" in accepted.output
    assert status_of(convened.conn, convened.case) == "active"
    assert {
        a for (a,) in convened.conn.execute("SELECT DISTINCT actor FROM audit_log WHERE on_day = ?", (DAY.isoformat(),))
    } == {"koordinator"}
    shown = cli(ws, "history", convened.case)
    assert shown.exit_code == 0, shown.output
    assert (
        "状態の変更" in shown.output
        and "受諾" in shown.output
        and shown.output.startswith(f"事案 {convened.case} の経過")
    )
    as_json = cli(ws, "history", convened.case, "--json")
    entries = json.loads(as_json.output)
    assert {e["event"] for e in entries} >= {"outcome", "lead_accepted"}
    assert all(e["config_hash"] == convened.cfg.hash for e in entries if e["actor"] == "koordinator")


def test_cli_decline_asks_the_next_candidate(convened):
    ws = convened.workspace
    assert cli(ws, "outcome", convened.meeting, convened.case, "--file", str(convened.file(PLAN))).exit_code == 0
    result = cli(ws, "decline", convened.case, "--reason", "担当件数が上限のため")
    assert result.exit_code == 0, result.output
    (nxt,) = convened.conn.execute(
        "SELECT agency_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (convened.case,)
    ).fetchone()
    assert "辞退を記録" in result.output and nxt in result.output and nxt != "houkatsu_chuo"


def test_cli_contact_and_done(convened):
    ws = convened.workspace
    assert cli(ws, "outcome", convened.meeting, convened.case, "--file", str(convened.file(PLAN))).exit_code == 0
    (action_id,) = convened.conn.execute(
        "SELECT action_id FROM case_actions WHERE case_id = ?", (convened.case,)
    ).fetchone()
    assert cli(ws, "done", str(action_id)).exit_code == 0
    assert cli(ws, "contact", convened.case, "--agency", "houkatsu_chuo").exit_code == 0
    assert convened.conn.execute(
        "SELECT via FROM contacts WHERE case_id = ? ORDER BY rowid", (convened.case,)
    ).fetchall() == [
        ("action",),
        ("contact",),
    ]


def assert_clean_failure(result, *fragments):
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not an uncaught exception
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ")
    for f in fragments:
        assert f in result.output, result.output


def test_cli_errors_are_a_message_and_exit_code_1(convened):
    ws = convened.workspace
    before = convened.snapshot()
    bad = convened.file("decision: plan\nlead: houkatsu_chu\n" + ROLE, "bad.yaml")
    assert_clean_failure(
        cli(ws, "outcome", convened.meeting, convened.case, "--file", str(bad)),
        f"{bad}:2",
        "[lead]",
        "did you mean 'houkatsu_chuo'",
        "nothing was recorded",
    )
    good = convened.file(PLAN, "good.yaml")
    assert_clean_failure(
        cli(ws, "outcome", convened.meeting, convened.case, "--file", str(good), on=ON),
        "2026-12-04",
        "何も記録していません",
    )
    assert_clean_failure(
        cli(ws, "outcome", "M-19990101-1000-S", convened.case, "--file", str(good)), "M-19990101-1000-S"
    )
    assert_clean_failure(cli(ws, "accept", convened.case), "回答待ち")
    assert_clean_failure(cli(ws, "history", "C-2026-99999"), "C-2026-99999")
    assert_clean_failure(cli(ws, "contact", convened.case, "--agency", "nobody"), "unknown agency")
    assert_clean_failure(cli(ws, "done", "9999"), "9999")
    assert convened.snapshot() == before
    # with a pending request: the wrong agency, and a decline without a reason
    assert cli(ws, "outcome", convened.meeting, convened.case, "--file", str(good)).exit_code == 0
    pending = convened.snapshot()
    assert_clean_failure(cli(ws, "accept", convened.case, "--agency", "jiritsu_soudan"), "houkatsu_chuo")
    assert_clean_failure(cli(ws, "decline", convened.case, "--reason", " "), "--reason")
    assert_clean_failure(cli(ws, "outcome", convened.meeting, convened.case, "--file", str(good)), "記録済み")
    assert convened.snapshot() == pending


@pytest.mark.parametrize("command", ["outcome", "accept", "decline", "watch", "history", "audit", "contact", "done"])
def test_cli_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"engine {command}" in result.output


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
@pytest.mark.parametrize(
    "command", [("accept",), ("decline", "--reason", "担当地区外のため")], ids=["accept", "decline"]
)
def test_answering_for_an_unknown_case_says_the_case_does_not_exist(conn, workspace, rules, cfg, command):
    open_cases(conn, workspace, rules, cfg)
    conn.commit()
    result = cli(workspace, command[0], "C-2026-99999", *command[1:], on=d("2026-12-07"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "事案 C-2026-99999 はありません" in result.output, result.output


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_a_crisis_report_between_checkpoints_is_not_shown_as_checkpoint_0(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    result = cli(workspace, "watch", cid, "--result", "concern", on=d("2027-01-15"))
    assert result.exit_code == 0, result.output
    assert "確認 0" not in result.output and "確認 番号 0" not in result.output, result.output


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
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
