"""Crash trials: kill the nightly cycle and the daily sweep with SIGKILL at a random point, rerun,
and prove that nothing is lost and nothing is sent twice without the engine saying so.

    python -m bench.crashtrials [--trials 200] [--households 600] [--seed 42] [--out FILE]

(`make crash`; tests/reliability/test_crash.py runs 20 trials in the test suite.)

How a trial goes
- Four flows from three starting states: `nightly` and `nightly-workers` start from a synthetic
  town freshly imported (its first night: screen — in one process, or in 2 worker processes as
  from 20,000 households — convene, agendas, queue, send); `sweep` from the same town after the
  demo's fake-clock span, the first daily sweep after an 8-week outage (reminders, escalations,
  reopening, digest, audit; then the 08:00 dispatch); `nightly-later` from the sweep's end, the
  next night (reopened cases convened again).
- Each run is a forked process of its own process group, e-mailing through a REAL SMTP server on
  loopback (aiosmtpd, a separate process that appends every message it accepts to a log,
  fsync'd before it answers 250). The reference run of each flow runs uninterrupted.
- A trial copies the starting state, starts the flow, and after a random delay between 0 and the
  reference run's duration sends SIGKILL to the flow's main process only (as the OOM killer or
  a power cut would), then counts and kills whatever it left running (screen workers) as
  orphans, and reruns the flow to the end.
- Then it compares with the reference: every table that holds a flag, case, booking, request,
  checkpoint, escalation, queued e-mail (its body too, the .ics DTSTAMP aside) or audit entry
  (columns listed in VOLATILE aside) must hold exactly the reference's rows — a missing row is a loss, an
  extra one a duplicate; every agenda row has its files; `PRAGMA integrity_check` is ok; the
  gap audit finds what the reference found; and at the SMTP sink each message the reference
  sent arrived — once, or more than once only if the engine marked it possible_duplicate (the
  documented send-then-mark window; anything else is a silent duplicate), and the engine may
  mark as possible duplicates only messages the killed run left `sending`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from bench.benchlib import ON, ROOT  # ON, a Friday, is the first night; importing benchlib pins the clock to it
from tests.helpers.served import api, free_port, proc_env, wait_for

SPAN_DAYS = 40  # the demo span before the sweep trials start
LATER = ON + timedelta(days=96)  # 2027-03-03, a Wednesday: the first sweep after an 8-week outage catches up
FLOWS = ("nightly", "nightly-workers", "sweep", "nightly-later")

# columns that hold wall-clock time or run bookkeeping, legitimately different after a rerun
VOLATILE = {
    "audit_log": {"seq", "at", "chain"},  # the chain covers `at`
    "flags": {"run_id"},
    "agendas": {"rendered_at"},
    # attempts and possible_duplicate legitimately change after a crash in the send window (they are
    # checked against that window instead); parts is compared without the .ics DTSTAMP
    "outbox": {"attempts", "last_error", "queued_at", "next_attempt_at", "sent_at", "possible_duplicate"},
}
# rows only a crash in the send window writes (the coordinator told a message may arrive twice): checked
# against that window like possible_duplicate, not against the reference
CRASH_WINDOW = {
    "escalations": "subject_key NOT LIKE 'duplicate:%'",
    "audit_log": "NOT (event = 'escalation' AND detail LIKE '%\"kind\": \"mail_possible_duplicate\"%')",
}
STAMP = re.compile(r"DTSTAMP:[0-9TZ]+")  # the invitation's creation time: wall clock
COMPARED = (
    "flags",
    "cases",
    "case_flags",
    "case_meetings",
    "case_agencies",
    "case_actions",
    "meetings",
    "agendas",
    "lead_requests",
    "checkpoints",
    "escalations",
    "outcomes",
    "contacts",
    "outbox",
    "audit_log",
    "participation_needs",
    "referrals",
    "followups",
)


# --- the SMTP sink (a separate process) --------------------------------------------------------------
def serve_sink(port: int, log: Path) -> None:
    """Accept every message; append {from, to, key} to `log`, fsync'd, before answering 250."""
    import email
    import email.policy

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            line = json.dumps({"to": list(envelope.rcpt_tos), "key": msg["X-Engine-Key"]}) + "\n"
            with open(log, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            return "250 OK"

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait, in every thread
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


class Sink:
    def __init__(self, folder: Path):
        self.port = free_port()
        self.log = folder / "sink.jsonl"
        self.log.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.crashtrials", "--sink", str(self.port), str(self.log)],
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the SMTP sink did not start")

    def mark(self) -> int:
        return self.log.stat().st_size

    def received(self, since: int) -> Counter:
        """Messages the sink accepted since `mark()` returned `since`, counted per key. Runs are
        sequential: a killed run's last message is accepted (or not) within milliseconds of the
        kill, long before the rerun, and the trial waits a moment before it reads."""
        time.sleep(0.05)
        return Counter(m["key"] for m in self._since(since))

    def recipients(self, since: int) -> set[str]:
        return {to for m in self._since(since) for to in m["to"]}

    def _since(self, since: int) -> list[dict]:
        with open(self.log, encoding="utf-8") as f:
            f.seek(since)
            return [json.loads(line) for line in f]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- one run of a flow, in a forked process -----------------------------------------------------------
class Engine:
    """Rules and configuration loaded once; runs forked from here share them."""

    def __init__(self, port: int):
        from engine.config import Smtp, load_config
        from engine.rules.loader import load_rules

        self.rules = load_rules(ROOT / "configs" / "rules")
        cfg = load_config(ROOT / "configs", self.rules)
        self.config = cfg.model_copy(
            update={
                "mail": cfg.mail.model_copy(
                    update={"transport": "smtp", "smtp": Smtp(host="127.0.0.1", port=port, starttls=False, timeout=10)}
                )
            }
        )

    def run_flow(self, flow: str, ws: Path) -> None:
        """What the scheduled job does (engine/workflows/flows.py calls the same functions)."""
        from engine.casework.sweep import daily_sweep
        from engine.store.db import connect
        from engine.workflows.cycle import dispatch, nightly_cycle

        config = self.config
        conn = connect(ws)
        try:
            if flow == "sweep":
                daily_sweep(conn, self.rules, config, LATER)
                dispatch(conn, config, ws, LATER, force=True)
            elif flow == "nightly-undispatched":  # what the nightly deployment does; the dispatch is the 08:00 one
                nightly_cycle(conn, ws, self.rules, config, ON)
            elif flow == "nightly-later":
                nightly_cycle(conn, ws, self.rules, config, LATER + timedelta(days=1))
                dispatch(conn, config, ws, LATER + timedelta(days=1), force=True)
            else:
                if flow == "nightly-workers":
                    import engine.screening.screen

                    engine.screening.screen.PARALLEL_FROM = (
                        0  # the full screen in 2 worker processes, as from 20,000 households
                    )
                nightly_cycle(conn, ws, self.rules, config, ON)
                dispatch(conn, config, ws, ON, force=True)
        finally:
            conn.close()

    def start(self, flow: str, ws: Path) -> int:
        """Fork a run; its output (and its workers') goes to <ws>.log."""
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            os.setpgid(0, 0)  # its own process group: whatever it starts can be found and cleaned up
            out = os.open(f"{ws}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(out, 1)
            os.dup2(out, 2)
            self.run_flow(flow, ws)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)


def day_of(flow: str) -> date:
    return {"sweep": LATER, "nightly-later": LATER + timedelta(days=1)}.get(flow, ON)


def become_subreaper() -> None:
    """Orphans of a killed run are re-parented to this process (not to PID 1, which in a
    container may never reap them), so they can be counted, killed and reaped."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def live_processes() -> list[tuple[int, int, int]]:
    """(pid, process group, session) of every process that has not exited."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, session, ...
            if fields[0] != "Z":
                out.append((int(p.name), int(fields[2]), int(fields[3])))
    return out


def group_members(pgid: int) -> list[int]:
    """Live processes of the group, reaping the ones that have exited."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return [pid for pid, group, _ in live_processes() if group == pgid]


def reap_group(pgid: int, grace: float = 1.0) -> tuple[int, int]:
    """Processes a killed run left in its group (screen workers, multiprocessing's resource
    tracker): (how many were still running 0.1 s after the kill, how many were still running
    after `grace` seconds and had to be killed here)."""
    time.sleep(0.1)
    seen = len(group_members(pgid))
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = group_members(pgid)
    if left:
        if os.environ.get("CRASH_DEBUG"):
            print("left running:", [Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in left], file=sys.stderr)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while group_members(pgid):
            time.sleep(0.02)
    return seen, len(left)


def wait_ok(pid: int, ws: Path) -> None:
    _, status = os.waitpid(pid, 0)
    if group_members(pid):
        reap_group(pid)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(
            f"a run to the end failed with exit code {os.waitstatus_to_exitcode(status)}:\n"
            + Path(f"{ws}.log").read_text(errors="replace")[-4000:]
        )


# --- the starting states ----------------------------------------------------------------------------
def prepare(folder: Path, households: int, seed: int) -> dict[str, Path]:
    from engine.config import load_config
    from engine.demo.run import run_demo
    from engine.demo.town import generate_town
    from engine.intake.importer import import_dir
    from engine.rules.loader import load_rules
    from engine.store.db import connect

    nightly = folder / "start-nightly"
    conn = connect(nightly)  # first: the engine refuses a workspace folder holding files it did not make
    generate_town(nightly / "town", households, seed, today=ON, bad_rows=0)
    import_dir(conn, nightly / "town", today=ON, report_dir=nightly / "reports")
    conn.close()
    rules = load_rules(ROOT / "configs" / "rules")
    sweep = folder / "start-sweep"
    run_demo(
        sweep,
        rules,
        load_config(ROOT / "configs", rules),
        households=households,
        seed=seed,
        on=ON,
        bad_rows=0,
        days=SPAN_DAYS,
    )
    add_referrals(sweep, rules, load_config(ROOT / "configs", rules), ON + timedelta(days=SPAN_DAYS))
    return {"nightly": nightly, "nightly-workers": nightly, "sweep": sweep}  # nightly-later: the sweep's reference run


PLACES = ("salon_chuo", "shokudo_chuo", "ibasho_chuo", "salon_kita", "shokudo_kita", "salon_minami")


def add_referrals(ws: Path, rules, config, on: date, count: int = 12) -> int:
    """参加支援 in the sweep's starting state: at the demo span's end the lead refers members of open
    cases to places (with consent and without: the place told by e-mail, or the introducer asked
    to go with the person), and every other referral is accepted at once. The sweep after the
    outage then sends the referral e-mails, asks the follow-ups due in between, reminds and
    escalates the unanswered referrals; the kill falls anywhere in that. Returns how many."""
    from engine.participation.answers import answer_referral, refer_case
    from engine.participation.states import ReferralRefused
    from engine.store.db import connect

    conn = connect(ws)
    made = 0
    try:
        cases = conn.execute(
            "SELECT case_id FROM cases WHERE is_open = 1 AND lead_agency_id IS NOT NULL ORDER BY case_id"
        ).fetchall()
        for i, (case_id,) in enumerate(cases[:count]):
            try:
                referral = refer_case(
                    conn, config, case_id, "1", PLACES[i % len(PLACES)], on, "crashtrials", consent=i % 3 != 2
                )
            except ReferralRefused:
                continue
            made += 1
            if i % 2 == 0:
                answer_referral(conn, rules, config, referral, "accept", on, "crashtrials")
    finally:
        conn.close()
    return made


def copy_state(start: Path, ws: Path) -> Path:
    shutil.copytree(start, ws)
    return ws


# --- what a run left behind ---------------------------------------------------------------------------
@dataclass
class State:
    integrity: str
    rows: dict[str, Counter]
    missing_agenda_files: int
    audit_violations: list
    possible_duplicates: set[str]
    sent: set[str]


def state_of(ws: Path, config, day: date) -> State:
    from engine.casework.audit import run_audit

    conn = sqlite3.connect(ws / "engine.db")
    conn.create_function("regexp_replace_stamp", 1, lambda text: STAMP.sub("DTSTAMP:-", text) if text else text)
    try:
        rows = {}
        for table in COMPARED:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in VOLATILE.get(table, set())]
            select = ", ".join(f"regexp_replace_stamp({c})" if (table, c) == ("outbox", "parts") else c for c in cols)
            where = f" WHERE {CRASH_WINDOW[table]}" if table in CRASH_WINDOW else ""
            rows[table] = Counter(conn.execute(f"SELECT {select} FROM {table}{where}").fetchall())
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        missing = sum(
            1
            for folder, agency, version in conn.execute("SELECT folder, agency_id, version FROM agendas")
            if not list((ws / folder).glob(f"{agency}.v{version}.*"))
        )
        dups = {k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE possible_duplicate = 1")}
        sent = {k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE status = 'sent'")}
    finally:
        conn.close()
    from engine.store.db import connect

    c = connect(ws)
    try:
        violations = sorted(
            (v.kind, v.case_id or "", v.household_id or "") for v in run_audit(c, config, day).violations
        )
    finally:
        c.close()
    return State(integrity, rows, missing, violations, dups, sent)


@dataclass
class Trial:
    flow: str
    delay: float
    killed: bool
    orphans: int  # processes of the killed run still running 0.1 s after the kill
    orphans_killed: int  # ... and still running 1 s later: killed by the harness
    losses: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # silent ones: a failure
    reported_duplicates: int = 0  # e-mails delivered twice in the send-then-mark window, marked by the engine
    problems: list[str] = field(default_factory=list)


def sending_keys(ws: Path) -> set[str]:
    """Messages a killed run left `sending`: the one window where a duplicate may be reported."""
    conn = sqlite3.connect(ws / "engine.db")
    try:
        return {k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE status = 'sending'")}
    finally:
        conn.close()


def compare(
    ref: State, got: State, ref_mail: Counter, mail: Counter, window: set[str] = frozenset()
) -> tuple[list[str], list[str], int, list[str]]:
    losses, dups, problems = [], [], []
    if got.integrity != "ok":
        problems.append(f"integrity_check: {got.integrity}")
    if got.missing_agenda_files:
        losses.append(f"{got.missing_agenda_files} agenda versions without their files")
    beyond = (got.possible_duplicates - ref.possible_duplicates) - set(window)
    if beyond:
        problems.append(f"marked possible_duplicate outside the crash window: {sorted(beyond)[:5]}")
    for table in COMPARED:
        lost = ref.rows[table] - got.rows[table]
        extra = got.rows[table] - ref.rows[table]
        losses += [f"{table}: {row}" for row in lost.elements()]
        dups += [f"{table}: {row}" for row in extra.elements()]
    if got.audit_violations != ref.audit_violations:
        problems.append(f"gap audit differs: {sorted(set(got.audit_violations) ^ set(ref.audit_violations))[:5]}")
    reported = 0
    for key in ref_mail:
        if mail[key] == 0:
            losses.append(f"e-mail {key} never arrived")
    for key, n in mail.items():
        if key not in ref_mail:
            dups.append(f"e-mail {key} was not sent by the reference run")
        elif n > 1:
            if key in got.possible_duplicates:
                reported += 1
            else:
                dups.append(f"e-mail {key} arrived {n} times, not marked possible_duplicate")
    return losses, dups, reported, problems


# --- `engine serve` killed while a flow runs -----------------------------------------------------------
def processes_of(sessions: set[int]) -> list[int]:
    return [pid for pid, _, session in live_processes() if session in sessions]


class Served:
    """`engine serve` on a workspace, as a user starts it (the shipped configs: e-mail to the outbox folder)."""

    def __init__(self, ws: Path):
        self.ws = ws
        self.port = free_port()
        env = proc_env()
        self.log = open(f"{ws}.serve.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--workspace",
                str(ws),
                "--config",
                str(ROOT / "configs"),
                "--rules",
                str(ROOT / "configs" / "rules"),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.url = f"http://127.0.0.1:{self.port}/api"
        deps = wait_for(lambda: len(d := self.api("/deployments/filter", {})) == 3 and d, 180, "the deployments")
        self.deployments = {d["name"]: d["id"] for d in deps}

    def api(self, path: str, body: dict | None = None):
        """The served API, with the password `engine serve` keeps in the workspace."""
        from engine.workflows.serve import read_api_auth

        return api(self.url, path, body, auth=read_api_auth(self.ws))

    def server_pid(self) -> int | None:
        f = self.ws / "prefect" / "server.pid"
        return int(f.read_text()) if f.exists() else None

    def run(self, name: str, on: date) -> str:
        return self.api(
            f"/deployments/{self.deployments[name]}/create_flow_run", {"parameters": {"on": on.isoformat()}}
        )["id"]

    def state(self, run_id: str) -> str:
        return self.api(f"/flow_runs/{run_id}")["state"]["type"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@dataclass
class ServeTrial:
    delay: float
    orphans: int  # processes of the killed serve still running (its Prefect server, flow runs)
    orphans_left: int  # still running after the next `engine serve` started and stopped
    losses: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def serve_trial(start: Path, ws: Path, ref: State, rng: random.Random, config) -> ServeTrial:
    """Kill `engine serve` (SIGKILL, its main process only) while the nightly deployment runs;
    serve again on the same workspace, run the nightly to the end, stop with Ctrl-C."""
    copy_state(start, ws)
    first = Served(ws)
    server = first.server_pid()
    run_id = first.run("nightly-cycle", ON)
    wait_for(lambda: first.state(run_id) in ("RUNNING", "COMPLETED"), 120, "the flow run to start")
    delay = rng.uniform(0, 3.0)
    time.sleep(delay)
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    first.log.close()
    time.sleep(0.5)
    sessions = {first.proc.pid} | ({server} if server else set())
    orphans = processes_of(sessions)
    second = Served(ws)  # stops the orphaned server first
    try:
        run2 = second.run("nightly-cycle", ON)
        state = wait_for(
            lambda: (s := second.state(run2)) in ("COMPLETED", "FAILED", "CRASHED") and s, 300, "the rerun"
        )
    finally:
        second.stop()
    left = processes_of(sessions | {second.proc.pid} | ({second.server_pid()} if second.server_pid() else set()))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    got = state_of(ws, config, ON)
    losses, dups, _, problems = compare(ref, got, Counter(), Counter())
    if state != "COMPLETED":
        problems.append(f"the rerun ended {state}")
    return ServeTrial(round(delay, 2), len(orphans), len(left), losses, dups, problems)


# --- the harness --------------------------------------------------------------------------------------
def run_trials(trials: int, households: int, seed: int, folder: Path, *, serve_trials: int = 0, log=print) -> dict:
    become_subreaper()
    sink = Sink(folder)
    try:
        engine = Engine(sink.port)
        started = time.perf_counter()
        starts = prepare(folder, households, seed)
        log(f"prepared {households} households (seed {seed}) in {time.perf_counter() - started:.1f} s")
        refs, durations, ref_mail = {}, {}, {}
        for flow in FLOWS:
            ws = copy_state(starts[flow], folder / f"ref-{flow}")
            mark = sink.mark()
            t = time.perf_counter()
            wait_ok(engine.start(flow, ws), ws)
            durations[flow] = time.perf_counter() - t
            refs[flow] = state_of(ws, engine.config, day_of(flow))
            ref_mail[flow] = sink.received(mark)
            already = state_of(starts[flow], engine.config, ON).sent
            if max(ref_mail[flow].values(), default=0) > 1 or set(ref_mail[flow]) != refs[flow].sent - already:
                raise RuntimeError(f"the uninterrupted {flow} run did not deliver each message once")
            log(
                f"reference {flow}: {durations[flow]:.2f} s, {len(ref_mail[flow])} e-mails, "
                f"{sum(refs[flow].rows['audit_log'].values())} audit entries, {sum(refs[flow].rows['cases'].values())} cases"
            )
            if flow == "sweep":  # the next night starts from the morning's sweep (reopened cases to convene)
                starts["nightly-later"] = ws
            else:
                shutil.rmtree(ws)
        rng = random.Random(seed)
        registry = {a.email for a in engine.config.agencies.values()} | {engine.config.lifecycle.coordinator_email}
        registry |= {p.email for p in engine.config.participation.places.values()}  # 参加支援: a place's referrals
        results: list[Trial] = []
        for n in range(trials):
            flow = FLOWS[n % len(FLOWS)]
            ws = copy_state(starts[flow], folder / f"trial-{n}")
            mark = sink.mark()
            delay = rng.uniform(0, 0.95 * durations[flow])
            pid = engine.start(flow, ws)
            time.sleep(delay)
            finished, _ = os.waitpid(pid, os.WNOHANG)
            killed = finished == 0
            if killed:
                os.kill(pid, signal.SIGKILL)  # the main process only, as a power cut or the OOM killer would
                os.waitpid(pid, 0)
            orphans, orphans_killed = reap_group(pid) if killed else (0, 0)
            window = sending_keys(ws)
            wait_ok(engine.start(flow, ws), ws)
            got = state_of(ws, engine.config, day_of(flow))
            losses, dups, reported, problems = compare(refs[flow], got, ref_mail[flow], sink.received(mark), window)
            strangers = sink.recipients(mark) - registry
            if strangers:
                problems.append(f"e-mail to addresses not in the registry: {sorted(strangers)}")
            trial = Trial(flow, round(delay, 3), killed, orphans, orphans_killed, losses, dups, reported, problems)
            results.append(trial)
            if losses or dups or problems:
                log(
                    f"trial {n} ({flow}, killed after {delay:.2f} s): losses {losses[:3]} duplicates {dups[:3]} problems {problems[:3]}"
                )
            shutil.rmtree(ws)
            Path(f"{ws}.log").unlink(missing_ok=True)
        served: list[ServeTrial] = []
        if serve_trials:
            ws = copy_state(starts["nightly"], folder / "ref-served")
            wait_ok(engine.start("nightly-undispatched", ws), ws)
            ref = state_of(ws, engine.config, ON)
            for n in range(serve_trials):
                trial = serve_trial(starts["nightly"], folder / f"served-{n}", ref, rng, engine.config)
                served.append(trial)
                log(
                    f"serve trial {n}: killed `engine serve` {trial.delay} s into the nightly run; {trial.orphans} processes orphaned, "
                    f"{trial.orphans_left} left after the next serve"
                    + (
                        f"; losses {trial.losses[:3]} duplicates {trial.duplicates[:3]} problems {trial.problems[:3]}"
                        if trial.losses or trial.duplicates or trial.problems
                        else ""
                    )
                )
                shutil.rmtree(folder / f"served-{n}", ignore_errors=True)
        return summarise(results, served, households, seed, durations, time.perf_counter() - started)
    finally:
        sink.stop()


def summarise(
    results: list[Trial], served: list[ServeTrial], households: int, seed: int, durations: dict, seconds: float
) -> dict:
    by_flow = {flow: [t for t in results if t.flow == flow] for flow in FLOWS}
    return {
        "trials": len(results) + len(served),
        "kills": sum(t.killed for t in results) + len(served),
        "losses": sum(len(t.losses) for t in results + served),
        "duplicates": sum(len(t.duplicates) for t in results + served),
        "reported_duplicates": sum(t.reported_duplicates for t in results),
        "integrity_failures": sum(1 for t in results for p in t.problems if p.startswith("integrity")),
        "other_problems": sum(1 for t in results + served for p in t.problems if not p.startswith("integrity")),
        "orphans_seen": sum(t.orphans for t in results),
        "orphans_killed": sum(t.orphans_killed for t in results),
        "serve_trials": len(served),
        "serve_orphans": sum(t.orphans for t in served),  # the killed serve's Prefect server and flow runs
        "serve_orphans_left": sum(t.orphans_left for t in served),  # still running after the next serve: must be 0
        "per_flow": {
            flow: {
                "trials": len(ts),
                "kills": sum(t.killed for t in ts),
                "reported_duplicates": sum(t.reported_duplicates for t in ts),
                "reference_seconds": round(durations[flow], 2),
            }
            for flow, ts in by_flow.items()
        },
        "households": households,
        "seed": seed,
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "failed_trials": [t.__dict__ for t in results + served if t.losses or t.duplicates or t.problems][:20],
    }


def render(s: dict) -> str:
    return (
        f"trials {s['trials']} (" + ", ".join(f"{f} {v['trials']}" for f, v in s["per_flow"].items()) + "), "
        f"kills {s['kills']}, losses {s['losses']}, duplicates {s['duplicates']} "
        f"(+{s['reported_duplicates']} reported by the engine as possible duplicates), "
        f"integrity failures {s['integrity_failures']}, other problems {s['other_problems']}, "
        f"orphaned processes {s['orphans_seen']} seen after a kill, {s['orphans_killed']} left to kill; "
        f"`engine serve` killed {s['serve_trials']} times: {s['serve_orphans']} processes orphaned, {s['serve_orphans_left']} left after the next serve; "
        f"{s['households']} households, {s['seconds']} s"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--serve-trials",
        type=int,
        default=4,
        help="also SIGKILL `engine serve` (a real Prefect server) this many times (about 35 s each)",
    )
    ap.add_argument("--out", type=Path, help="write the summary as JSON here")
    ap.add_argument("--sink", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sink:
        serve_sink(int(args.sink[0]), Path(args.sink[1]))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="crash-trials-"))
    try:
        summary = run_trials(args.trials, args.households, args.seed, folder, serve_trials=args.serve_trials)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(render(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return (
        0
        if not (
            summary["losses"]
            or summary["duplicates"]
            or summary["integrity_failures"]
            or summary["other_problems"]
            or summary["orphans_killed"]
            or summary["serve_orphans_left"]
        )
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
