"""The configuration a town of 50,000 households would need to meet issue 17's goals: the shipped
configs/ with the capacity settings below changed, written to a folder for `bench.triage --config`.

    python -m bench.city_config OUT_DIR [--support-heavy]

The edits are the whole difference (each must match the shipped text exactly once), so the
measured figures say which settings a municipality of that size needs:
- conference.yaml: 支援会議 twice a day on most days (8 a week instead of 2: in practice one per
  日常生活圏域) and 重層的支援会議 three times a week instead of once, 12 cases a meeting;
- triage_rules.yaml: each agency can start `PACE` assessments a week in the first weeks after the
  first screening (the backlog plan's pace; `engine backlog change N --per-week` does the same).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python bench/city_config.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import ROOT  # noqa: E402  (every bench script runs on benchlib's pinned clock)

PACE = 1000
SUPPORT_ROOM, MULTI_ROOM = "市役所本庁舎 3階 第1会議室", "福祉センター 2階 研修室"
MORE_SUPPORT = (("月", "10:00"), ("月", "14:00"), ("水", "10:00"), ("水", "14:00"), ("木", "10:00"), ("金", "14:00"))
MORE_MULTI = (("火", "10:00"), ("金", "10:00"))


def slot(day: str, hhmm: str, place: str) -> str:
    return f'    - {{weekday: {day}, time: "{hhmm}", place: {place}}}\n'


EDITS = (
    ("conference.yaml", "cases_per_meeting: 8\n", "cases_per_meeting: 12\n"),
    (
        "conference.yaml",
        slot("金", "10:00", SUPPORT_ROOM),
        slot("金", "10:00", SUPPORT_ROOM) + "".join(slot(d, t, SUPPORT_ROOM) for d, t in MORE_SUPPORT),
    ),
    (
        "conference.yaml",
        slot("木", "14:00", MULTI_ROOM),
        slot("木", "14:00", MULTI_ROOM) + "".join(slot(d, t, MULTI_ROOM) for d, t in MORE_MULTI),
    ),
    ("triage_rules.yaml", "  assessments_per_week: 10 ", f"  assessments_per_week: {PACE} "),
)


# --support-heavy: the year on the city capacity found the 支援会議 full and the 重層的支援会議 mostly
# empty (most households have not all consented); this moves the two extra 重層的支援会議 slots to
# 支援会議 and adds two more: 12 支援会議 and 1 重層的支援会議 a week, 12 cases each
MORE_SUPPORT_HEAVY = (("火", "10:00"), ("水", "16:00"), ("火", "16:00"), ("金", "16:00"))


def write(out: Path, *, support_heavy: bool = False) -> Path:
    """configs/ copied to `out` with EDITS applied (and the support-heavy slots); returns `out`."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "configs", out)
    edits = list(EDITS)
    if support_heavy:
        edits = [e for e in edits if "".join(slot(d, t, MULTI_ROOM) for d, t in MORE_MULTI) not in e[2]]
        anchor = slot("金", "10:00", SUPPORT_ROOM)
        edits.append(
            ("conference.yaml", anchor, anchor + "".join(slot(d, t, SUPPORT_ROOM) for d, t in MORE_SUPPORT_HEAVY))
        )
    for name, old, new in edits:
        path = out / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(
                f"{name}: the edit {old.strip()!r} matches {text.count(old)} times (the shipped file changed)"
            )
        path.write_text(text.replace(old, new), encoding="utf-8")
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--support-heavy"]
    print(write(Path(args[0] if args else "/tmp/city-50k"), support_heavy="--support-heavy" in sys.argv[1:]))
