"""/areas (地域の状況): the area view of 地域づくり (engine/region, docs/community.md) — per area and
month, flagged households per 1,000 by pattern, cases and the wait to the first conference, needs
without a place and declines, places and free capacity, the ranked 資源開発の候補, two server-rendered
SVG charts comparing the areas; /areas.csv and /areas.xlsx download the same tables. Up to the
workspace's today; `months` (1–120) sets the window. Read only; households are counted, never named."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from engine.region.candidates import top_per_area
from engine.region.charts import flagged_chart, unmet_chart
from engine.region.figures import DEFAULT_MONTHS, totals
from engine.region.view import AreaView, area_view, csv_of, write_xlsx_file
from engine.store.chronology import workspace_today
from engine.support.vocabulary import DECLINE_REASON_LABELS
from engine.web.app import Ctx, Db, WebContext
from engine.web.session import Coordinator, User, page

router = APIRouter()
MONTHS = Query(DEFAULT_MONTHS, ge=1, le=120)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _view(conn: sqlite3.Connection, ctx: WebContext, months: int) -> AreaView:
    return area_view(conn, ctx.config, ctx.rules, workspace_today(conn), months)


def _attachment(view: AreaView, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="areas-{view.figures.on.isoformat()}.{ext}"'}


@router.get("/areas")
def areas_page(
    request: Request,
    months: int = MONTHS,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
) -> Response:
    view = _view(conn, ctx, months)
    f = view.figures
    return page(
        request,
        user,
        "console/areas.html.j2",
        view=view,
        f=f,
        months=months,
        last=f.months[-1].key if f.months else "",
        totals={a: totals(f, a) for a in f.areas},
        top=top_per_area(view.candidates),
        reasons=DECLINE_REASON_LABELS,
        charts=[flagged_chart(f), unmet_chart(f)] if f.areas else [],
    )


@router.get("/areas.csv")
def areas_csv(
    months: int = MONTHS, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db
) -> Response:
    view = _view(conn, ctx, months)
    return Response(
        ("\ufeff" + csv_of(view)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(view, "csv"),
    )


@router.get("/areas.xlsx")
def areas_xlsx(
    months: int = MONTHS, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db
) -> Response:
    view = _view(conn, ctx, months)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_xlsx_file(Path(tmp) / "areas.xlsx", view).read_bytes()
    return Response(data, media_type=XLSX, headers=_attachment(view, "xlsx"))
