"""Per case on an agency's agenda: what the conference decided before and how each role went (a
case back for review, or reopened), and what the agency should prepare for the meeting.

The decision, the roles and the watch answers are read from outcomes, case_actions and checkpoints
of the case and of the case it was reopened from; only labels reach the page (安定, 期限超過, …),
never the codes, and agencies by name.
"""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from engine.casework.outcome_file import DECISION_LABELS
from engine.config import Config
from engine.policy.dv import DV_CENTRE_SILO
from engine.store.lifecycle import CHECKPOINT_LABELS
from engine.support.dates import wareki_with_weekday
from engine.support.vocabulary import ACTION_STATE_LABELS, WATCH_RESULT_LABELS


class Role(BaseModel):
    agency_name: str
    action: str
    due: str  # 和暦（曜日）
    state: str  # 完了・期限超過・実施中


class Review(BaseModel):
    decided: str  # 令和8年10月2日（金）の会議: 支援方針・役割分担
    lead_name: str
    roles: list[Role]
    watch: list[str]  # 終結後の見守り（令和8年…）: 安定


def _lineage(conn: sqlite3.Connection, case_id: str) -> list[str]:
    """The case and the cases it was reopened from (a new case linked to an archived one)."""
    ids, current = [], case_id
    while current and current not in ids and len(ids) < 20:
        ids.append(current)
        row = conn.execute("SELECT previous_case_id FROM cases WHERE case_id = ?", (current,)).fetchone()
        current = row[0] if row else None
    return ids


def review(
    conn: sqlite3.Connection,
    config: Config,
    case_id: str,
    on_iso: str,
    *,
    agencies: set[str] | None = None,
    consent_based_only: bool = False,
) -> Review | None:
    """None for a case the conference has not decided yet. `agencies`: only the roles of these (the
    agencies of the case at a 重層的支援会議: one invited for a person who did not consent must not be
    named, its name alone tells which silo knows the household). `consent_based_only`: only what
    重層的支援会議 decided (for an agency that is not a 支援会議 member: what a 支援会議 decided is
    shared among its members alone, 法第106条の6)."""
    ids = _lineage(conn, case_id)
    marks = ",".join("?" * len(ids))
    kind = " AND m.conference_type = 'multi'" if consent_based_only else ""
    last = conn.execute(
        f"SELECT o.decided_on, o.decision, o.lead_agency_id FROM outcomes o JOIN meetings m ON m.meeting_id = o.meeting_id "
        f"WHERE o.case_id IN ({marks}){kind} ORDER BY o.decided_on DESC, o.recorded_on DESC LIMIT 1",
        ids,
    ).fetchone()
    if last is None:
        return None
    roles = [
        Role(
            agency_name=_name(config, agency_id),
            action=action,
            due=wareki_with_weekday(due_on),
            state=ACTION_STATE_LABELS["done" if status == "done" else "overdue" if due_on < on_iso else "open"],
        )
        for agency_id, action, due_on, status in conn.execute(
            f"SELECT a.agency_id, a.action, a.due_on, a.status FROM case_actions a JOIN meetings m ON m.meeting_id = a.meeting_id "
            f"WHERE a.case_id IN ({marks}) AND a.status != 'cancelled'{kind} ORDER BY a.due_on, a.action_id",
            ids,
        )
        if agencies is None or agency_id in agencies
    ]
    watch = [  # the watch after a closure a conference decided: not for a non-member (consent_based_only)
        f"{CHECKPOINT_LABELS.get(kind, '見守り')}（{wareki_with_weekday(due_on)}）: {WATCH_RESULT_LABELS[result]}"
        for kind, due_on, result in (
            []
            if consent_based_only
            else conn.execute(
                f"SELECT kind, due_on, result FROM checkpoints WHERE case_id IN ({marks}) AND result IS NOT NULL "
                "ORDER BY due_on, checkpoint_id",
                ids,
            )
        )
        if result in WATCH_RESULT_LABELS
    ]
    return Review(
        decided=f"{wareki_with_weekday(last[0])}の会議: {DECISION_LABELS.get(last[1], '決定')}",
        lead_name=_name(config, last[2]) if last[2] and (agencies is None or last[2] in agencies) else "",
        roles=roles,
        watch=watch,
    )


def reviews(
    conn: sqlite3.Connection, config: Config, case_id: str, on_iso: str, kind: str, roster: set[str]
) -> dict[bool, Review | None]:
    """これまでの経過 for a member agency (True) and for one that is not (False). At a 重層的支援会議
    only the roles of the agencies invited to the case now are shown (an agency invited for a person
    who did not consent is not named), and to a non-member only what 重層的支援会議 decided."""
    if kind != "multi":
        return {True: review(conn, config, case_id, on_iso)}  # a 支援会議: members only
    return {
        True: review(conn, config, case_id, on_iso, agencies=roster),
        False: review(conn, config, case_id, on_iso, agencies=roster, consent_based_only=True),
    }


UNNAMED = "会議の場でお伝えします"  # in place of an agency whose name says DV, to any other agency


def without_dv_centre(
    config: Config, recipient_silo: str, lead_name: str, previous: Review | None
) -> tuple[str, Review | None]:
    """The proposed lead's name and これまでの経過 as an agency reads them: the DV centre (its name says
    DV) is named to itself only — also after a lock has ended, when a case relinked to a case it led
    comes back (no DV detail by e-mail, ../shared/domain.md). Its roles are left out, and its name as a
    lead reads 「会議の場でお伝えします」."""
    if recipient_silo == DV_CENTRE_SILO:
        return lead_name, previous
    names = {a.name for a in config.agencies.values() if a.silo == DV_CENTRE_SILO}
    if previous is not None and (previous.lead_name in names or any(r.agency_name in names for r in previous.roles)):
        previous = previous.model_copy(
            update={
                "lead_name": UNNAMED if previous.lead_name in names else previous.lead_name,
                "roles": [r for r in previous.roles if r.agency_name not in names],
            }
        )
    return (UNNAMED if lead_name in names else lead_name), previous


def _name(config: Config, agency_id: str) -> str:
    agency = config.agencies.get(agency_id)
    return agency.name if agency else "（登録から削除された機関）"


PREPARE_BY_POINT = {
    "主担当機関の決定": None,  # the lead's own line below
    "役割分担": "貴機関で担える役割（訪問・相談・サービス調整など）のご検討",
    "本人同意の取得方針": "ご本人・ご家族との接触の状況と、情報共有への同意の見込み",
    "支援プラン（案）の確認": "支援プラン（案）のうち貴機関が担う部分のご確認",
}


def preparation(
    role: str, fact_titles: list[str], points: list[str], lead_name: str, previous: Review | None
) -> list[str]:
    """What the agency should bring, from its role, its silo's records and the points to discuss."""
    out = []
    if role == "lead":
        out.append(f"主担当機関をお引き受けいただけるかのご検討（主担当機関の案: {lead_name}）")
    if fact_titles:
        out.append(f"貴機関の記録（{'、'.join(dict.fromkeys(fact_titles))}）の現在の状況のご確認")
    else:
        out.append("この世帯について貴機関で把握している状況があれば、その概要")
    if previous and previous.roles:
        out.append("前回の会議で決めた役割の進み具合（期限を過ぎたものは、その理由と見通し）")
    for p in points:
        text = PREPARE_BY_POINT.get(p, f"「{p}」についてのご意見")
        if text and text not in out:
            out.append(text)
    return out
