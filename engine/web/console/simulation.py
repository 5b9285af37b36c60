"""/simulation (模擬運用の結果): the figures of the last `engine simulate` run in this workspace
(sim/year.json, engine/demo/year.py) against their goals — the no-gap promise measured. Read only;
the file is the engine's own (a fixed path in the workspace, never one named by the request)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.casework.audit import KINDS
from engine.demo.year import goals_met
from engine.web.app import Ctx, WebContext
from engine.web.session import Coordinator, User, page

router = APIRouter()


@router.get("/simulation")
def simulation_page(request: Request, user: User = Coordinator, ctx: WebContext = Ctx) -> Response:
    path = ctx.workspace / "sim" / "year.json"
    figures = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return page(
        request,
        user,
        "console/simulation.html.j2",
        f=figures,
        goals=goals_met(figures) if figures else [],
        kinds=KINDS,  # the audit's kinds by their Japanese labels
        active="simulation",
    )
