"""Thin Prefect flows over engine.workflows.cycle and engine.casework.sweep: batching, never a flow run or task per household.

The flows take no path from whoever creates a flow run: the workspace, rules and configuration
are those `engine serve` bound when it started (engine.support.settings.bound). The one parameter
is the day, `on`, read like the command line's --date (default: today in Japan); Prefect refuses
any other parameter before the flow starts.

Parameters, flow-run names, logs and results carry only dates and counts: never a name, kana,
address or birth date (a test scans Prefect's database for them). A step that fails says only a
one-line reason (reason()), and the run ends in a Failed state with no data: no exception text
reaches Prefect's logs, and no pickled exception is left on disk. A step that finds the workspace
database busy (another command writing past the busy timeout) is retried after BUSY_RETRY_DELAYS;
any other failure is not.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import get_current_settings
from prefect.states import Failed

from engine.casework.sweep import daily_sweep
from engine.cli.options import parse_day
from engine.config import load_config
from engine.rules.loader import load_rules
from engine.store.db import connect, is_busy
from engine.support.errors import EngineError
from engine.support.settings import bound
from engine.workflows.cycle import dispatch, nightly_cycle

BUSY_RETRY_DELAYS = (60, 300, 900)  # seconds: a long import or `engine run` has usually finished by then


class DatabaseBusy(EngineError):
    """A step found the workspace database busy past its timeout: retried (see database_busy)."""


class StepFailed(EngineError):
    """A step failed; its message is the one-line reason (reason()), never the original text."""


def reason(err: BaseException, command: str) -> str:
    """What a failure says in Prefect: an engine refusal its message; anything else only its kind
    (its text could hold a record's value), and where to see it whole."""
    if isinstance(err, EngineError):  # StepFailed and DatabaseBusy among them
        return str(err)
    return f"{type(err).__name__}; run `{command}` to see the error"


def _busy(err: BaseException | None) -> bool:
    """sqlite3's "database is locked", also as the cause or context of another error."""
    seen = set()
    while err is not None and id(err) not in seen:
        if is_busy(err):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def database_busy(task, task_run, state) -> bool:
    """Prefect's retry condition: retry a step only when it found the database busy."""
    err = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(err, DatabaseBusy)


def forget_result(flow, flow_run, state) -> None:
    """on_failure: remove the exception Prefect wrote for a run it failed itself (a parameter the
    flow does not take): no pickled exception is left on disk."""
    key = getattr(getattr(state.data, "metadata", None), "storage_key", None)
    if key:
        store = Path(get_current_settings().results.local_storage_path).resolve()
        path = Path(key).resolve()
        if store in path.parents:
            path.unlink(missing_ok=True)


TASK = dict(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=len(BUSY_RETRY_DELAYS),
    retry_delay_seconds=list(BUSY_RETRY_DELAYS),
    retry_condition_fn=database_busy,
)
FLOW = dict(persist_result=False, log_prints=False, on_failure=[forget_result])


def _on(on: str | None) -> date:
    """The day of a run: `on` as the command line reads --date; none means today in Japan."""
    return parse_day(on)


def _step(command: str, job):
    """Run job(conn, workspace, rules, config) on what `engine serve` bound: the rules and
    configuration loaded, the workspace's database open. A failure leaves as DatabaseBusy (to be
    retried) or StepFailed with reason(): no exception text reaches Prefect's logs or storage."""
    try:
        paths = bound()
        rules = load_rules(paths.rules)
        config = load_config(paths.config, rules)
        conn = connect(paths.workspace)
        try:
            return job(conn, Path(paths.workspace), rules, config)
        finally:
            conn.close()
    except Exception as err:
        if _busy(err):
            raise DatabaseBusy(
                "the workspace database stayed busy: another engine command was writing to it (an import, `engine run`)"
            ) from None
        raise StepFailed(reason(err, command)) from None


def _failed(what: str, err: Exception, command: str):
    """The end of a run that failed: its reason in one line, and a state with no data for Prefect to keep."""
    message = f"{what} failed: {reason(err, command)}"
    get_run_logger().error(message)
    return Failed(message=message)


@task(name="nightly-cycle", **TASK)
def nightly_task(on: str) -> dict:
    result = _step(
        f"engine run --date {on}",
        lambda conn, ws, rules, config: nightly_cycle(conn, ws, rules, config, date.fromisoformat(on)),
    )
    return result.model_dump(exclude={"screen": {"open_flags"}})


@task(name="dispatch-outbox", **TASK)
def dispatch_task(on: str) -> dict:
    return _step(
        f"engine send --date {on}",
        lambda conn, ws, rules, config: dispatch(conn, config, ws, date.fromisoformat(on)),
    ).model_dump()


@task(name="daily-sweep", **TASK)
def sweep_task(on: str) -> dict:
    return _step(
        f"engine sweep --date {on}",
        lambda conn, ws, rules, config: daily_sweep(conn, rules, config, date.fromisoformat(on)),
    ).model_dump()


def _log_nightly(day: str, result: dict) -> None:
    c, p = result["convene"], result["papers"]
    get_run_logger().info(
        "nightly cycle %s: %d cases opened, %d routed, %d agendas, %d e-mails queued",
        day,
        c["cases_opened"],
        c["cases_routed"],
        p["agendas"],
        p["messages_queued"] + p["routing_notices"],
    )
    if p.get("worker_stopped"):
        get_run_logger().warning(
            "nightly cycle %s: the papers' worker stopped (%s); this process built the rest", day, p["worker_stopped"]
        )


def _log_dispatch(day: str, result: dict) -> None:
    logger = get_run_logger()
    if result["send"] is None:
        logger.info("dispatch %s skipped: %s", day, result["closed_reason"])
        return
    s = result["send"]
    logger.info(
        "dispatch %s: %d sent, %d deferred, %d failed, %d possible duplicates",
        day,
        s["sent"],
        s["deferred"],
        s["failed"],
        s["possible_duplicates"],
    )


def _log_sweep(day: str, r: dict) -> None:
    get_run_logger().info(
        "sweep %s: %d reminders, %d escalations, %d evaluations booked, %d checkpoints asked, %d follow-ups asked, %d reopened, audit violations %d",
        day,
        r["reminders"],
        r["escalations"],
        r["evaluations_booked"],
        r["checkpoints_asked"],
        r.get("followups_asked", 0),
        r["reopened"],
        r["violations"],
    )


def _run(what: str, command: str, on: str | None, job, log):
    """A flow's body: the day, the task, its log line; a failure ends in _failed."""
    try:
        day = _on(on).isoformat()
        result = job(day)
    except Exception as err:
        return _failed(what, err, command)
    log(day, result)
    return result


@flow(name="nightly-cycle", **FLOW)
def nightly_flow(on: str | None = None) -> dict:
    """Screen the town, open and book cases, propose leads, write agendas, queue e-mails."""
    return _run("nightly cycle", "engine run --date DAY", on, nightly_task, _log_nightly)


@flow(name="agenda-dispatch", **FLOW)
def dispatch_flow(on: str | None = None) -> dict:
    """Send the outbox on business days (the cron fires Mon-Fri; holidays are skipped here)."""
    return _run("dispatch", "engine send --date DAY", on, dispatch_task, _log_dispatch)


@flow(name="daily-sweep", **FLOW)
def sweep_flow(on: str | None = None) -> dict:
    """Reminders, escalations, evaluations, watch checkpoints, reopening, the coordinator's digest and the gap audit."""
    return _run("sweep", "engine sweep --date DAY", on, sweep_task, _log_sweep)
