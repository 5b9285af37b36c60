"""Issue 5, privacy: a full scan of everything that leaves or outlives a run.

One synthetic town goes through the whole life the engine gives it: `engine demo` (generate,
import, screen, first night, 60 simulated days of the lifecycle), then the three Prefect flows
(nightly cycle, daily sweep, dispatch) run in-process for two more days against a throwaway
Prefect server whose home and database live in WORKSPACE/prefect (as with `engine serve`), and
every read-only CLI command is run. Then every byte that is not the engine's own database is
scanned for the town's names, kana, addresses and birth dates (read back from the town's CSVs):
the outbox's .eml files (decoded), agendas and papers, reports, the simulator's outcome files,
Prefect's database files, the Prefect API's answers (flow runs, task runs, logs, events), Python
logging records, the process's stdout/stderr (the Prefect server's too), every CLI output, and the
columns of engine.db whose text is e-mailed or printed (outbox, audit log, escalations, …).
Each text is scanned as stored and written the one way the personal-data guard writes it
(engine/policy/normalise.py: variant kanji, half-width kana, zero-width characters, kanji
numerals, 丁目/番/号, spaced or 2-digit-year dates, a one-character name next to an age or 続柄);
the scanner lives in tests/helpers/privacy.py. Random ids (UUIDs, digests) are masked first: SQLite
pages hold Prefect's ids side by side, and a compact birth date turned up across two of them by
chance (CI, 2026-12-06); a date written beside an id is still found.

Allowed to hold personal data: engine.db (-wal, -shm) itself; the input extracts (town/, the
simulator's relapse extract sim/extract-*/, both stand-ins for the silos' CSV files); and the
coordinator's local full version (agendas/*/coordinator.vN.html) for NAMES only, as docs/threat-model.md says
documents ("the coordinator's full version (names, all silos) … never e-mailed"). That last one
is a documented design decision, not a silent exemption: test_coordinator_versions_hold_names_only
pins that it carries no kana, address or birth date.

Run time: about 25 s (the Prefect server's start and the six flow runs take about 10, the scan's
normalised view about 5).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.store.db import connect
from engine.support import clock
from engine.support.dates import DateError, parse_date
from tests.helpers.paths import ROOT
from tests.helpers.privacy import Scan, eml_text, engine_vocabulary, read_rows, town_secrets, trie_pattern

RULES = ROOT / "configs" / "rules"
CONFIG = ROOT / "configs"
START = date(2026, 11, 27)
DAYS = 60
END = START + timedelta(days=DAYS)  # 2027-01-26, a Tuesday: the demo's workspace lives on this day
FLOW_DAYS = [END + timedelta(days=1), END + timedelta(days=2)]  # Wed 01-27 and Thu 01-28: business days
LAST = FLOW_DAYS[-1]
# 300 households, seed 11: ~650 persons, 18 cases including a DV household (locked) and a case routed
# to 要対協 — seed 7 (the first choice) has neither, so the scan would not see those paths.
HOUSEHOLDS, SEED = 300, 11


def event_dates(town: Path) -> set[date]:
    """Dates a scanned text may carry that are not birth dates: record dates (explain and the
    coordinator's version print them), the span's days and the year after it (meetings, due days,
    checkpoints), and today's wall clock (timestamps)."""
    out = {day + timedelta(days=k) for day in (date.today(), clock.today()) for k in (-1, 0, 1)}
    out |= {START + timedelta(days=k) for k in range(-1, DAYS + 400)}
    for row in read_rows(town / "records.csv"):
        for cell in row[4:6]:
            try:
                out.add(parse_date(cell))
            except (DateError, IndexError):
                pass
    return out


class Records(logging.Handler):
    """Every Python logging record of the run (caplog is function-scoped; this is the same idea for
    the module's one run): message, arguments, exception text, and the Prefect run context."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken format string is still scanned raw
            message = str(record.msg)
        extra = {
            k: v
            for k, v in record.__dict__.items()
            if k in ("flow_run_name", "task_run_name", "flow_name", "task_name")
        }
        self.lines.append(f"{record.name} {record.levelname} {message} {record.args!r} {extra} {record.exc_text or ''}")


class FdCapture:
    """Redirect the process's file descriptors 1 and 2 into a file: catches what the Prefect server
    subprocess (which inherits them) and Prefect's console handler print."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "wb")
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.close()


@dataclass
class Run:
    workspace: Path
    outputs: dict[str, str]  # CLI command -> its output (stdout and stderr)
    api: dict[str, str]  # Prefect API endpoint -> its JSON answer
    log_lines: list[str]
    fd_output: str
    prefect_files_live: dict[str, bytes]  # Prefect's database files while the server still ran
    flow_results: list[dict]
    home_before: list[tuple[str, float]]
    home_after: list[tuple[str, float]]
    seconds: dict[str, float] = field(default_factory=dict)


def _invoke(runner: CliRunner, outputs: dict, *args: str, ok=(0,)) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code in ok, (args, result.output, result.exception)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    outputs[" ".join(args)] = text
    return text


def _user_prefect_home() -> list[tuple[str, float]]:
    home = Path.home() / ".prefect"
    return sorted((str(p), p.stat().st_mtime) for p in home.rglob("*")) if home.exists() else []


def _run_flows(ws: Path, prefect_home: Path, log_dir: Path) -> tuple[dict, dict, str, list[dict]]:
    """The three flows, in-process, against a throwaway Prefect server: its home and database in
    WORKSPACE/prefect (like `engine serve`), never the user's ~/.prefect."""
    from unittest import mock

    import httpx
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.settings import temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    from engine.support.settings import bind
    from engine.workflows.flows import dispatch_flow, nightly_flow, sweep_flow

    prefect_home.mkdir(mode=0o700, exist_ok=True)
    isolated = {
        "home": str(prefect_home),
        "server.database.connection_url": f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}",
        "results.local_storage_path": str(prefect_home / "storage"),
        "server.analytics_enabled": False,
        # no heartbeat thread: its 1-second sleep makes every in-process flow run end a second late
        # (heartbeat events carry the flow run's id and name only, which the API dump covers anyway)
        "flows.heartbeat_frequency": None,
    }
    api: dict[str, str] = {}
    live: dict[str, bytes] = {}
    results: list[dict] = []
    with temporary_settings(updates=isolated), temporary_database_interface():
        server = SubprocessASGIServer()  # a free port; the subprocess gets the settings above as PREFECT_* variables
        with FdCapture(log_dir / "fd.log"):
            server.start(timeout=90)
            try:
                with (
                    temporary_settings(updates={"api.url": server.api_url}),
                    prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()),
                ):
                    # the flows read the folders `engine serve` binds in its environment, never a parameter
                    with mock.patch.dict(os.environ, bind(ws, RULES, CONFIG)):
                        for day in FLOW_DAYS:
                            for fl in (nightly_flow, sweep_flow, dispatch_flow):
                                results.append(fl(on=day.isoformat()))

                    async def drain():
                        for worker in (APILogWorker.instance().drain(), EventsWorker.drain_all()):
                            if hasattr(worker, "__await__"):
                                await worker

                    run_coro_as_sync(drain())
                    with httpx.Client(base_url=server.api_url, timeout=30) as http:
                        for endpoint in (
                            "/flow_runs/filter",
                            "/task_runs/filter",
                            "/logs/filter",
                            "/flows/filter",
                            "/artifacts/filter",
                            "/variables/filter",
                        ):
                            pages, offset = [], 0
                            while True:
                                r = http.post(endpoint, json={"limit": 200, "offset": offset})
                                r.raise_for_status()
                                pages += r.json()
                                if len(r.json()) < 200:
                                    break
                                offset += 200
                            api[endpoint] = json.dumps(pages, ensure_ascii=False)
                        r = http.post("/events/filter", json={"limit": 200})
                        events, page = [], r.json()
                        while True:
                            events += page.get("events", [])
                            if not page.get("next_page"):
                                break
                            page = http.get(page["next_page"]).json()
                        api["/events/filter"] = json.dumps(events, ensure_ascii=False)
                    live = {p.name: p.read_bytes() for p in prefect_home.iterdir() if p.is_file()}
            finally:
                server.stop()
    return api, live, (log_dir / "fd.log").read_text("utf-8", "replace"), results


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    import time

    import prefect.logging.configuration  # noqa: F401 - Prefect configures logging on import (dictConfig resets

    import engine.workflows.flows  # noqa: F401   the root logger's handlers): attach ours after that

    root = tmp_path_factory.mktemp("privacy")
    t0 = time.perf_counter()
    ws = root / "ws"
    runner = CliRunner()
    outputs: dict[str, str] = {}
    handler = Records()
    loggers = [logging.getLogger(), logging.getLogger("prefect.extra"), logging.getLogger("prefect._internal")]
    prefect_logger = logging.getLogger("prefect")
    saved_level = prefect_logger.level
    for lg in loggers:
        lg.addHandler(handler)
    prefect_logger.setLevel(logging.DEBUG)  # Prefect's debug logs (parameters, states, API calls) are scanned too
    home_before = _user_prefect_home()
    try:
        _invoke(
            runner,
            outputs,
            "demo",
            "--households",
            str(HOUSEHOLDS),
            "--seed",
            str(SEED),
            "--date",
            START.isoformat(),
            "--days",
            str(DAYS),
            "--workspace",
            str(ws),
            "--rules",
            str(RULES),
            "--config",
            str(CONFIG),
            "--json",
        )
        _invoke(
            runner,
            outputs,
            "demo",
            "--households",
            str(HOUSEHOLDS),
            "--seed",
            str(SEED),
            "--date",
            START.isoformat(),
            "--days",
            "0",
            "--workspace",
            str(root / "ws-text"),
            "--rules",
            str(RULES),
            "--config",
            str(CONFIG),
        )  # the text output, first night only
        t1 = time.perf_counter()
        api, live, fd_output, results = _run_flows(ws, ws / "prefect", root)
        started = time.perf_counter()
        common = ("--workspace", str(ws))
        rc = (*common, "--rules", str(RULES), "--config", str(CONFIG))
        day = ("--date", LAST.isoformat())
        _invoke(runner, outputs, "cases", *common, *day)
        _invoke(runner, outputs, "cases", *common, *day, "--json")
        _invoke(runner, outputs, "meetings", *rc, *day, "--all")
        _invoke(runner, outputs, "meetings", *rc, *day, "--all", "--json")
        _invoke(runner, outputs, "outbox", *common)
        _invoke(runner, outputs, "outbox", *common, "--json")
        for status in ("sent", "failed", "superseded", "pending"):
            _invoke(runner, outputs, "outbox", *common, "--status", status)
        _invoke(runner, outputs, "audit", *rc, *day, ok=(0, 1))
        _invoke(runner, outputs, "audit", *rc, *day, "--json", ok=(0, 1))
        _invoke(runner, outputs, "summary", "--workspace", str(ws), "--rules", str(RULES))
        _invoke(runner, outputs, "summary", "--workspace", str(ws), "--rules", str(RULES), "--json")
        conn = connect(ws, readonly=True)
        try:
            cases = [c for (c,) in conn.execute("SELECT case_id FROM cases ORDER BY case_id")]
            meetings = [m for (m,) in conn.execute("SELECT meeting_id FROM meetings ORDER BY held_on")]
            agendas = conn.execute(
                "SELECT DISTINCT meeting_id, agency_id FROM agendas WHERE agency_id != 'coordinator' ORDER BY 1, 2"
            ).fetchall()
            flagged = [h for (h,) in conn.execute("SELECT DISTINCT household_id FROM flags ORDER BY household_id")]
            dv = [h for (h,) in conn.execute("SELECT DISTINCT household_id FROM flags WHERE rule_id = 'dv'")]
        finally:
            conn.close()
        for case_id in cases:
            _invoke(runner, outputs, "history", case_id, *common)
        for case_id in cases[:6]:
            _invoke(runner, outputs, "history", case_id, *common, "--json")
        for meeting in meetings:
            _invoke(runner, outputs, "agenda", meeting, *common)
        for meeting, agency in agendas:
            _invoke(runner, outputs, "agenda", meeting, "--agency", agency, *common)
            _invoke(runner, outputs, "agenda", meeting, "--agency", agency, "--html", *common)
        for hid in flagged[:30] + dv:
            _invoke(
                runner,
                outputs,
                "explain",
                hid,
                "--workspace",
                str(ws),
                "--rules",
                str(RULES),
                "--date",
                START.isoformat(),
            )
        for hid in flagged[:3] + dv:
            for rule in ("dv", "8050", "multiple_arrears"):
                _invoke(runner, outputs, "explain", hid, "--rule", rule, "--workspace", str(ws), "--rules", str(RULES))
        _invoke(
            runner, outputs, "sweep", *rc, "--date", (LAST + timedelta(days=1)).isoformat(), "--json"
        )  # writes: run last
        seconds = {"demo": t1 - t0, "prefect": started - t1, "cli": time.perf_counter() - started}
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        prefect_logger.setLevel(saved_level)
    return Run(ws, outputs, api, handler.lines, fd_output, live, results, home_before, _user_prefect_home(), seconds)


# columns of engine.db whose text leaves the database: e-mailed (outbox), printed (history, cases,
# audit, digest) or handed to an agency (lead reason shared, outcome actions)
LEAVING_COLUMNS = {
    "outbox": "message_key, subject, parts, last_error, sent_to",
    "audit_log": "reason, detail",
    "escalations": "detail",
    "cases": "conference_basis, lead_reason, lead_reason_shared",
    "outcomes": "body",
    "case_actions": "action",
    "lead_requests": "reason",
    "rejects": "file, field, reason",
    "imports": "summary",
    "flags": "evidence",
}
EXEMPT_DB = {"engine.db", "engine.db-wal", "engine.db-shm"}


def input_extract(rel: Path) -> bool:
    """The silos' CSV files (generated town, the simulator's relapse extract): the data arriving."""
    return rel.parts[0] == "town" or (
        len(rel.parts) > 1 and rel.parts[0] == "sim" and rel.parts[1].startswith("extract-")
    )


@pytest.fixture(scope="module")
def scan(run: Run) -> Scan:
    import time

    started = time.perf_counter()
    ws = run.workspace
    secrets = town_secrets(ws / "town", event_dates(ws / "town"))
    vocabulary = engine_vocabulary(secrets.kinds)
    result = Scan(secrets, trie_pattern(secrets.kinds), trie_pattern(vocabulary))
    names_only = frozenset({"name"})
    for path in sorted(p for p in ws.rglob("*") if p.is_file()):
        rel = path.relative_to(ws)
        if str(rel) in EXEMPT_DB or input_extract(rel):
            continue
        coordinator = rel.parts[0] == "agendas" and path.name.startswith("coordinator.")
        result.file(path, ws, allow=names_only if coordinator else frozenset())
    result.text("file names", "\n".join(str(p.relative_to(ws)) for p in ws.rglob("*")), "paths")
    for name, data in run.prefect_files_live.items():
        result.text(f"prefect/{name} (while the server ran)", data.decode("utf-8", "replace"), "prefect-live")
    for command, text in run.outputs.items():
        result.text(f"engine {command}", text, "cli")
    for endpoint, text in run.api.items():
        result.text(f"Prefect API {endpoint}", text, "prefect-api")
    result.text("logging records", "\n".join(run.log_lines), "logging")
    result.text("stdout/stderr (fd 1, 2)", run.fd_output, "fd")
    result.text("flow results", json.dumps(run.flow_results, ensure_ascii=False, default=str), "flow-results")
    conn = connect(ws, readonly=True)
    try:
        for table, columns in LEAVING_COLUMNS.items():
            rows = conn.execute(f"SELECT {columns} FROM {table}").fetchall()
            result.text(
                f"engine.db {table}({columns})", "\n".join("\t".join(str(v) for v in row) for row in rows), "db-columns"
            )
    finally:
        conn.close()
    result.seconds = time.perf_counter() - started
    return result


def test_the_run_is_the_whole_lifecycle(run: Run):
    """The scan means something only if the run went through every path it should have."""
    demo = json.loads(
        next(v for k, v in run.outputs.items() if k.startswith("demo") and "--json" in k).split("\n(demo took")[0]
    )
    assert demo["households"] == HOUSEHOLDS and demo["cases_started"] >= 10 and demo["cases_opened"] >= 1
    assert demo["cases_routed"] >= 1 and demo["pathways"]["assessment"] >= 1
    assert demo["flags"]["dv"] >= 1 and demo["reminders_sent"] > 0 and demo["lifecycle"]["outcomes"] > 0
    assert len(run.flow_results) == 6 and all(r for r in run.flow_results)
    flow_runs = json.loads(run.api["/flow_runs/filter"])
    assert sorted(r["state"]["type"] for r in flow_runs) == ["COMPLETED"] * 6
    assert any("nightly cycle" in e["message"] for e in json.loads(run.api["/logs/filter"]))
    assert (run.workspace / "prefect" / "prefect.db").exists() and run.log_lines
    assert run.home_after == run.home_before, "the run wrote into the user's ~/.prefect"


def test_no_name_kana_address_or_birth_date_outside_the_database(scan: Scan, run: Run):
    s = scan.secrets
    counts = {k: sum(1 for kinds in s.kinds.values() if k in kinds) for k in ("name", "kana", "address", "birth")}
    print(
        f"\nprivacy scan: {len(s.kinds):,} secrets ({counts}) from {s.persons:,} persons and {s.households:,} households "
        f"({s.ambiguous_births} birth dates not checkable: also an event date); {scan.files:,} files, "
        f"{scan.blobs:,} texts, {scan.bytes / 1e6:.1f} MB scanned; texts per source {scan.by_source}; hits {len(scan.hits)}; "
        f"run seconds { ({k: round(v, 1) for k, v in run.seconds.items()}) }, scan {scan.seconds:.1f} s"
    )
    assert len(s.kinds) >= 3000 and min(counts.values()) >= 250 and s.persons >= 600
    assert scan.files >= 150 and scan.bytes >= 5_000_000
    assert scan.by_source["cli"] >= 100 and scan.by_source["prefect-api"] >= 7 and scan.by_source["prefect-live"] >= 1
    assert scan.hits == [], "\n".join(
        f"{secret!r} in {where}: …{context}…" for secret, where, context in scan.hits[:30]
    )


def test_the_scanner_finds_what_it_looks_for(scan: Scan, run: Run):
    """Guard against a scan that can see nothing: the exempt files do hold the secrets in the forms
    the scanner reads (engine.db as stored, an .eml-encoded name, a JSON-escaped kana)."""
    persons = read_rows(run.workspace / "town" / "persons.csv")
    name, kana = persons[0][2], persons[0][3]
    db = b"".join(p.read_bytes() for p in run.workspace.glob("engine.db*"))
    assert scan.pattern.search(db.decode("utf-8", "replace"))
    msg = email.message.EmailMessage()
    msg["Subject"] = name
    msg.set_content(f"本文 {kana}")
    probe = Scan(scan.secrets, scan.pattern, scan.vocabulary)
    probe.text("probe", eml_text(msg.as_bytes()), "probe")
    probe.text("probe-json", json.dumps({"k": kana}), "probe")
    assert {h[0] for h in probe.hits} >= {name, kana} and len(probe.hits) >= 3


def test_coordinator_versions_hold_names_only(run: Run, scan: Scan):
    """docs/threat-model.md: the coordinator's local full version carries names (never e-mailed). It must
    not carry kana, addresses or birth dates — and it is the only file besides engine.db and the
    input extracts with names (the main scan allows names in these files and nothing else)."""
    files = sorted((run.workspace / "agendas").rglob("coordinator.v*.html"))
    assert files
    probe = Scan(scan.secrets, scan.pattern, scan.vocabulary)
    for path in files:
        probe.file(path, run.workspace)
    kinds = {k for secret, _, _ in probe.hits for k in probe.kinds_of(secret)}
    assert "name" in kinds, "the coordinator's version no longer shows names: drop this exemption"
    leaked = [(s, w) for s, w, _ in probe.hits if "name" not in probe.kinds_of(s)]
    assert leaked == []


DV_WORDS = ("配偶者暴力", "DV", "ＤＶ", "安全確保", "連絡先・住所")


@pytest.fixture(scope="module")
def dv_cases(run: Run) -> tuple[list[str], set[str]]:
    """The cases of the demo's DV-locked households (a dv flag or a DV support measure), and the
    addresses that may hear of DV: the DV centre and the coordinator."""
    from engine.config import load_config
    from engine.rules.loader import load_rules

    cfg = load_config(CONFIG, load_rules(RULES))
    conn = connect(run.workspace, readonly=True)
    try:
        locked = [
            c
            for (c,) in conn.execute(
                "SELECT DISTINCT c.case_id FROM cases c WHERE EXISTS (SELECT 1 FROM flags f WHERE f.household_id = c.household_id AND f.rule_id = 'dv') "
                "OR EXISTS (SELECT 1 FROM persons p JOIN records r ON r.person_id = p.person_id WHERE p.household_id = c.household_id AND r.code = 'dv_support_measure')"
            )
        ]
    finally:
        conn.close()
    assert locked
    return locked, {a.email for a in cfg.agencies.values() if a.silo == "DV"} | {cfg.lifecycle.coordinator_email}


def test_no_email_about_a_dv_household_to_another_agency_says_dv(run: Run, dv_cases):
    """A DV-locked household is never detailed in any e-mail (conference.yaml locked_flags,
    locked_codes): an agency other than the DV centre may see its case id, never a word that tells
    it the household is a DV case. Checked on every e-mail of the 60-day span (lead requests after
    a decline, reminders, checkpoints, agendas)."""
    locked, dv_addresses = dv_cases
    told = []
    for path in sorted((run.workspace / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] in dv_addresses:
            continue
        text = eml_text(path.read_bytes())
        for case_id in locked:
            if case_id in text:
                told += [(path.name, case_id, w) for w in DV_WORDS if w in text]
    assert told == [], told


def test_the_scan_covers_e_mails_to_places(run: Run):
    """参加支援: the demo refers members to places (engine/demo/participation.py), so the .eml files
    scanned above include what places receive (referrals, follow-ups): the 0 hits cover them too."""
    from engine.config import load_config
    from engine.rules.loader import load_rules

    places = {p.email for p in load_config(CONFIG, load_rules(RULES)).participation.places.values()}
    to_places = [
        p.name
        for p in sorted((run.workspace / "outbox").glob("*.eml"))
        if email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"] in places
    ]
    assert any(n.startswith("referral_") for n in to_places), to_places
