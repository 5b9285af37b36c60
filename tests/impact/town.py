"""A small town for the impact diffs: households in arrears, an 8050 household and one flagged by
nothing; the candidates of issue 16 (arrears threshold 3 → 2 months, one more 社会福祉協議会, commissioned as a
自立相談支援機関, silo 困窮, a member of the 支援会議)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from engine.conference.convene import convene
from engine.config import load_config
from engine.screening.screen import screen
from engine.triage.assessment import answer_assessment
from engine.workflows.cycle import nightly_cycle
from tests.helpers.configs import configs
from tests.helpers.paths import CONFIG_DIR
from tests.helpers.town import ON, add_household, elder_and_son, person

INCOME = ("earned_income", "2000000")  # in work: not a ひきこもり signal
ARREARS_3 = "        record: {code: arrears, min: 3}\n        at_least: 2"
LOWER_TO_2 = ("rules/flags.yaml", ARREARS_3, ARREARS_3.replace("min: 3", "min: 2"))
RAISE_TO_4 = ("rules/flags.yaml", ARREARS_3, ARREARS_3.replace("min: 3", "min: 4"))
SHAKYO = (
    "agencies.yaml",
    "\nagencies:\n",
    "\nagencies:\n  - id: shakyo\n    name: 社会福祉協議会\n    kind: 自立相談支援機関\n    silo: 困窮\n"
    "    areas: [全域]\n    email: shakyo@city.example.lg.jp\n    member: true\n    capacity: 40\n",
)


def arrears_town(conn) -> None:
    """HA3 in arrears 3 and 4 months (flagged today), HA2 two kinds of 2 months (flagged at 2), H8050, HOK."""
    add_household(
        conn, "HA3", person(50, "世帯主", ("arrears", "kokuho:3"), ("arrears", "water:4"), INCOME), area="中央"
    )
    add_household(
        conn, "HA2", person(45, "世帯主", ("arrears", "kokuho:2"), ("arrears", "rent:2"), INCOME), area="北部"
    )
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    add_household(conn, "HOK", person(40, "世帯主", ("earned_income", "5000000")), area="中央")


def screened(conn, workspace, rules, cfg=None) -> None:
    """Screened on ON (and convened when `cfg` is given)."""
    screen(conn, workspace, rules, ON, full=True)
    if cfg is not None:
        convene(conn, rules, cfg, ON)


def closed_by_assessment(conn, workspace, rules) -> str:
    """An elder living alone in 中央, screened on ON under the shipped triage rules: 中央地域包括 assesses
    and resolves it on 1 December. Its case is closed under watch (終結（見守り中）): open, in no meeting."""
    shipped = load_config(CONFIG_DIR, rules)
    add_household(conn, "HELDER", person(80, "世帯主", ("care_level", "要介護1")), area="中央")
    nightly_cycle(conn, workspace, rules, shipped, ON)
    case_id = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HELDER'").fetchone()[0]
    assert answer_assessment(conn, rules, shipped, case_id, "resolved", date(2026, 12, 1), "tester").status == "closed"
    assert conn.execute("SELECT is_open, meeting_id FROM cases WHERE case_id = ?", (case_id,)).fetchone() == (1, None)
    return case_id


def candidate(tmp_path: Path, *edits, triage: bool = False) -> Path:
    """A copy of the shipped configs/ with edits; without its triage rules unless `triage` (every
    new case then goes to a conference, where the lead and the participants these tests compare are decided)."""
    return configs(tmp_path, *edits, under="candidate", delete=() if triage else ("triage_rules.yaml",))


def fingerprint(workspace: Path) -> tuple:
    """The workspace's files and the database's bytes. A reader of a WAL database leaves its
    -wal and -shm files behind (SQLite's own): the -wal must stay empty."""
    files = sorted(p.name for p in workspace.iterdir() if not p.name.endswith(("-wal", "-shm")))
    wal = workspace / "engine.db-wal"
    written = wal.stat().st_size if wal.exists() else 0
    return files, written, hashlib.sha256((workspace / "engine.db").read_bytes()).hexdigest()
