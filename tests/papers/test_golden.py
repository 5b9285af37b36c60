"""Golden files: the 招集通知 (text) and the invitation (.ics) an agency receives, rendered from a fixed
scenario on the pinned clock (2026-11-27 09:00 JST), compared byte for byte with
tests/papers/golden/. A person reads them there as the agency would.

- 支援会議 (an 8050 household without consent), to its proposed lead;
- 重層的支援会議 (a household whose members consented), to its proposed lead;
- the DV centre's agenda, where its one case is only counted;
- a case back for review (a plan decided, one role done, one overdue), after a watch answer of concern;
- a second version, after the meeting moved, with its summary of changes (test_changes.py: the other changes).

No silo (routing) conference has agendas: the owner of a silo conference gets a notice (notices).

To regenerate after an intended change: `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/papers/test_golden.py`,
then read the diff of tests/papers/golden/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.casework.handshake import action_done
from tests.helpers.casework import LEAD, actions, add_arrears, d, open_cases, plan
from tests.helpers.conference import case_of, cycle
from tests.helpers.town import add_household, elder_and_son

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def compare(name: str, path: Path) -> None:
    got = path.read_bytes()
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(got)
    assert golden.is_file(), f"{golden} missing: run with UPDATE_GOLDEN=1 to make it"
    assert got.decode("utf-8") == golden.read_bytes().decode("utf-8"), f"{name} differs from its golden file"


def newest(workspace: Path, meeting: str, agency: str, ext: str) -> Path:
    files = sorted(
        (workspace / "agendas" / meeting).glob(f"{agency}.v*.{ext}"), key=lambda p: int(p.stem.split(".v")[1])
    )
    return files[-1]


def test_support_multi_and_dv_agendas(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    support, multi = case_of(town, "H8050"), case_of(town, "HAGREED")
    dv = case_of(town, "HDV")
    for name, case, agency in (
        ("support", support, "houkatsu_chuo"),
        ("multi", multi, "houkatsu_kita"),
    ):
        for ext in ("txt", "ics"):
            compare(f"{name}.{agency}.{ext}", newest(workspace, case["meeting"], agency, ext))
    dv_agency = town.execute(
        "SELECT agency_id FROM case_agencies WHERE case_id = ? AND agency_id LIKE 'dv%'", (dv["case_id"],)
    ).fetchone()[0]
    compare(f"dv-only.{dv_agency}.txt", newest(workspace, dv["meeting"], dv_agency, "txt"))


def test_a_new_version_says_what_changed(conn, workspace, rules, cfg):
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    cycle(conn, workspace, rules, cfg)  # version 1 sent
    meeting = case_of(conn, "H8050")["meeting"]
    conn.execute(
        "UPDATE meetings SET place = '市役所 本庁舎 5階 502会議室', start_time = '15:00' WHERE meeting_id = ?",
        (meeting,),
    )
    conn.commit()
    cycle(conn, workspace, rules, cfg, d("2026-11-30"))
    path = newest(workspace, meeting, "houkatsu_chuo", "txt")
    assert path.name == "houkatsu_chuo.v2.txt"
    compare("new-version.houkatsu_chuo.txt", path)
    compare("new-version.houkatsu_chuo.ics", newest(workspace, meeting, "houkatsu_chuo", "ics"))


def test_a_case_back_for_review(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    roles = (
        (LEAD, "介護サービスの利用調整", "2026-12-18"),
        ("jiritsu_soudan", "息子の就労に向けた相談", "2027-01-15"),
        (LEAD, "家族会の紹介", "2027-03-31"),
    )
    plan(conn, workspace, rules, cfg, cid, mid, roles=roles)
    action_done(conn, cfg, actions(conn, cid)[0], d("2026-12-15"), "tester")
    add_arrears(conn, "H1", 1, "2027-01-20")  # new flags: the active case is decided again
    cycle(conn, workspace, rules, cfg, d("2027-01-20"))
    meeting = case_of(conn, "H1")["meeting"]
    assert meeting != mid
    compare("review.houkatsu_chuo.txt", newest(workspace, meeting, "houkatsu_chuo", "txt"))


@pytest.mark.skipif(UPDATE, reason="regenerating")
def test_every_golden_file_is_compared():
    made = {p.name for p in GOLDEN.iterdir() if p.is_file()}  # notices/ holds the notices' own
    assert len(made) == 8, sorted(made)
