"""The coordinator's console: login (login.py), Today (today.py), the cases and a case (cases.py),
参加支援 on a case (participation.py),
変更の影響 (changes.py).
Every page but the login needs a session (engine/web/session.py)."""

from __future__ import annotations

from fastapi import APIRouter

from engine.web.console import (
    areas,
    backlog,
    cases,
    changes,
    corrections,
    login,
    meetings,
    outcome,
    participation,
    simulation,
    today,
)

router = APIRouter()
for part in (login, today, cases, meetings, outcome, corrections, participation, changes, backlog, areas, simulation):
    router.include_router(part.router)
