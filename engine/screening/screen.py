"""Screen the town: evaluate the flags with durable_rules and keep flags with their evidence.

Full screen: every household, split into id ranges screened by worker processes (one
durable_rules host each; it is not thread-safe). Incremental screen: only households whose data
changed since the last run (import sequence), or where the passing of time may change a result
(a member reaching an age threshold of the rules, a record starting or ending, a look-back
window passing an end date). A flag that no longer holds is marked resolved, never deleted.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.rules.compile import Compiled
from engine.rules.durable_eval import durable_screen
from engine.rules.facts import Context, birth_cutoff, load_households, months_before
from engine.rules.model import Age, Record, RuleSet, leaves
from engine.rules.prefilter import Prefilter, Shard
from engine.rules.trace import evidence
from engine.store.chronology import check_run
from engine.store.db import current_import_seq, db_path
from engine.support import clock
from engine.support.progress import Progress, report

BATCH = 20_000
PARALLEL_FROM = 20_000  # households in scope before worker processes pay off
FULL_ABOVE_SHARE = 0.3  # an incremental scope above this share of households runs as a full screen
PROGRESS_LABEL = "全件スクリーニング"


class ScreenResult(BaseModel):
    run_id: int
    screened_on: str
    mode: str  # full | incremental
    scope: int  # households considered
    candidates: int  # households given to durable_rules
    flags_opened: int
    flags_confirmed: int
    flags_resolved: int
    open_flags: dict[str, int]  # per rule id, after this run
    seconds: float


class ShardResult(BaseModel):
    evaluated: list[str]
    hits: dict[str, dict[str, str]]  # household -> rule -> evidence JSON


# --- what the rules depend on -----------------------------------------------------------------
def _leaves(rules: RuleSet) -> Iterable:
    for ind in rules.indicators.values():
        yield from leaves(ind.when)
    for flag in rules.flags.values():
        yield from leaves(flag.when)


def age_thresholds(rules: RuleSet) -> list[int]:
    """Ages at which some rule's result can change (0: a member is born and counts from then)."""
    out = {0}
    for leaf in _leaves(rules):
        if isinstance(leaf, Age):
            if leaf.min is not None:
                out.add(leaf.min)
            if leaf.max is not None:
                out.add(leaf.max + 1)
    return sorted(out)


def lookback_months(rules: RuleSet) -> list[int]:
    return sorted({0} | {leaf.within_months for leaf in _leaves(rules) if isinstance(leaf, Record)})


def time_affected(conn: sqlite3.Connection, rules: RuleSet, since: date, on: date) -> set[str]:
    """Households where moving the date from `since` to `on` can change a rule's result."""
    out: set[str] = set()
    q = lambda sql, params: out.update(h for (h,) in conn.execute(sql, params))  # noqa: E731
    for years in age_thresholds(rules):
        q(
            "SELECT household_id FROM persons WHERE birth_date > ? AND birth_date <= ?",
            [birth_cutoff(since, years), birth_cutoff(on, years)],
        )
    join = "SELECT p.household_id FROM records r JOIN persons p ON p.person_id = r.person_id WHERE "
    q(join + "r.start_date > ? AND r.start_date <= ?", [since.isoformat(), on.isoformat()])
    for months in lookback_months(rules):
        q(
            join + "r.end_date >= ? AND r.end_date < ?",
            [months_before(since, months).isoformat(), months_before(on, months).isoformat()],
        )
    return out


# --- evaluation (plain function; runs in-process or in a worker) ---------------------------
def evaluate_households(conn: sqlite3.Connection, rules: RuleSet, on: date, household_ids: list[str]) -> ShardResult:
    """Evaluate the given households through durable_rules; evidence for every hit."""
    compiled = Compiled(rules)
    screen = durable_screen(compiled)
    ctx = Context(on)
    hits: dict[str, dict[str, str]] = {}
    ids = sorted(household_ids)
    for i in range(0, len(ids), BATCH):
        households = [h for h in load_households(conn, ids[i : i + BATCH], on) if h.persons]
        found = screen.evaluate(households, ctx)
        by_id = {h.household_id: h for h in households}
        for hid, rule in sorted(found):
            ev = evidence(rules.flags[rule], by_id[hid], ctx, rules)
            hits.setdefault(hid, {})[rule] = json.dumps(ev, ensure_ascii=False)
    return ShardResult(evaluated=ids, hits=hits)


def screen_shard(database: str, rules: RuleSet, on: date, shard: Shard) -> ShardResult:
    """Worker entry: prefilter one id range, then evaluate its candidates and open flags."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        ids = Prefilter(rules, on).candidates(conn, shard)
        where, params = shard.range_where("household_id")
        ids |= {h for (h,) in conn.execute(f"SELECT household_id FROM flags WHERE status = 'open' AND {where}", params)}
        return evaluate_households(conn, rules, on, sorted(ids))
    finally:
        conn.close()


def die_with_parent() -> None:
    """Pool worker initializer: on Linux, ask the kernel to kill this worker when the process that
    started it dies. Without it a nightly run killed mid-screen (power cut, OOM killer, a
    cancelled flow) leaves its workers screening a whole shard for nobody, next to the rerun
    (measured by the crash trials, bench/crashtrials.py)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # it died before the line above
            os._exit(1)


def _id_ranges(conn: sqlite3.Connection, parts: int) -> list[tuple[Shard, int]]:
    """Up to `parts` id ranges of about as many households each, with their household counts."""
    total = conn.execute("SELECT COUNT(*) FROM households").fetchone()[0]
    if parts <= 1 or total < PARALLEL_FROM:
        return [(Shard(), total)]
    bounds = [
        conn.execute(
            "SELECT household_id FROM households ORDER BY household_id LIMIT 1 OFFSET ?", (total * i // parts,)
        ).fetchone()[0]
        for i in range(1, parts)
    ]
    edges = [None, *bounds, None]
    return [(Shard(lo=edges[i], hi=edges[i + 1]), total * (i + 1) // parts - total * i // parts) for i in range(parts)]


def _screen_shard_numbered(args: tuple[int, str, RuleSet, date, Shard]) -> tuple[int, ShardResult]:
    """Pool entry: `screen_shard` on one id range, with its number (results arrive in any order)."""
    number, *shard_args = args
    return number, screen_shard(*shard_args)


def screen_all(
    conn: sqlite3.Connection, workspace: Path, rules: RuleSet, on: date, workers: int, progress: Progress | None = None
) -> list[ShardResult]:
    """Screen every household, in id ranges (in worker processes when there are several); the
    results in id order. `progress` is told the households screened as each range completes."""
    conn.commit()  # workers read a consistent, committed database
    shards = _id_ranges(conn, workers)
    database = str(db_path(workspace).resolve())
    total, done = sum(n for _, n in shards), 0
    report(progress, done, total, PROGRESS_LABEL)
    if len(shards) == 1:
        result = screen_shard(database, rules, on, shards[0][0])
        report(progress, total, total, PROGRESS_LABEL)
        return [result]
    by_number: dict[int, ShardResult] = {}
    with multiprocessing.get_context("spawn").Pool(len(shards), initializer=die_with_parent) as pool:
        tasks = [(i, database, rules, on, shard) for i, (shard, _) in enumerate(shards)]
        for i, result in pool.imap_unordered(_screen_shard_numbered, tasks):
            by_number[i] = result
            done += shards[i][1]
            report(progress, done, total, PROGRESS_LABEL)
    return [by_number[i] for i in range(len(shards))]


# --- the run ----------------------------------------------------------------------------------------
def screen(
    conn: sqlite3.Connection,
    workspace: Path,
    rules: RuleSet,
    on: date,
    *,
    full: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
) -> ScreenResult:
    """Screen the town on date `on`; incremental unless `full` or nothing comparable ran before.

    When every household is screened, `progress` is told how many are done as each id range
    completes (it stays in this process: workers never see it)."""
    check_run(conn, on, "screen")
    rules = rules.in_force(on)  # the version of each flag in force on the screening date
    started = clock.monotonic()
    import_seq = current_import_seq(conn)
    last = conn.execute(
        "SELECT screened_on, rules_hash, import_seq FROM screen_runs ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    incremental = not full and last is not None and last[1] == rules.hash and last[0] <= on.isoformat()
    scope: set[str] = set()
    if incremental:
        since = date.fromisoformat(last[0])
        scope = {h for (h,) in conn.execute("SELECT household_id FROM households WHERE changed_seq > ?", (last[2],))}
        scope |= time_affected(conn, rules, since, on)
        total = conn.execute("SELECT COUNT(*) FROM households").fetchone()[0]
        # most of the town changed (a full re-extract): the parallel full screen is faster
        incremental = len(scope) <= max(PARALLEL_FROM, FULL_ABOVE_SHARE * total)
    if incremental:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS scope_ids (household_id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM scope_ids")
        # in id order, which the pre-selection then reads the scope in: neighbouring households share
        # pages (1.6 s against 2.7 s with a cold page cache at 1M households, 0.19 s against 0.24 s warm)
        conn.executemany("INSERT OR IGNORE INTO scope_ids VALUES (?)", ((h,) for h in sorted(scope)))
        shard = Shard(scoped=True)
        ids = Prefilter(rules, on).candidates(conn, shard)
        ids |= {
            h
            for (h,) in conn.execute(
                "SELECT household_id FROM flags WHERE status = 'open' AND household_id IN (SELECT household_id FROM scope_ids)"
            )
        }
        results = [evaluate_households(conn, rules, on, sorted(ids))]
        scope_count = len(scope)
    else:
        results = screen_all(conn, workspace, rules, on, workers, progress)
        scope_count = conn.execute("SELECT COUNT(*) FROM households").fetchone()[0]
    previous = conn.execute("SELECT rule_versions FROM screen_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    opened, confirmed, resolved = write_flags(conn, rules, on, results)
    changed = mark_rule_changes(conn, rules, on, json.loads(previous[0]) if previous and previous[0] else None)
    evaluated = sum(len(r.evaluated) for r in results)
    seconds = clock.monotonic() - started
    cur = conn.execute(
        "INSERT INTO screen_runs (screened_on, started_at, mode, rules_hash, import_seq, scope, evaluated, flags_opened, flags_resolved, seconds, rule_versions) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            on.isoformat(),
            clock.stamp(),
            "incremental" if incremental else "full",
            rules.hash,
            import_seq,
            scope_count,
            evaluated,
            opened,
            resolved,
            seconds,
            json.dumps({k: f.version for k, f in sorted(rules.flags.items())}),
        ),
    )
    run_id = cur.lastrowid
    conn.execute("UPDATE flags SET run_id = ? WHERE run_id = -1", (run_id,))
    log_rule_changes(conn, rules, on, changed)
    conn.commit()
    return ScreenResult(
        run_id=run_id,
        screened_on=on.isoformat(),
        mode="incremental" if incremental else "full",
        scope=scope_count,
        candidates=evaluated,
        flags_opened=opened,
        flags_confirmed=confirmed,
        flags_resolved=resolved,
        open_flags=open_flag_counts(conn),
        seconds=round(seconds, 3),
    )


def write_flags(conn: sqlite3.Connection, rules: RuleSet, on: date, results: list[ShardResult]) -> tuple[int, int, int]:
    """Open new flags, confirm held ones, resolve those that no longer hold (in evaluated households)."""
    iso = on.isoformat()
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS evaluated_ids (household_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM evaluated_ids")
    for r in results:
        conn.executemany("INSERT OR IGNORE INTO evaluated_ids VALUES (?)", ((h,) for h in r.evaluated))
    open_now = {
        (h, rule)
        for h, rule in conn.execute(
            "SELECT household_id, rule_id FROM flags WHERE status = 'open' AND household_id IN (SELECT household_id FROM evaluated_ids)"
        )
    }
    hits = {(h, rule): ev for r in results for h, per in r.hits.items() for rule, ev in per.items()}
    new = [
        (h, rule, rules.flags[rule].version, rules.flags[rule].severity, iso, iso, ev)
        for (h, rule), ev in hits.items()
        if (h, rule) not in open_now
    ]
    held = [
        (rules.flags[rule].version, rules.flags[rule].severity, iso, ev, h, rule)
        for (h, rule), ev in hits.items()
        if (h, rule) in open_now
    ]
    gone = [(iso, h, rule) for (h, rule) in open_now if (h, rule) not in hits]
    conn.executemany(
        "INSERT INTO flags (household_id, rule_id, rule_version, severity, status, first_detected, last_confirmed, run_id, evidence) VALUES (?,?,?,?,'open',?,?,-1,?)",
        new,
    )
    conn.executemany(
        "UPDATE flags SET rule_version = ?, severity = ?, last_confirmed = ?, evidence = ?, run_id = -1 WHERE household_id = ? AND rule_id = ? AND status = 'open'",
        held,
    )
    conn.executemany(
        "UPDATE flags SET status = 'resolved', resolved_on = ?, run_id = -1 WHERE household_id = ? AND rule_id = ? AND status = 'open'",
        gone,
    )
    return len(new), len(held), len(gone)


def open_flag_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(
        conn.execute("SELECT rule_id, COUNT(*) FROM flags WHERE status = 'open' GROUP BY rule_id ORDER BY rule_id")
    )


def mark_rule_changes(
    conn: sqlite3.Connection, rules: RuleSet, on: date, before: dict[str, int] | None
) -> dict[str, tuple]:
    """The flags this run opened or resolved (run_id -1) for a rule whose version in force changed
    since the previous run (or that came into force, or left it) get change_reason
    'rule_changed': the household did not change, the rule did. Returns {rule: (old, new)}."""
    if before is None:  # a run before versions were recorded: nothing to compare with
        return {}
    now = {k: f.version for k, f in rules.flags.items()}
    changed = {k: (before.get(k), now.get(k)) for k in set(before) | set(now) if before.get(k) != now.get(k)}
    for rule_id, (old, new) in changed.items():
        conn.execute(
            "UPDATE flags SET change_reason = ? WHERE run_id = -1 AND rule_id = ? "
            "AND ((status = 'open' AND first_detected = ?) OR (status = 'resolved' AND resolved_on = ?))",
            (f"rule_changed:{old or 0}->{new or 0}", rule_id, on.isoformat(), on.isoformat()),
        )
    return changed


def log_rule_changes(conn: sqlite3.Connection, rules: RuleSet, on: date, changed: dict[str, tuple]) -> None:
    """On each open case, say which of its flags a rule change resolved (the audit log, `engine history`)."""
    if not changed:
        return
    from engine.store.lifecycle import Log

    log = Log(conn, on, "nightly", rules_hash=rules.hash)
    for case_id, rule_id in conn.execute(
        "SELECT c.case_id, f.rule_id FROM flags f JOIN case_flags cf ON cf.flag_id = f.flag_id JOIN cases c ON c.case_id = cf.case_id "
        "WHERE f.resolved_on = ? AND f.change_reason LIKE 'rule_changed:%' AND c.is_open = 1 ORDER BY c.case_id, f.rule_id",
        (on.isoformat(),),
    ).fetchall():
        old, new = changed.get(rule_id, (None, None))
        now = rules.flags.get(rule_id)
        log.event(
            "rule_changed",
            case_id=case_id,
            rule_id=rule_id,
            reason=f"規則 {rule_id} が"
            + (f"{now.version_text}に変わり" if now else "適用されなくなり")
            + f"、このフラグは解消（世帯の記録の変化ではなく規則の変更による。第{old}版 → "
            + (f"第{new}版）" if new else "適用終了）"),
            old_version=old,
            new_version=new,
        )
    conn.commit()
