"""Lifecycle benchmark: the demo's simulated span on a bigger town, each step timed.

    python bench/lifecycle.py [--households 20000] [--days 120] [--seed 42] [--out FILE]

Runs `engine demo` (generate, import, screen, first night) and then the fake-clock span in which
the nightly cycle, the daily sweep and the dispatch run every day and simulated people answer.
Reports the seconds per step summed over the span, the per-day average of the sweep, the final
audit's time and peak RSS; writes JSON (default bench/results/lifecycle-<N>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchlib import ON, ROOT, peak_mb  # noqa: E402  (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=20000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from engine.casework.audit import run_audit
    from engine.config import load_config
    from engine.demo.run import run_demo
    from engine.rules.loader import load_rules
    from engine.store.db import connect

    rules = load_rules(ROOT / "configs" / "rules")
    config = load_config(ROOT / "configs", rules)
    work = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    try:
        started = time.perf_counter()
        out = run_demo(
            work / "ws", rules, config, households=args.households, seed=args.seed, on=ON, bad_rows=0, days=args.days
        )
        total = time.perf_counter() - started
        conn = connect(work / "ws")
        t = time.perf_counter()
        report = run_audit(conn, config, ON + timedelta(days=args.days))
        audit_s = time.perf_counter() - t
        open_cases = report.open_cases
        audit_rows = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    life = out["lifecycle"]
    result = {
        "households": args.households,
        "days": args.days,
        "seed": args.seed,
        "cases_opened_first_night": out["cases_opened"],
        "open_cases_at_end": open_cases,
        "audit_log_rows": audit_rows,
        "seconds_total": round(total, 1),
        "seconds_per_step": life["seconds"],
        "sweep_seconds_per_day": round(life["seconds"]["sweep"] / args.days, 3),
        "audit_seconds": round(audit_s, 3),
        "audit_violations": len(report.violations),
        "reminders_sent": out["reminders_sent"],
        "escalations": out["escalations"],
        "reopened": out["reopened"],
        "watch_checks": out["watch_checks"],
        "peak_rss_mb": round(peak_mb(), 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    path = args.out or ROOT / "bench" / "results" / f"lifecycle-{args.households}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for k, v in result.items():
        print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
