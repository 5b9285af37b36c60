"""Fixtures of the area view's tests: the hand-made town (tests/region/town.py) in a workspace, and
a configuration whose directory holds the town's places."""

from __future__ import annotations

import pytest

from tests.helpers.matching import config_with
from tests.region.town import PLACES, build


@pytest.fixture
def directory(tmp_path, rules):
    """(config folder, Config) with the town's five places and the test matching rules."""
    return config_with(tmp_path, rules, PLACES)


@pytest.fixture
def town_conn(conn):
    build(conn)
    return conn
