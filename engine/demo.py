"""`engine demo`: the whole first slice on a synthetic town — generate, import, screen, summarise."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from engine.db import connect
from engine.explain import explain
from engine.generate import generate_town
from engine.importer import import_dir
from engine.rules.model import RuleSet
from engine.screening import screen
from engine.summary import render_summary, summary


def run_demo(workspace: Path, rules: RuleSet, *, households: int, seed: int, on: date, bad_rows: int = 5) -> dict:
    """Run the demo in `workspace`; return the JSON summary (with a readable `text`)."""
    town = workspace / "town"
    generated = generate_town(town, households, seed, today=on, bad_rows=bad_rows)
    conn = connect(workspace)
    imported = import_dir(conn, town, today=on, report_dir=workspace / "reports")
    screened = screen(conn, workspace, rules, on, full=True)
    s = summary(conn, rules)
    example = conn.execute(
        "SELECT household_id FROM flags WHERE status = 'open' ORDER BY rule_id = '8050' DESC, household_id LIMIT 1"
    ).fetchone()
    text = [
        f"合成データ: {town}（{generated.households:,} 世帯, seed {seed}, 基準日 {on.isoformat()}）",
        f"取込: {imported.total_inserted:,} 行を追加、{imported.total_rejected:,} 行を除外"
        + (f"（報告: {imported.report_path}）" if imported.report_path else ""),
        render_summary(s, rules),
    ]
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
            "text": "\n".join(text),
        }
    )
    return out
