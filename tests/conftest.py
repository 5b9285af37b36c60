from pathlib import Path

import pytest

from engine.db import connect
from engine.rules.loader import load_rules

ROOT = Path(__file__).resolve().parent.parent


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
    from engine.config import load_config

    return load_config(ROOT / "configs", rules)


@pytest.fixture(scope="session")
def cal(cfg):
    from engine.business_days import Calendar

    return Calendar.of(cfg.conference)
