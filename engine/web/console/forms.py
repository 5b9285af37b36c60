"""What the console's record forms share: the day a form gives, and the engine's problems told in
Japanese beside the field they are about.

The checks themselves are the engine's (the outcome file's, engine/store/chronology.py's date
policy, the personal-data guard): a form calls the same plain functions as the CLI and only puts
their refusal into words. A message without a Japanese wording here is shown as the engine says it.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date

from fastapi import Request
from fastapi.responses import RedirectResponse

from engine.store.chronology import Dating, horizon
from engine.support.dates import DateError, parse_date

MEMBERS_ONLY = "本人の同意なしには伝えられません（構成員の機関を選ぶか、同意を得て重層的支援会議で決めてください）。"
PERSONAL = (
    "世帯の個人情報（氏名、かな、住所、生年月日）が含まれています。"
    "本人、世帯員、長男などと書き換えてください（この文章は関係機関に送られることがあります）。"
)
# (pattern of the engine's English message, its Japanese wording; {0}.. are the pattern's groups)
JAPANESE: list[tuple[re.Pattern, str]] = [
    (re.compile(p), ja)
    for p, ja in (
        (r"^missing field", "入力してください。"),
        (r"^Input should be '", "選択肢から選んでください。"),
        (r"at most (\d+) character", "{0}字以内で入力してください。"),
        (r"^decision plan needs `lead:`", "支援方針を決めるときは主担当機関を選んでください。"),
        (
            r"^decision plan needs `roles:`",
            "支援方針を決めるときは役割分担を1件以上入力してください（機関・役割・期日）。",
        ),
        (r"^decision suspend needs `review_on:`", "中断するときは見直しの日を入力してください。"),
        (r"^decision suspend needs `reason:`", "中断するときは理由を入力してください（氏名は書かないでください）。"),
        (
            r"^`review_on:` is for decision suspend",
            "見直しの日は中断のときだけ入力します（支援方針では「次の評価日」）。",
        ),
        (r"^unknown agency", "登録されていない機関です。"),
        (r"cannot introduce", "この会議の構成員ではない機関は紹介元にできません: " + MEMBERS_ONLY),
        (r"cannot be given a role", "この会議の構成員ではない機関には役割を割り当てられません: " + MEMBERS_ONLY),
        (r"is not a registered member", "この会議の構成員ではない機関は主担当機関にできません: " + MEMBERS_ONLY),
        (r"^due date \S+ is before the meeting \((\S+)\)", "期日が会議の日（{0}）より前です。"),
        (r"is not after the meeting \((\S+)\)", "会議の日（{0}）より後の日付を入力してください。"),
        (r"personal data of the household", PERSONAL),
        # 参加支援 (engine/participation/outcome.py)
        (r"^participation is decided with decision plan or close", "参加支援は支援方針または終結のときに決めます。"),
        (r"^no member '", "世帯員を選んでください。"),
        (r"^unknown need", "ニーズを選んでください。"),
        (r"^unknown place", "登録されていない場所です。"),
        (r"^'\S+' is (temporarily_closed|inactive) in resources.yaml", "この場所は現在受け付けていません。"),
        (
            r"takes a person only with their consent",
            "この場所は本人の同意があって初めて受け入れます: 同意ありを選ぶか、同意なしで行ける場所を選んでください。",
        ),
        (r"^a referral needs `consent: true`", "場所を選んだときは、本人同意（あり・なし）を選んでください。"),
        (r"^consent is for a referral", "本人同意は場所を選んだときに選びます。"),
        (r"^`reason:` is why no place", "紹介しない理由は、場所を選ばないときに書きます。"),
        (
            r"^--date \S+ is before the (.+) it answers \((\S+)\)",
            "記録日は {1} 以降にしてください（{0} より前の出来事は記録できません）。",
        ),
        (r"more than \d+ days after today", "記録日が先の日付すぎます。実際にあった日を入力してください。"),
        (r"^--backdate-reason: say why", "遅れた記録の理由を書いてください（監査記録に残ります）。"),
        (
            r"^--backdate-reason: a withdrawal has no date",
            "取り消しには日付がありません: 理由は「訂正の理由」に書いてください。",
        ),
        (
            r"before the last nightly cycle \((\S+)\)",
            "記録日が最後の夜間処理（{0}）より前です。遅れた記録として残すには、遅れた理由を書いてください（監査記録に残ります）。",
        ),
        (r"^--reason: say what was wrong", "何が誤りだったかを書いてください（事案の経過に残ります）。"),
        (r"date|year|era", "日付として読めません（例: 2026-12-20、R8.12.20）。"),
    )
]


def japanese(message: str) -> str:
    """The engine's message in Japanese (as it is when it has no wording here, e.g. already Japanese)."""
    for pattern, wording in JAPANESE:
        found = pattern.search(message)
        if found:
            return wording.format(*found.groups())
    return message


def date_field(message: str) -> str:
    """Which field of a form a date refusal (DateRefused) is about: the reason, or the day."""
    return "backdate_reason" if "backdate-reason" in message or "last nightly cycle" in message else "on"


def form_day(text: str, default: date) -> date:
    """The day a form gives (ISO or 和暦); `default` when left empty. DateError names what is wrong."""
    return parse_date(text.strip()) if text.strip() else default


def dating(conn: sqlite3.Connection, backdate_reason: str) -> Dating:
    """Like the CLI's: at most a few days ahead; before the last nightly cycle only with a reason."""
    return Dating(not_after=horizon(conn), backdate_reason=backdate_reason.strip() or None)


def day_problem(text: str, default: date) -> tuple[date | None, str | None]:
    """(the day, None) or (None, its problem in Japanese)."""
    try:
        return form_day(text, default), None
    except DateError as err:
        return None, japanese(str(err))


def see_other(request: Request, path: str) -> RedirectResponse:
    """POST/redirect/GET: after a change, the page that shows it."""
    return RedirectResponse(path, status_code=303)
