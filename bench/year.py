"""The simulated year (issue 18): `engine simulate` on 50,000 households over 365 days, timed.

    python -m bench.year [--households 50000] [--days 365] [--seed 7] [--config DIR] [--keep DIR] [--out FILE]

Runs engine/demo/year.py run_year in-process on a fresh temporary workspace (or DIR with --keep, left
for `engine history` and the console afterwards), on benchlib's pinned day, with the configuration in
DIR (default ./configs; `python -m bench.city_config DIR` writes a city's capacity), and writes its no-gap figures with the wall time, the peak RSS, the machine and the command to
bench/results/year-<N>.json. Target of issue 18: the year in ≤ 15 minutes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/year.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import ON, ROOT, peak_mb  # noqa: E402  (importing benchlib pins the clock to ON)

TARGET_SECONDS = 15 * 60


def run(households: int, days: int, seed: int, config_dir: Path | None = None, keep: Path | None = None) -> dict:
    from bench.triage import _config_arg
    from engine.config import load_config
    from engine.demo.year import run_year
    from engine.rules.loader import load_rules

    config_dir = Path(config_dir or ROOT / "configs")
    rules = load_rules(config_dir / "rules" if (config_dir / "rules").is_dir() else ROOT / "configs" / "rules")
    config = load_config(config_dir, rules)
    if keep is not None and keep.exists():
        raise SystemExit(f"--keep {keep}: the folder exists; name a new one")
    work = keep or Path(tempfile.mkdtemp(prefix="bench-year-"))
    try:
        started = time.perf_counter()
        figures = run_year(work / "ws", rules, config, households=households, seed=seed, on=ON, days=days)
        wall = time.perf_counter() - started
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    options = f" --config {_config_arg(config_dir)}" if _config_arg(config_dir) != "configs" else ""
    return {
        **figures,
        "wall_seconds": round(wall, 1),
        "target_seconds": TARGET_SECONDS,
        "peak_rss_mb": round(peak_mb(), 1),
        "config_dir": _config_arg(config_dir),
        "command": f"python -m bench.year --households {households} --days {days} --seed {seed}{options}",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> None:
    from engine.demo.year import render_year

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=50000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--config", type=Path, help="folder of the configuration to run (default ./configs)")
    ap.add_argument("--keep", type=Path, help="run in this new folder and leave its workspace (DIR/ws)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = run(args.households, args.days, args.seed, args.config, args.keep)
    suffix = "" if result["config_dir"] == "configs" else "-" + Path(result["config_dir"]).name
    path = args.out or ROOT / "bench" / "results" / f"year-{args.households}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(render_year(result))
    print(
        f"wall {result['wall_seconds']:,} s (target ≤ {TARGET_SECONDS} s), peak RSS {result['peak_rss_mb']} MB; "
        f"{result['machine']}; {result['command']}"
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
