"""`engine demo`: the whole cycle on a synthetic town — generate, import, screen, open cases,
book meetings, propose leads, write agendas and e-mail them (file transport: the outbox folder) —
then a simulated span of days (engine/demo/simulate.py) in which conferences decide, agencies answer
late or never, cases close and relapse, and the gap audit runs at the end."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from engine.casework.audit import run_audit
from engine.config import Config
from engine.demo.simulate import Simulation
from engine.demo.town import generate_town
from engine.intake.importer import import_dir
from engine.outbox import FileTransport
from engine.participation.directory import stale_places
from engine.rules.model import RuleSet
from engine.screening.explain import explain
from engine.screening.screen import screen
from engine.screening.summary import render_summary, summary
from engine.store.db import connect
from engine.support.progress import Progress
from engine.triage.model import mix_text
from engine.workflows.cycle import dispatch, nightly_cycle


def run_demo(
    workspace: Path,
    rules: RuleSet,
    config: Config,
    *,
    households: int,
    seed: int,
    on: date,
    bad_rows: int = 5,
    days: int = 120,
    progress: Progress | None = None,
) -> dict:
    """Run the demo in `workspace`; return the JSON summary (with a readable `text`).

    `progress` hears the town's generation (「町を生成」) and the simulated days (「模擬期間」).
    """
    conn = connect(workspace)  # first: the engine refuses a workspace folder holding files it did not make
    town = workspace / "town"
    generated = generate_town(town, households, seed, today=on, bad_rows=bad_rows, progress=progress)
    imported = import_dir(conn, town, today=on, report_dir=workspace / "reports")
    screened = screen(conn, workspace, rules, on, full=True)
    cycle = nightly_cycle(conn, workspace, rules, config, on, screen_first=False)
    # the demo sends at once, whatever the day, and never through a real mail server
    sent = dispatch(conn, config, workspace, on, transport=FileTransport(workspace / "outbox"), force=True).send
    s = summary(conn, rules)  # the first night's screening (the span below imports a relapse extract)
    story = (
        Simulation(conn, workspace, rules, config, on, days, seed, FileTransport(workspace / "outbox")).run(progress)
        if days
        else None
    )
    end = on + timedelta(days=days)
    report = run_audit(conn, config, end)
    life = lifecycle_counts(conn)
    part = participation_counts(conn, config, end)
    upcoming = conn.execute(
        "SELECT meeting_id FROM meetings WHERE held_on >= ? ORDER BY held_on, start_time LIMIT 1", (end.isoformat(),)
    ).fetchone()
    example = conn.execute(
        "SELECT household_id FROM flags WHERE status = 'open' ORDER BY rule_id = '8050' DESC, household_id LIMIT 1"
    ).fetchone()
    text = [
        f"合成データ: {town}（{generated.households:,} 世帯, seed {seed}, 基準日 {on.isoformat()}）",
        f"取込: {imported.total_inserted:,} 行を追加、{imported.total_rejected:,} 行を除外"
        + (f"（報告: {imported.report_path}）" if imported.report_path else ""),
        render_summary(s, rules),
        "",
        f"初回の{mix_text(cycle.convene.pathways)}",
        f"会議: {cycle.convene.cases_opened:,} 件の事案を会議へ（{cycle.convene.cases_routed:,} 件は要対協・支援中の機関へ通知）、"
        f"{cycle.papers.meetings:,} 回の会議に予約、議題 {cycle.papers.agendas:,} 件、"
        f"メール {sent.sent:,} 通送信・{sent.failed:,} 通失敗（{workspace / 'outbox'}）",
    ]
    if story:
        text += [
            f"{days} 日間の模擬運用（{on + timedelta(days=1)}〜{end}、時計は模擬）: 会議の結果 {story.outcomes} 件（うち遅れ {story.outcomes_late}）、"
            f"受諾 {story.accepted}（遅れ {story.accepted_late}）・辞退 {story.declined}・無回答 {story.never_answered}、"
            f"機関がメールのリンクから回答 {life['link_answers']} 件、"
            f"リマインダー送信 {life['reminders_sent']} 通、エスカレーション {life['escalations']} 件、見守り照会 {life['watch_checks']} 件、"
            f"もどし（再開・つなぎ直し）{life['reopened']} 件",
            "事案の状態: " + "、".join(f"{k} {v}" for k, v in life["states"].items()),
            participation_line(part, config.participation.settings.stale_months),
            f"監査（engine audit --date {end}）: 抜け漏れ {len(report.violations)} 件",
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
            "import": {
                "seq": imported.import_seq,
                "files": {k: v.model_dump() for k, v in imported.files.items()},
                "report": str(imported.report_path) if imported.report_path else None,
            },
            "screen": screened.model_dump(),
            "cases_opened": cycle.convene.cases_opened,
            "cases_routed": cycle.convene.cases_routed,
            "pathways": cycle.convene.pathways,  # the first night's new cases by triage pathway
            "cases_started": sum(cycle.convene.pathways.values()),
            "meetings": cycle.papers.meetings,
            "agendas": cycle.papers.agendas,
            "emails_sent": sent.sent,
            "emails_failed": sent.failed,
            "convene": cycle.convene.model_dump(),
            "simulated_days": days,
            "simulated_until": end.isoformat(),
            "reminders_sent": life["reminders_sent"],
            "escalations": life["escalations"],
            "reopened": life["reopened"],
            "watch_checks": life["watch_checks"],
            "link_answers": life["link_answers"],
            **part,
            "audit_violations": len(report.violations),
            "case_states": life["states"],
            "lifecycle": story.model_dump() if story else None,
            "text": "\n".join(text),
        }
    )
    return out


def lifecycle_counts(conn) -> dict:
    """What the span did, counted from the database (not from the simulation's own tallies)."""

    def one(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    return {
        "reminders_sent": one("SELECT COUNT(*) FROM outbox WHERE kind = 'reminder' AND status = 'sent'"),
        "escalations": one("SELECT COUNT(*) FROM escalations"),
        "reopened": one(
            "SELECT COUNT(*) FROM audit_log WHERE (event = 'transition' AND to_status = 'reopened') OR event = 'relinked'"
        ),
        "watch_checks": one("SELECT COUNT(*) FROM checkpoints WHERE kind = 'watch' AND asked_on IS NOT NULL"),
        "link_answers": one("SELECT COUNT(*) FROM answer_links WHERE used_at IS NOT NULL"),
        "states": dict(conn.execute("SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY status").fetchall()),
    }


def participation_counts(conn, config: Config, on: date) -> dict:
    """参加支援 over the span, from the database: referrals made and answered, follow-ups answered,
    cases brought back by a participation answer (もどし), needs still without a referral, and the
    resource directory (its places, those not verified for settings.stale_months on `on`)."""

    def one(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    return {
        "places": len(config.participation.places),
        "stale_places": len(stale_places(config, on)),
        "referrals_requested": one("SELECT COUNT(*) FROM referrals"),
        "referrals_accepted": one("SELECT COUNT(*) FROM referrals WHERE status IN ('accepted', 'attending', 'ended')"),
        "referrals_declined": one("SELECT COUNT(*) FROM referrals WHERE status = 'declined'"),
        "followups_answered": one("SELECT COUNT(*) FROM followups WHERE status = 'done'"),
        "participation_reopened": one(
            "SELECT COUNT(*) FROM audit_log WHERE event = 'participation_concern' "
            "AND json_extract(detail, '$.brought_back') = 1"
        ),
        # needs no place could take: still open, or recorded with no place in the town (engine need --no-place)
        "unmatched_needs": one("SELECT COUNT(*) FROM participation_needs WHERE status IN ('open', 'unmatched')"),
    }


def participation_line(p: dict, stale_months: int) -> str:
    return (
        f"参加支援: 社会資源 {p['places']} か所（確認から{stale_months}か月以上たったもの {p['stale_places']} か所）、"
        f"紹介 {p['referrals_requested']} 件（受入れ {p['referrals_accepted']}・受入れ困難 {p['referrals_declined']}）、"
        f"定着の確認への回答 {p['followups_answered']} 件、参加支援の確認からのもどし {p['participation_reopened']} 件、"
        f"紹介先の決まらないニーズ {p['unmatched_needs']} 件"
    )
