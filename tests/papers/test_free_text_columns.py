"""Columns of the silos' extracts that are free text in practice (found by a security review): a
続柄 cell holding a name, an area cell holding an address. Agencies never read them as they are."""

from __future__ import annotations

import email
import email.policy

from tests.helpers.conference import case_of, cycle
from tests.helpers.town import add_household, elder_and_son, person


def _bodies(workspace) -> dict[str, str]:
    out = {}
    for path in sorted((workspace / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[path.name] = "".join(p.get_content() for p in msg.walk() if p.get_content_maintype() == "text")
    return out


def test_a_relationship_holding_a_name_reaches_no_agency(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HREL",
        person(82, "世帯主（試験 太郎 様方）", ("care_level", "要介護2"), sex="M"),
        person(52, "子", sex="M"),
        area="中央",
    )
    cycle(conn, workspace, rules, cfg)
    assert case_of(conn, "HREL") is not None
    bodies = _bodies(workspace)
    assert bodies and not [n for n, b in bodies.items() if "試験" in b]
    assert any("80代・その他" in b for b in bodies.values())  # the member is still there, as その他


def test_an_area_holding_an_address_reaches_no_agency(conn, workspace, rules, cfg):
    add_household(conn, "HAREA", *elder_and_son(), area="テスト町1-1")  # the household's address
    cycle(conn, workspace, rules, cfg)
    assert case_of(conn, "HAREA") is not None
    bodies = _bodies(workspace)
    assert bodies and not [n for n, b in bodies.items() if "テスト町1-1" in b]
