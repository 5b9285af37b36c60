"""The console's meeting pages (engine/web/console/meetings.py): the meetings with their cases, and
every agenda version as each agency received it; the coordinator's own version apart."""

from __future__ import annotations

import json

import pytest

from engine.web.session import User, require_coordinator
from tests.helpers.casework import DAY

COORDINATOR = User(name="tanaka", role="coordinator", session_scope="session:test")


@pytest.fixture
def console(app, client):
    app.dependency_overrides[require_coordinator] = lambda: COORDINATOR
    yield client
    app.dependency_overrides.clear()


def test_the_meetings_list_shows_each_meeting_in_japanese_with_its_cases(convened, console):
    page = console.get("/meetings")
    assert page.status_code == 200
    assert "今後の会議" in page.text and "開催済みの会議" in page.text
    assert f'href="/meetings/{convened.meeting}"' in page.text
    assert "令和8年12月4日（金）" in page.text  # 和暦 with the weekday
    assert "支援会議" in page.text and "3 件" in page.text
    assert "開催前" in page.text  # no outcome owed before it is held


def test_a_held_meeting_with_outcomes_missing_says_so(convened, console):
    from engine.support import clock
    from tests.helpers.casework import morning

    with clock.pinned(morning(DAY.isoformat())):
        page = console.get("/meetings")
        assert "未記録 3 件" in page.text
        one = console.get(f"/meetings/{convened.meeting}")
    assert f'/meetings/{convened.meeting}/cases/{convened.case}/outcome"' in one.text
    assert one.text.count("結果を記録する") == 3


def test_a_meeting_lists_its_cases_agencies_and_every_agenda_version(convened, console, cfg):
    page = console.get(f"/meetings/{convened.meeting}")
    assert page.status_code == 200
    for case_id in convened.cases:
        assert f'href="/cases/{case_id}"' in page.text
    assert cfg.agencies["houkatsu_chuo"].name in page.text  # names, not ids
    assert "開催後に記録できます" in page.text  # 2026-12-04 is after today (2026-11-27)
    versions = convened.conn.execute(
        "SELECT agency_id, version FROM agendas WHERE meeting_id = ? AND agency_id != 'coordinator'",
        (convened.meeting,),
    ).fetchall()
    assert versions
    for agency_id, version in versions:
        link = f"/meetings/{convened.meeting}/agendas/{agency_id}/v{version}"
        assert f'href="{link}"' in page.text
        agenda = console.get(link)
        sent = json.loads(
            convened.conn.execute(
                "SELECT parts FROM outbox WHERE message_key = ?",
                (f"agenda:{convened.meeting}:{agency_id}:v{version}",),
            ).fetchone()[0]
        )["text"]
        assert agenda.status_code == 200
        assert _unescaped(agenda.text.split("<pre>")[1].split("</pre>")[0]) == sent  # as the agency received it
    assert f"/meetings/{convened.meeting}/agendas/coordinator/v1" in page.text
    mine = console.get(f"/meetings/{convened.meeting}/agendas/coordinator/v1")
    assert mine.status_code == 200 and "Content-Security-Policy" in mine.headers


def test_unknown_meetings_and_versions_are_404(convened, console):
    assert console.get("/meetings/M-20991231-0000-S").status_code == 404
    assert console.get(f"/meetings/{convened.meeting}/agendas/houkatsu_chuo/v99").status_code == 404
    assert console.get(f"/meetings/{convened.meeting}/agendas/..%2f..%2fdb/v1").status_code == 404


def test_the_meeting_pages_need_a_login(convened, client):
    r = client.get("/meetings", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = client.get(f"/meetings/{convened.meeting}/agendas/coordinator/v1", follow_redirects=False)
    assert r.status_code == 303


def _unescaped(html: str) -> str:
    import html as h

    return h.unescape(html)
