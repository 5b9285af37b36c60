"""The configuration a town of 50,000 households would need to meet issue 17's goals: the shipped
configs/ with the capacity settings below changed, written to a folder for `bench.triage --config`.

    python -m bench.city_config OUT_DIR

The edits are the whole difference (each must match the shipped text exactly once), so the
measured figures say which settings a municipality of that size needs:
- conference.yaml: two more 支援会議 slots a week (火, 金 afternoons and 水 morning … see SLOTS) and
  a second 重層的支援会議, 10 cases a meeting;
- triage_rules.yaml: each agency can start `PACE` assessments a week in the first weeks after the
  first screening (the backlog plan's pace; `engine backlog change N --per-week` does the same).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACE = 300
EDITS = (
    ("conference.yaml", "cases_per_meeting: 8\n", "cases_per_meeting: 10\n"),
    (
        "conference.yaml",
        '    - {weekday: 金, time: "10:00", place: 市役所本庁舎 3階 第1会議室}\n',
        '    - {weekday: 金, time: "10:00", place: 市役所本庁舎 3階 第1会議室}\n'
        '    - {weekday: 月, time: "14:00", place: 市役所本庁舎 3階 第1会議室}\n'
        '    - {weekday: 水, time: "10:00", place: 市役所本庁舎 3階 第1会議室}\n',
    ),
    (
        "conference.yaml",
        '    - {weekday: 木, time: "14:00", place: 福祉センター 2階 研修室}\n',
        '    - {weekday: 木, time: "14:00", place: 福祉センター 2階 研修室}\n'
        '    - {weekday: 火, time: "10:00", place: 福祉センター 2階 研修室}\n',
    ),
    (
        "triage_rules.yaml",
        "  assessments_per_week: 10 ",
        f"  assessments_per_week: {PACE} ",
    ),
)


def write(out: Path) -> Path:
    """configs/ copied to `out` with EDITS applied; returns `out`."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "configs", out)
    for name, old, new in EDITS:
        path = out / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(
                f"{name}: the edit {old.strip()!r} matches {text.count(old)} times (the shipped file changed)"
            )
        path.write_text(text.replace(old, new), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/city-50k")))
