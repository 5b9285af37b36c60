"""The national figures (国への報告・実施計画の指標): one registry entry per figure, each counted for a
period (a month, or a 年度 April–March) as the number of distinct rows its query returns, so that
the same query is the figure's trace (`engine report --trace ID`): the ids that make it up.

Pseudonymous: the rows are case, meeting, place, checkpoint and person ids, never a name.
Every figure's definition is also in docs/report.md (a test keeps the two together).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from engine.participation.directory import Place

Row = tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """An inclusive span of days: a month or a fiscal year (年度)."""

    start: date
    end: date
    label: str  # 令和9年3月分 | 令和8年度
    kind: str  # month | year

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1


@dataclass(frozen=True)
class Context:
    """What a figure is counted from: the workspace, the directory's places and the categories the
    report counts as 地域づくりの拠点."""

    conn: sqlite3.Connection
    places: dict[str, Place] = field(default_factory=dict)
    hub_categories: tuple[str, ...] = ()


Query = str | Callable[[Context, Period], list[Row]]


@dataclass(frozen=True)
class Figure:
    id: str
    label: str  # the default label (a reporting form may rename it: report.yaml)
    unit: str  # 件 | 回 | 人 | か所
    columns: tuple[str, ...]  # the trace's columns (ids only)
    definition: str  # Japanese, as docs/report.md states it
    query: Query  # SQL with :start and :end (ISO days, inclusive), or a function

    def rows(self, ctx: Context, period: Period) -> list[Row]:
        """The distinct rows that make up the figure, sorted: its trace; the count is their number."""
        if callable(self.query):
            found = self.query(ctx, period)
        else:
            found = ctx.conn.execute(self.query, {"start": period.start.isoformat(), "end": period.end.isoformat()})
        return sorted({tuple("" if v is None else str(v) for v in r) for r in found})


def _meetings_held(conference_type: str) -> str:
    return (
        "SELECT m.meeting_id FROM meetings m WHERE m.conference_type = '" + conference_type + "' "
        "AND m.held_on BETWEEN :start AND :end "
        "AND EXISTS (SELECT 1 FROM outcomes o WHERE o.meeting_id = m.meeting_id)"
    )


# a referral the place took (ended is reached only from accepted or attending)
MATCHED_STATES = "('accepted', 'attending', 'ended')"


def _listed_places(ctx: Context, period: Period) -> list[Row]:
    return [(p.id,) for p in ctx.places.values() if p.status == "active"]


def _hubs(ctx: Context, period: Period) -> list[Row]:
    return [(p.id,) for p in ctx.places.values() if p.status == "active" and p.category in ctx.hub_categories]


def _hub_participants(ctx: Context, period: Period) -> list[Row]:
    hubs = [p.id for p in ctx.places.values() if p.category in ctx.hub_categories]
    if not hubs:
        return []
    marks = ",".join("?" * len(hubs))
    return ctx.conn.execute(
        f"SELECT person_id, MIN(case_id) FROM referrals WHERE place_id IN ({marks}) "
        f"AND status IN {MATCHED_STATES} AND answered_on <= ? AND (closed_on IS NULL OR closed_on >= ?) "
        "GROUP BY person_id",
        (*hubs, period.end.isoformat(), period.start.isoformat()),
    ).fetchall()


FIGURES: tuple[Figure, ...] = (
    Figure(
        "new_cases",
        "新規相談・事案の件数",
        "件",
        ("事案",),
        "期間中に開始した事案（cases.opened_on が期間内）。スクリーニングで検知した世帯も、"
        "見守りを終えた世帯のつなぎ直しで新たに開始した事案も含む。開いていた事案の再開（もどし）は含まない。",
        "SELECT case_id FROM cases WHERE opened_on BETWEEN :start AND :end",
    ),
    Figure(
        "support_meetings",
        "支援会議の開催回数",
        "回",
        ("会議",),
        "期間中に開催した支援会議（社会福祉法第106条の6）のうち、少なくとも1件の事案の結果（outcomes）を"
        "記録した会議の数。予約だけで結果の記録がない会議は数えない。",
        _meetings_held("support"),
    ),
    Figure(
        "multi_meetings",
        "重層的支援会議の開催回数",
        "回",
        ("会議",),
        "期間中に開催した重層的支援会議のうち、少なくとも1件の事案の結果（outcomes）を記録した会議の数。",
        _meetings_held("multi"),
    ),
    Figure(
        "cases_discussed",
        "支援会議・重層的支援会議で検討した事案数",
        "件",
        ("事案",),
        "期間中に開催した支援会議・重層的支援会議で結果を記録した事案の数（同じ事案を期間中に複数回検討しても1件）。"
        "年度の値は月の値の合計より小さいことがある。",
        "SELECT o.case_id FROM outcomes o JOIN meetings m ON m.meeting_id = o.meeting_id "
        "WHERE m.held_on BETWEEN :start AND :end",
    ),
    Figure(
        "plans",
        "プラン（支援方針）作成件数",
        "件",
        ("事案", "会議"),
        "期間中に開催した会議で「プラン（支援方針・役割分担）」（decision = plan）を決めた結果の数。"
        "同じ事案のプランを評価の会議で作り直した場合は、その都度1件と数える。",
        "SELECT o.case_id, o.meeting_id FROM outcomes o JOIN meetings m ON m.meeting_id = o.meeting_id "
        "WHERE o.decision = 'plan' AND m.held_on BETWEEN :start AND :end",
    ),
    Figure(
        "participation_persons",
        "参加支援の支援対象者数",
        "人",
        ("世帯員", "事案"),
        "期間中に参加支援の紹介（referrals.requested_on が期間内）を受けた人の数（同じ人は1人）。"
        "取り消した紹介（cancelled）だけの人は数えない。",
        "SELECT person_id, MIN(case_id) FROM referrals WHERE requested_on BETWEEN :start AND :end "
        "AND status != 'cancelled' GROUP BY person_id",
    ),
    Figure(
        "cooperating_places",
        "協力事業者（受入れ先）数",
        "か所",
        ("場所",),
        "期間中に参加支援の紹介を受け入れた（受入れ決定の回答日 answered_on が期間内で、状態が受入れ決定・"
        "参加中・終了）場所の数。名簿に載っているだけの場所は数えない（listed_places を参照）。",
        "SELECT DISTINCT place_id FROM referrals WHERE answered_on BETWEEN :start AND :end "
        f"AND status IN {MATCHED_STATES}",
    ),
    Figure(
        "listed_places",
        "参加支援の受入れ先（登録）数",
        "か所",
        ("場所",),
        "resources.yaml に登録され、状態が active の場所の数（報告時点の名簿。期間によらない）。",
        _listed_places,
    ),
    Figure(
        "community_hubs",
        "地域づくりの拠点数",
        "か所",
        ("場所",),
        "resources.yaml の場所のうち、report.yaml の community_categories（例: 居場所、サロン・通いの場）の"
        "区分で、状態が active のものの数（報告時点の名簿。期間によらない）。",
        _hubs,
    ),
    Figure(
        "community_participants",
        "地域づくりの拠点の参加者数",
        "人",
        ("世帯員", "事案"),
        "地域づくりの拠点（community_hubs の区分の場所）へ紹介され、受け入れられて期間中に参加していた人の数"
        "（受入れ決定が期間の末日以前で、終了が期間の初日以後またはまだ終了していない）。"
        "エンジンが紹介した人だけを数え、拠点に自分で通う人は含まない。",
        _hub_participants,
    ),
    Figure(
        "outreach",
        "アウトリーチ件数",
        "件",
        ("事案", "確認"),
        "振り分け（engine/triage）でアセスメント（訪問・確認）を一機関に依頼した件数（checkpoints の kind = "
        "assessment で、依頼日 asked_on が期間内）。連絡がつかず再依頼した場合は、その都度1件と数える。",
        "SELECT case_id, CAST(checkpoint_id AS TEXT) FROM checkpoints "
        "WHERE kind = 'assessment' AND asked_on BETWEEN :start AND :end",
    ),
    Figure(
        "relinks",
        "もどし（再開・つなぎ直し）件数",
        "件",
        ("事案", "記録"),
        "期間中に、終結・中断した事案を再開した件数（状態 reopened への遷移）と、見守りを終えた世帯の新たな事案を"
        "前の事案につなぎ直した件数（監査ログの relinked）の合計。",
        "SELECT case_id, CAST(seq AS TEXT) FROM audit_log WHERE on_day BETWEEN :start AND :end "
        "AND ((event = 'transition' AND to_status = 'reopened') OR event = 'relinked')",
    ),
)
BY_ID: dict[str, Figure] = {f.id: f for f in FIGURES}
