"""Convening benchmark: N flagged households end to end (case, booking, lead, agendas, e-mails).

    python bench/convene.py [--flagged 1000] [--households H] [--seed 1] [--workers 2] [--out FILE]

Setup (generate, import, full screen) runs in one process and is reported but not part of the
convening figure; convene() → write_papers() → send_pending() (file transport) run in a second,
fresh process, each timed, so that their peak RSS is their own. Prints a table and writes JSON
(default bench/results/convene-<N>.json). Target: ≤ 30 s in total for 1,000 households.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ON, ROOT, cpu_seconds, cpu_used, run  # noqa: E402  (also puts the repository on sys.path)
from benchlib import peak_mb as _peak_mb

RULES_DIR = ROOT / "configs" / "rules"
CONFIG_DIR = ROOT / "configs"
FLAGGED_SHARE = 0.045  # households flagged at min severity or above, a little under the ~5% the generator plants
TARGET_S = 30.0
MEETINGS_TARGET_S = 15.0  # issue 19: convening 1,000 meetings (--flagged 8000 --all-to-conference)


def _severities(config) -> tuple[str, ...]:
    from engine.conference.convene import severities_from

    return severities_from(config.conference.min_severity)


def _flagged_households(conn, sev: tuple[str, ...]) -> list[str]:
    return [
        h
        for (h,) in conn.execute(
            f"SELECT DISTINCT household_id FROM flags WHERE status = 'open' AND severity IN ({','.join('?' * len(sev))}) ORDER BY household_id",
            sev,
        )
    ]


def all_to_conference(out: Path) -> Path:
    """configs/ copied to `out` with one triage rule, to a conference, and no overflow: every new case goes to a
    conference and waits for its slot, as before triage; with a city's meeting slots (bench/city_config.py)
    and 8 cases a meeting, 8,000 flagged households fill about 1,000 meetings (issue 19's "convene
    1,000 meetings")."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(CONFIG_DIR, out)
    path = out / "triage_rules.yaml"
    text = path.read_text(encoding="utf-8")
    head, found, _ = text.partition("\ntriage_rules:\n")
    if not found or text.count("conference_overflow: assessment") != 1:
        raise SystemExit(f"{path}: the shipped triage rules changed; update bench/convene.py all_to_conference")
    head = head.replace("conference_overflow: assessment", "conference_overflow: conference")
    from bench.city_config import EDITS  # the meeting slots of a city (11 a week), 8 cases a meeting kept

    for name, old, new in EDITS:
        if name == "conference.yaml" and "cases_per_meeting" not in old:
            conf = out / name
            conf.write_text(conf.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    path.write_text(
        head + "\ntriage_rules:\n  - id: every_case\n    when: {min_flags: 1}\n    pathway: conference\n"
        "    reason: 振り分けを使わず、すべての事案を会議で検討する（ベンチマーク）\n",
        encoding="utf-8",
    )
    return out


def phase_setup(town: str, workspace: str, households: int, seed: int, workers: int, flagged: int) -> dict:
    """Generate, import, screen; then keep exactly `flagged` flagged households open."""
    from engine.config import load_config
    from engine.demo.town import generate_town
    from engine.intake.importer import import_dir
    from engine.rules.loader import load_rules
    from engine.screening.screen import screen
    from engine.store.db import connect

    rules = load_rules(RULES_DIR)
    config = load_config(CONFIG_DIR, rules)
    t = time.perf_counter()
    gen = generate_town(Path(town), households, seed, today=ON)
    generate_s = time.perf_counter() - t
    conn = connect(Path(workspace))
    t = time.perf_counter()
    imported = import_dir(conn, Path(town), today=ON)
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    screened = screen(conn, Path(workspace), rules, ON, full=True, workers=workers)
    screen_s = time.perf_counter() - t
    sev = _severities(config)
    found = _flagged_households(conn, sev)
    # Keep exactly `flagged` households for convening: every open flag of the households after the
    # first `flagged` (by household_id) is marked resolved — all of their flags, low ones too, so
    # they take no part anywhere. The workspace is a throwaway temp copy built for this run; the
    # kept households keep all their flags (low ones are ignored by convene, as in production).
    # A resolved flag is exactly what a later screen writes for a household that no longer
    # qualifies, so the convening code sees an ordinary database with N candidate households.
    dropped = 0
    if len(found) >= flagged:
        with conn:
            conn.execute("CREATE TEMP TABLE keep_ids (household_id TEXT PRIMARY KEY)")
            conn.executemany("INSERT INTO keep_ids VALUES (?)", ((h,) for h in found[:flagged]))
            dropped = conn.execute(
                "UPDATE flags SET status = 'resolved', resolved_on = ? WHERE status = 'open' AND household_id NOT IN (SELECT household_id FROM keep_ids)",
                (ON.isoformat(),),
            ).rowcount
    kept = len(_flagged_households(conn, sev))
    conn.close()
    return {
        "households": gen.households,
        "persons": gen.persons,
        "records": gen.records,
        "generate_s": round(generate_s, 2),
        "import_s": round(import_s, 2),
        "rejected": imported.total_rejected,
        "screen_s": round(screen_s, 2),
        "open_flags": sum(screened.open_flags.values()),
        "min_severity": config.conference.min_severity,
        "flagged_households": len(found),
        "flagged_share": round(len(found) / gen.households, 4) if gen.households else 0.0,
        "flags_resolved_to_keep_n": dropped,
        "kept_households": kept,
        "peak_rss_mb": round(max(_peak_mb(), _peak_mb(resource.RUSAGE_CHILDREN)), 1),
    }


def phase_convene(workspace: str, config_dir: str | None = None) -> dict:
    """convene() → write_papers() → send_pending(file transport), each timed."""
    from engine.conference.convene import convene
    from engine.config import load_config
    from engine.outbox import FileTransport, send_pending
    from engine.papers.write import write_papers
    from engine.rules.loader import load_rules
    from engine.store.db import connect

    ws = Path(workspace)
    rules = load_rules(RULES_DIR)  # loading rules and config is not part of the figure
    config = load_config(Path(config_dir) if config_dir else CONFIG_DIR, rules)
    conn = connect(ws)
    rss_before = _peak_mb()
    cpu = {}
    t0, before = time.perf_counter(), cpu_seconds()
    convened = convene(conn, rules, config, ON)
    t1, cpu["convene"], before = time.perf_counter(), cpu_used(before), cpu_seconds()
    papers = write_papers(conn, rules, config, ws, ON)
    t2, cpu["write_papers"], before = time.perf_counter(), cpu_used(before), cpu_seconds()
    sent = send_pending(conn, config, ws, transport=FileTransport(ws / "outbox"))
    t3, cpu["send_pending"] = time.perf_counter(), cpu_used(before)
    eml = len(list((ws / "outbox").glob("*.eml"))) if (ws / "outbox").is_dir() else 0
    files = sum(1 for p in (ws / "agendas").rglob("*") if p.is_file()) if (ws / "agendas").is_dir() else 0
    in_cases = conn.execute("SELECT COUNT(DISTINCT household_id) FROM cases WHERE is_open = 1").fetchone()[0]
    outbox = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status").fetchall())
    conn.close()
    return {
        "convene": convened.model_dump(),
        "papers": papers.model_dump(),
        "send": sent.model_dump(),
        "households_in_cases": in_cases,
        "outbox": outbox,
        "eml_files": eml,
        "agenda_files": files,
        "seconds": {
            "convene": round(t1 - t0, 3),
            "write_papers": round(t2 - t1, 3),
            "send_pending": round(t3 - t2, 3),
            "total": round(t3 - t0, 3),
        },
        "cpu_seconds": cpu,  # of each phase, this process's and its children's (the papers' worker)
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
        "peak_rss_worker_mb": round(
            _peak_mb(resource.RUSAGE_CHILDREN), 1
        ),  # the papers' worker (engine/papers/ahead.py)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flagged", type=int, default=1000, help="flagged households to convene (N)")
    ap.add_argument(
        "--households", type=int, help=f"town size (default: N / {FLAGGED_SHARE}, grown once if too few are flagged)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="screening workers (setup only)")
    ap.add_argument(
        "--all-to-conference",
        action="store_true",
        help="no triage: every case to a conference (--flagged 8000 makes about 1,000 meetings; target 15 s)",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the workspace in this folder")
    args = ap.parse_args()
    n = args.flagged
    households = args.households or math.ceil(n / FLAGGED_SHARE)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="engine-bench-convene-"))
    setup: dict = {}
    try:
        for attempt in range(2):
            if attempt:  # too few flagged: grow the town by the share actually seen, plus 10%, and start again
                shutil.rmtree(base / "town", ignore_errors=True)
                shutil.rmtree(base / "workspace", ignore_errors=True)
                households = math.ceil(n / max(setup["flagged_share"], 1e-3) * 1.1)
            setup = run(
                phase_setup, str(base / "town"), str(base / "workspace"), households, args.seed, args.workers, n
            )
            if setup["flagged_households"] >= n:
                break
        else:
            sys.exit(
                f"only {setup['flagged_households']} flagged households in a town of {households:,}: pass a larger --households"
            )
        config_dir = str(all_to_conference(base / "configs")) if args.all_to_conference else None
        conv = run(phase_convene, str(base / "workspace"), config_dir)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    s = conv["seconds"]
    c, p, m = conv["convene"], conv["papers"], conv["send"]
    target = MEETINGS_TARGET_S if args.all_to_conference else TARGET_S
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date": ON.isoformat(),
        "flagged": n,
        "seed": args.seed,
        "all_to_conference": args.all_to_conference,
        "target_s": target,
        "within_target": s["total"] <= target,
        "setup": setup,
        "cases_opened": c["cases_opened"],
        "cases_routed": c["cases_routed"],
        "pathways": c["pathways"],  # new cases by triage pathway: most are assessed first (issue 17)
        "meetings_added_for_urgent": c["meetings_added"],
        "meetings": p["meetings"],
        "agendas": p["agendas"],
        "coordinator_versions": p["coordinator_versions"],
        "routing_notices": p["routing_notices"],
        "messages_queued": p["messages_queued"] + p["routing_notices"],
        "emails": m["sent"],
        "emails_failed": m["failed"],
        "outbox_by_status": conv["outbox"],  # superseded: withheld before sending (a meeting already held, ...)
        "eml_files": conv["eml_files"],
        "agenda_files": conv["agenda_files"],
        "households_in_cases": conv["households_in_cases"],
        "seconds": s,
        "cpu_seconds": conv["cpu_seconds"],
        "cases_per_s": round(n / s["total"], 1) if s["total"] else None,
        "peak_rss_mb": conv["peak_rss_mb"],
        "peak_rss_worker_mb": conv["peak_rss_worker_mb"],
        "rss_before_convene_mb": conv["rss_before_mb"],
    }
    out = (
        args.out
        or ROOT / "bench" / "results" / f"convene-{n}{'-all-to-conference' if args.all_to_conference else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    rows = [
        (
            "town (setup, not timed below)",
            f"{setup['households']:,}",
            f"{setup['flagged_households']:,} flagged at {setup['min_severity']}+ ({setup['flagged_share']:.1%}), {n:,} kept",
        ),
        (
            "  generate / import / screen",
            f"{setup['generate_s'] + setup['import_s'] + setup['screen_s']:.1f} s",
            f"{setup['generate_s']:.1f} + {setup['import_s']:.1f} + {setup['screen_s']:.1f} s",
        ),
        (
            "convene()",
            f"{s['convene']:.2f} s",
            f"{c['cases_opened']:,} booked, {c['cases_routed']:,} routed, {c['meetings_added']:,} meetings added; "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(c["pathways"].items())),
        ),
        (
            "write_papers()",
            f"{s['write_papers']:.2f} s",
            f"{p['meetings']:,} meetings, {p['agendas']:,} agendas, {p['routing_notices']:,} routing notices; "
            f"CPU {conv['cpu_seconds']['write_papers']['self']:.1f} s + {conv['cpu_seconds']['write_papers']['children']:.1f} s (worker)",
        ),
        (
            "send_pending() (file transport)",
            f"{s['send_pending']:.2f} s",
            f"{m['sent']:,} e-mails, {m['failed']:,} failed, {conv['outbox'].get('superseded', 0):,} withheld",
        ),
        (
            f"total, {n:,} households",
            f"{s['total']:.2f} s",
            f"target ≤ {target:.0f} s: {'met' if report['within_target'] else 'MISSED'}, peak RSS {conv['peak_rss_mb']:,.0f} MB"
            + (f" (+ {conv['peak_rss_worker_mb']:,.0f} MB, the papers' worker)" if conv["peak_rss_worker_mb"] else ""),
        ),
    ]
    for name, value, note in rows:
        print(f"{name:<36} {value:>12}  {note}")
    print(f"json: {out}")
    if conv["households_in_cases"] != n:  # every flagged household has an open case, whatever its pathway
        sys.exit(f"expected {n} households in open cases, got {conv['households_in_cases']}")
    if m["sent"] != report["messages_queued"]:
        sys.exit(f"{report['messages_queued']} messages queued but {m['sent']} sent: {conv['outbox']}")


if __name__ == "__main__":
    main()
