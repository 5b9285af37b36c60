"""The console's /areas (地域の状況) and its downloads: login required, the figures of the hand-made
town (tests/region/town.py) in tables, two inline SVG charts, and an area named with markup escaped."""

from __future__ import annotations

import io

import openpyxl
import pytest
from fastapi.testclient import TestClient

from engine.region.charts import bar_chart
from engine.web.app import create_app
from tests.helpers.console import add_coordinator, login
from tests.helpers.paths import RULES_DIR
from tests.region.town import build

HOSTILE = '<script>alert(1)</script>"><b>'


@pytest.fixture
def client(workspace, conn, directory):
    add_coordinator(conn)
    with TestClient(create_app(workspace, RULES_DIR, directory[0]), base_url="http://127.0.0.1:8300") as c:
        yield c


def test_the_page_and_downloads_need_a_login(client, conn):
    build(conn)
    for path in ("/areas", "/areas.csv", "/areas.xlsx"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_the_page_shows_the_figures_and_charts(client, conn):
    """On the pinned day 2026-11-27 with months=2: 中央 2026-10 has 3 flagged households of 4 (750.0
    per 1,000), median 6.5; 北部 2026-11 has 500.0; the first candidate is 北部's 介護する家族の休息・交流."""
    build(conn)
    login(client, next="/areas")
    html = client.get("/areas", params={"months": 2}).text
    assert "地域の状況" in html and 'aria-current="page">地域の状況' in html
    assert html.count("<svg") == 2 and "フラグのある世帯（1,000世帯あたり、2026-11）" in html
    assert "<script" not in html
    assert "<td>2026-10</td><td>3</td><td>750.0</td><td>3</td><td>2</td><td>6.5</td>" in html
    assert "<td>2026-11</td><td>1</td><td>500.0</td><td>1</td><td>1</td><td>3.0</td>" in html
    assert "<td>1</td><td>北部</td><td>介護する家族の休息・交流</td><td>3</td>" in html
    assert 'href="/areas.csv?months=2"' in html and 'href="/areas.xlsx?months=2"' in html
    assert "C1" not in html and "試験 太郎" not in html


def test_downloads_are_attachments_with_the_same_figures(client, conn):
    build(conn)
    login(client)
    r = client.get("/areas.csv", params={"months": 2})
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="areas-2026-11-27.csv"'
    assert "中央,2026-10,4,3,750.0,3,2,6.5" in r.content.decode("utf-8-sig")
    r = client.get("/areas.xlsx", params={"months": 2})
    assert r.headers["content-disposition"] == 'attachment; filename="areas-2026-11-27.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(r.content))["資源開発の候補"]
    assert [c.value for c in sheet[2]][:4] == [1, "北部", "介護する家族の休息・交流", 3]


def test_an_area_named_with_markup_is_escaped(client, conn):
    """The SVG chart and the tables show the name as text: no tag from the data reaches the page."""
    build(conn, central=HOSTILE)
    login(client)
    html = client.get("/areas", params={"months": 2}).text
    assert "<script" not in html and "<b>" not in html
    chart = html[html.index("<svg") : html.index("</svg>")]
    assert (
        '<text x="134" y="46" text-anchor="end">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;b&gt;</text>'
        in chart
    )
    assert "<h2>&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;b&gt;（4 世帯）</h2>" in html  # the tables (Jinja)
    svg = bar_chart("題", [(HOSTILE, 2.0), ("北部", None)])
    assert "<script" not in svg and "&lt;script&gt;" in svg and "—" in svg


def test_a_workspace_without_households_says_so(client):
    login(client)
    html = client.get("/areas").text
    assert "世帯のデータがありません" in html and "<svg" not in html
