"""Thin Prefect flows over engine.workflows.cycle and engine.casework.sweep: batching, never a flow run or task per household.

Parameters, flow-run names, logs and results carry only paths, dates and counts: never a name,
kana, address or birth date (a test scans Prefect's database for them).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engine.casework.sweep import daily_sweep
from engine.config import load_config
from engine.rules.loader import load_rules
from engine.store.db import connect
from engine.support import clock
from engine.workflows.cycle import dispatch, nightly_cycle

TASK = dict(cache_policy=NO_CACHE, persist_result=False, retries=0)


def _on(on: str | None) -> date:
    return date.fromisoformat(on) if on else clock.today()


def _with_workspace(workspace: str, rules_dir: str, config_dir: str, job):
    """Load rules and configuration, open the workspace database, run job(conn, rules, config)."""
    rules = load_rules(Path(rules_dir))
    config = load_config(Path(config_dir), rules)
    conn = connect(Path(workspace))
    try:
        return job(conn, rules, config)
    finally:
        conn.close()


@task(name="nightly-cycle", **TASK)
def nightly_task(workspace: str, rules_dir: str, config_dir: str, on: str) -> dict:
    result = _with_workspace(
        workspace,
        rules_dir,
        config_dir,
        lambda conn, rules, config: nightly_cycle(conn, Path(workspace), rules, config, date.fromisoformat(on)),
    )
    return result.model_dump(exclude={"screen": {"open_flags"}})


@task(name="dispatch-outbox", **TASK)
def dispatch_task(workspace: str, rules_dir: str, config_dir: str, on: str) -> dict:
    return _with_workspace(
        workspace,
        rules_dir,
        config_dir,
        lambda conn, rules, config: dispatch(conn, config, Path(workspace), date.fromisoformat(on)),
    ).model_dump()


@flow(name="nightly-cycle", persist_result=False, log_prints=False)
def nightly_flow(workspace: str, rules_dir: str, config_dir: str, on: str | None = None) -> dict:
    """Screen the town, open and book cases, propose leads, write agendas, queue e-mails."""
    day = _on(on).isoformat()
    result = nightly_task(workspace, rules_dir, config_dir, day)
    c, p = result["convene"], result["papers"]
    get_run_logger().info(
        "nightly cycle %s: %d cases opened, %d routed, %d agendas, %d e-mails queued",
        day,
        c["cases_opened"],
        c["cases_routed"],
        p["agendas"],
        p["messages_queued"] + p["routing_notices"],
    )
    return result


@flow(name="agenda-dispatch", persist_result=False, log_prints=False)
def dispatch_flow(workspace: str, rules_dir: str, config_dir: str, on: str | None = None) -> dict:
    """Send the outbox on business days (the cron fires Mon-Fri; holidays are skipped here)."""
    day = _on(on).isoformat()
    result = dispatch_task(workspace, rules_dir, config_dir, day)
    logger = get_run_logger()
    if result["send"] is None:
        logger.info("dispatch %s skipped: %s", day, result["closed_reason"])
    else:
        s = result["send"]
        logger.info(
            "dispatch %s: %d sent, %d deferred, %d failed, %d possible duplicates",
            day,
            s["sent"],
            s["deferred"],
            s["failed"],
            s["possible_duplicates"],
        )
    return result


@task(name="daily-sweep", **TASK)
def sweep_task(workspace: str, rules_dir: str, config_dir: str, on: str) -> dict:
    return _with_workspace(
        workspace,
        rules_dir,
        config_dir,
        lambda conn, rules, config: daily_sweep(conn, rules, config, date.fromisoformat(on)),
    ).model_dump()


@flow(name="daily-sweep", persist_result=False, log_prints=False)
def sweep_flow(workspace: str, rules_dir: str, config_dir: str, on: str | None = None) -> dict:
    """Reminders, escalations, evaluations, watch checkpoints, reopening, the coordinator's digest and the gap audit."""
    day = _on(on).isoformat()
    r = sweep_task(workspace, rules_dir, config_dir, day)
    get_run_logger().info(
        "sweep %s: %d reminders, %d escalations, %d evaluations booked, %d checkpoints asked, %d reopened, audit violations %d",
        day,
        r["reminders"],
        r["escalations"],
        r["evaluations_booked"],
        r["checkpoints_asked"],
        r["reopened"],
        r["violations"],
    )
    return r
