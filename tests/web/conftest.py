"""Fixtures of the web tests: the app made on a workspace, and a client of it (no real server)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.web.app import create_app
from tests.helpers.paths import ROOT


@pytest.fixture
def app(workspace, conn):
    return create_app(workspace, ROOT / "configs" / "rules", ROOT / "configs")


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1:8300") as c:
        yield c


@pytest.fixture
def coordinator(conn):
    """A coordinator's account (tests.helpers.console: NAME, PASSWORD)."""
    from tests.helpers.console import add_coordinator

    return add_coordinator(conn)


@pytest.fixture
def console(client, coordinator):
    """The client, logged in as the coordinator."""
    from tests.helpers.console import login

    assert login(client).status_code == 303
    return client
