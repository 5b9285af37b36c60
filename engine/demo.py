"""`engine demo`: the whole cycle on a synthetic town — generate, import, screen, open cases,
book meetings, propose leads, write agendas and e-mail them (file transport: the outbox folder)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from engine.config import Config
from engine.cycle import dispatch, nightly_cycle
from engine.db import connect
from engine.mail import FileTransport
from engine.explain import explain
from engine.generate import generate_town
from engine.importer import import_dir
from engine.rules.model import RuleSet
from engine.screening import screen
from engine.summary import render_summary, summary


def run_demo(workspace: Path, rules: RuleSet, config: Config, *, households: int, seed: int, on: date, bad_rows: int = 5) -> dict:
    """Run the demo in `workspace`; return the JSON summary (with a readable `text`)."""
    town = workspace / "town"
    generated = generate_town(town, households, seed, today=on, bad_rows=bad_rows)
    conn = connect(workspace)
    imported = import_dir(conn, town, today=on, report_dir=workspace / "reports")
    screened = screen(conn, workspace, rules, on, full=True)
    cycle = nightly_cycle(conn, workspace, rules, config, on, screen_first=False)
    # the demo sends at once, whatever the day, and never through a real mail server
    sent = dispatch(conn, config, workspace, on, transport=FileTransport(workspace / "outbox"), force=True).send
    s = summary(conn, rules)
    upcoming = conn.execute("SELECT meeting_id FROM meetings ORDER BY held_on, start_time LIMIT 1").fetchone()
    example = conn.execute(
        "SELECT household_id FROM flags WHERE status = 'open' ORDER BY rule_id = '8050' DESC, household_id LIMIT 1"
    ).fetchone()
    text = [
        f"合成データ: {town}（{generated.households:,} 世帯, seed {seed}, 基準日 {on.isoformat()}）",
        f"取込: {imported.total_inserted:,} 行を追加、{imported.total_rejected:,} 行を除外"
        + (f"（報告: {imported.report_path}）" if imported.report_path else ""),
        render_summary(s, rules),
        "",
        f"会議: {cycle.convene.cases_opened:,} 件の事案を開始（{cycle.convene.cases_routed:,} 件は要対協等へ通知）、"
        f"{cycle.papers.meetings:,} 回の会議に予約、議題 {cycle.papers.agendas:,} 件、"
        f"メール {sent.sent:,} 通送信・{sent.failed:,} 通失敗（{workspace / 'outbox'}）",
    ]
    if upcoming:
        text += [f"次の会議: `engine meetings`、議題: `engine agenda {upcoming[0]}`、送信状況: `engine outbox`"]
    if example:
        text += ["", "例: `engine explain " + example[0] + "` の出力", explain(conn, rules, example[0], on)]
    conn.close()
    out = s.model_dump()
    out.update(
        {
            "seed": seed,
            "screened_on": on.isoformat(),
            "import": {"seq": imported.import_seq, "files": {k: v.model_dump() for k, v in imported.files.items()}, "report": str(imported.report_path) if imported.report_path else None},
            "screen": screened.model_dump(),
            "cases_opened": cycle.convene.cases_opened,
            "cases_routed": cycle.convene.cases_routed,
            "meetings": cycle.papers.meetings,
            "agendas": cycle.papers.agendas,
            "emails_sent": sent.sent,
            "emails_failed": sent.failed,
            "convene": cycle.convene.model_dump(),
            "text": "\n".join(text),
        }
    )
    return out
