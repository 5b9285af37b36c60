"""A case whose conference decided a plan on 2026-12-04: the lead request goes out with the 08:00
dispatch of Monday 2026-12-07 through the file transport, and its link is read from the .eml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.links.tokens import TOKEN_TEXT
from engine.outbox import FileTransport
from engine.workflows.cycle import dispatch
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, decide, open_cases, plan_text
from tests.helpers.mail import messages

LINK = re.compile(r"http://127\.0\.0\.1:8300/a/(" + TOKEN_TEXT + ")")


def send(conn, cfg, workspace: Path, on=DAY) -> None:
    dispatch(conn, cfg, workspace, on, transport=FileTransport(workspace / "outbox"), force=True)


def token_in(workspace: Path, key: str) -> str:
    """The token of the link in the sent e-mail `key` (its .eml file), as the agency reads it."""
    msg = messages(workspace / "outbox")[key.replace(":", "_") + ".eml"]
    text = msg.get_body(("plain",)).get_content()
    (token,) = set(LINK.findall(text))
    return token


@pytest.fixture
def asked(conn, workspace, rules, cfg):
    """(case id, meeting id, the lead request's id, its token) for a case whose plan asks LEAD to lead."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text())
    (request_id,) = conn.execute(
        "SELECT request_id FROM lead_requests WHERE case_id = ? AND agency_id = ? AND status = 'pending'",
        (case_id, LEAD),
    ).fetchone()
    send(conn, cfg, workspace)
    return case_id, meeting_id, request_id, token_in(workspace, f"lead_request:{request_id}")
