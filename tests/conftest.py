import os
from datetime import datetime
from pathlib import Path

import pytest

from engine.rules.loader import load_rules
from engine.store.db import connect
from engine.support import clock

ROOT = Path(__file__).resolve().parent.parent

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
    return load_rules(ROOT / "configs" / "rules")


@pytest.fixture(scope="session")
def cfg(rules):
    """The example municipality's configuration (configs/)."""
    from engine.config.files import load_config

    return load_config(ROOT / "configs", rules)


@pytest.fixture(scope="session")
def cal(cfg):
    from engine.support.business_days import Calendar

    return Calendar.of(cfg.conference)
