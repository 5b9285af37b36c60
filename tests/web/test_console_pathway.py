"""The console's case page shows the triage pathway (振り分け): which one, since when, the agency
that has the case and why, for an assessed case and a watched one."""

from __future__ import annotations

import html as htmllib
import re

from tests.helpers.conference import cycle
from tests.helpers.town import add_household, person


def text_of(page: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_case_page_explains_the_pathway(console, conn, workspace, rules, cfg):
    add_household(conn, "HE", person(80, "世帯主", ("care_level", "要介護1")), area="中央")
    add_household(
        conn,
        "HW",
        person(45, "世帯主", ("earned_income", "3000000"), ("arrears", "kokuho:4"), ("arrears", "water:4")),
        area="中央",
    )
    cycle(conn, workspace, rules, cfg)
    assessed, watched = (
        conn.execute("SELECT case_id FROM cases WHERE household_id = ?", (h,)).fetchone()[0] for h in ("HE", "HW")
    )
    page = text_of(console.get(f"/cases/{assessed}").text)
    assert "振り分け" in page and "一機関によるアセスメント（訪問・アウトリーチ）（令和8年11月27日（金））" in page
    assert "担当: 中央地域包括支援センター" in page and "振り分け規則 elder_alone" in page
    assert "アセスメント中（一機関が訪問・確認）" in page
    page = text_of(console.get(f"/cases/{watched}").text)
    assert "経過観察（期日に再確認）" in page and "振り分け規則 arrears_only" in page and "担当:" not in page
