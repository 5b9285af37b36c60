"""参加支援's commands as a coordinator types them: engine refer, referral, followup, need, referrals —
Japanese results, refusals that say why (exit 1, nothing recorded), no traceback."""

from __future__ import annotations

import json

from engine.support.business_days import Calendar
from tests.helpers.casework import DAY, MEETING_DAY, accept, decide, open_cases, plan_text
from tests.helpers.cli import cli


def test_refer_answer_follow_up_and_list_from_the_command_line(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text())
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    r = cli(workspace, "refer", case_id, "--member", "世帯員2", "--place", "ibasho_chuo", "--consent", on=DAY)
    assert r.exit_code == 0 and "紹介 1 を記録" in r.output and "場所へ依頼のメール" in r.output
    r = cli(workspace, "refer", case_id, "--member", "1", "--place", "salon_chuo", "--no-consent", on=DAY)
    assert r.exit_code == 0 and "同行" in r.output
    r = cli(workspace, "referral", "1", "--answer", "accept", on=DAY)
    assert r.exit_code == 0 and "受入れ決定" in r.output and "定着の確認 6 件" in r.output
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    assert cli(workspace, "sweep", on=first).exit_code == 0
    listed = cli(workspace, "referrals", "--json", on=first)
    rows = json.loads(listed.output)
    assert [r["state"] for r in rows] == ["受入れ決定", "受入れの依頼中"] and rows[0]["member"].startswith("世帯員2")
    (fid,) = conn.execute("SELECT followup_id FROM followups WHERE side = 'lead' AND status = 'asked'").fetchone()
    r = cli(workspace, "followup", str(fid), "--result", "well", on=first)
    assert r.exit_code == 0 and "参加中" in r.output
    text = cli(workspace, "referrals", "--case", case_id, on=first).output
    assert "参加中" in text and "中央 まちの居場所" in text and "通えていて" not in text  # the list: states, not notes
    r = cli(
        workspace,
        "need",
        case_id,
        "--member",
        "1",
        "--need",
        "日中の活動・通いの場",
        "--no-place",
        "--reason",
        "町内に受け入れられる場所がない",
        on=first,
    )
    assert r.exit_code == 0 and "紹介できる場所がないこと" in r.output
    assert conn.execute("SELECT status FROM participation_needs WHERE need = 'daily_activity'").fetchall() == [
        ("unmatched",)
    ]


def test_refusals_name_what_is_wrong_and_record_nothing(conn, workspace, rules, cfg):
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text())
    before = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()
    for args, phrase in (
        (("refer", case_id, "--member", "2", "--place", "ibasho_cho", "--consent"), "did you mean 'ibasho_chuo'"),
        (("refer", case_id, "--member", "2", "--place", "shuro_chuo", "--no-consent"), "本人の同意"),
        (("refer", case_id, "--member", "7", "--place", "ibasho_chuo", "--consent"), "世帯員"),
        (("referral", "99", "--answer", "accept"), "紹介 99 はありません"),
        (("followup", "5", "--result", "well"), "確認 5 はありません"),
        (("need", case_id, "--member", "2", "--need", "x", "--reason", "理由"), "--need"),
    ):
        r = cli(workspace, *args, on=DAY)
        assert r.exit_code == 1 and phrase in r.output and "Traceback" not in r.output, (args, r.output)
    r = cli(workspace, "referrals", "--status", "done", on=DAY)
    assert r.exit_code == 2 and "unknown state" in r.output
    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone() == before
