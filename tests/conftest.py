import os
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller

from engine.rules.loader import load_rules
from engine.store.db import connect
from engine.support import clock
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import MEETING_DAY, Town
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.served import free_port
from tests.helpers.smtp import Sink
from tests.helpers.town import ON, add_household, elder_and_son, person

# The suite runs on a pinned clock, whatever the machine's date: Friday 2026-11-27, 09:00 in
# Japan, the night the fixtures' towns are screened. Subprocesses (the CLI, `engine serve`, the
# crash trials) inherit it through ENGINE_NOW. A test that needs another instant uses
# clock.pinned(...).
PINNED = datetime(2026, 11, 27, 9, 0, tzinfo=clock.TOKYO)


def pytest_configure(config):
    os.environ[clock.ENV] = PINNED.isoformat()
    clock.pin(PINNED)


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    """Every test starts at PINNED, also when an earlier one moved the clock."""
    monkeypatch.setenv(clock.ENV, PINNED.isoformat())
    clock.pin(PINNED)
    yield PINNED
    clock.pin(PINNED)


@pytest.fixture
def workspace(tmp_path):
    return tmp_path / "workspace"


@pytest.fixture
def conn(workspace):
    c = connect(workspace)
    yield c
    c.close()


@pytest.fixture(scope="session")
def rules():
    return load_rules(RULES_DIR)


@pytest.fixture(scope="session")
def cfg(rules):
    """The example municipality's configuration (configs/)."""
    from engine.config import load_config

    return load_config(CONFIG_DIR, rules)


@pytest.fixture(scope="session")
def cal(cfg):
    from engine.support.business_days import Calendar

    return Calendar.of(cfg.conference)


@pytest.fixture
def town(conn):
    """Five households, none screened yet: an 8050 household in 中央 without consent (H8050) and one
    in 北部 with everyone's consent (HAGREED), a DV household (HDV), a household known to 要対協
    (HYOTAI) and one flagged by nothing (HOK)."""
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    add_household(
        conn,
        "HYOTAI",
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )
    add_household(conn, "HOK", person(45, "世帯主", ("earned_income", "5000000")), area="中央")
    return conn


@pytest.fixture
def convened(conn, workspace, rules, cfg, tmp_path):
    """Three 8050 households in 中央, each with a case convened to the 支援会議 of 2026-12-04."""
    for hid in ("H1", "H2", "H3"):
        add_household(conn, hid, *elder_and_son(), area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    rows = conn.execute(
        "SELECT c.case_id, c.status, c.meeting_id, m.held_on, c.lead_agency_id, c.conference_type FROM cases c "
        "JOIN meetings m ON m.meeting_id = c.meeting_id ORDER BY c.household_id"
    ).fetchall()
    assert [r[1] for r in rows] == ["convened"] * 3
    assert {(r[2], r[3], r[4], r[5]) for r in rows} == {
        (rows[0][2], MEETING_DAY.isoformat(), "houkatsu_chuo", "support")
    }
    return Town(conn, workspace, tmp_path, rules, cfg, [r[0] for r in rows], rows[0][2])


@pytest.fixture
def sink():
    """A real SMTP server on loopback accepting everything: (its handler, its port)."""
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()
