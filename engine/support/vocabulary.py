"""The record vocabulary: every code a silo extract may carry in records.csv.

One place declares each code's Japanese title, the silo it belongs to, the type of its
`value` column and, for records, which part of the value identifies the record (so that a
changed measurement updates the row instead of adding a second one).

Value types
- level:    an ordered scale (care_level, dementia); rules may compare with min/max.
- category: one of a list, or free text when `values` is empty (consultation topics, …).
- amount:   a whole number (yen per year, days); rules may compare with min/max.
- arrears:  "<kind>:<months>" such as "kokuho:4"; the kind is the value, months compare with min/max.
- flag:     presence is the fact; the value is free text and ignored by rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, WithJsonSchema

ValueType = Literal["level", "category", "amount", "arrears", "flag"]

SILOS = ("介護", "障害", "子ども", "困窮", "保護", "DV", "教育")

ARREARS_KINDS = ("resident_tax", "kokuho", "water", "rent", "school_fee")
ARREARS_LABELS = {  # what a person reads for each kind of arrears (「住民税 11か月の滞納」)
    "resident_tax": "住民税",
    "kokuho": "国民健康保険料",
    "water": "水道料金",
    "rent": "家賃",
    "school_fee": "学校徴収金",
}
WATCH_RESULT_LABELS = {"stable": "安定", "concern": "懸念あり", "lost_contact": "連絡が取れない"}  # a watch answer
ASSESSMENT_RESULT_LABELS = {  # one agency's assessment of a new case (engine/triage)
    "resolved": "所管の支援で対応できる（会議は不要）",
    "needs_conference": "会議での検討が必要",
    "could_not_reach": "世帯に接触できなかった",
}
ACTION_STATE_LABELS = {"done": "完了", "overdue": "期限超過", "open": "実施中", "cancelled": "取りやめ"}  # a role


class CodeSpec(BaseModel):
    code: str
    title: str  # Japanese, shown to coordinators
    value_type: ValueType
    values: tuple[str, ...] = ()  # allowed values (ordered for level); empty = free text
    silo: str | None = None  # silo a record of this code belongs to
    silo_from_value: bool = False  # the value names the silo (service_use)
    silo_min: int | None = None  # an amount record touches its silo only from this value (30 absence days)
    value_identifies: bool = False  # the value is part of the record's identity
    served: bool = False  # a current record means an agency of its silo already serves the person
    unit: str = ""


CODES: dict[str, CodeSpec] = {
    c.code: c
    for c in [
        CodeSpec(
            code="care_level",
            title="要介護・要支援認定",
            value_type="level",
            values=("要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5"),
            silo="介護",
        ),
        CodeSpec(
            code="dementia",
            title="認知症高齢者の日常生活自立度",
            value_type="level",
            values=("自立", "I", "IIa", "IIb", "IIIa", "IIIb", "IV", "M"),
            silo="介護",
        ),
        CodeSpec(
            code="disability_certificate",
            title="障害者手帳",
            value_type="category",
            values=("身体", "療育", "精神"),
            silo="障害",
            value_identifies=True,
        ),
        CodeSpec(code="public_assistance", title="生活保護受給", value_type="flag", silo="保護", served=True),
        CodeSpec(code="earned_income", title="給与・事業収入", value_type="amount", unit="円/年"),
        CodeSpec(
            code="service_use",
            title="福祉サービス利用",
            value_type="category",
            values=SILOS,
            silo_from_value=True,
            value_identifies=True,
            served=True,
        ),
        CodeSpec(
            code="arrears",
            title="滞納",
            value_type="arrears",
            values=ARREARS_KINDS,
            silo="困窮",
            value_identifies=True,
            unit="か月",
        ),
        CodeSpec(
            code="school_absence_days", title="欠席日数", value_type="amount", silo="教育", silo_min=30, unit="日"
        ),
        CodeSpec(code="school_enrollment", title="在籍（学校・保育所等）", value_type="category"),
        CodeSpec(
            code="health_check_missed",
            title="乳幼児健診未受診",
            value_type="category",
            values=("連絡なし", "連絡あり"),
            silo="子ども",
        ),
        CodeSpec(code="specific_pregnancy", title="特定妊婦", value_type="flag", silo="子ども"),
        CodeSpec(
            code="yotaikyo_registered",
            title="要保護児童対策地域協議会 登録",
            value_type="flag",
            silo="子ども",
            served=True,
        ),
        CodeSpec(
            code="consultation",
            title="相談記録",
            value_type="category",
            value_identifies=True,
        ),
        CodeSpec(code="dv_support_measure", title="DV等支援措置", value_type="flag", silo="DV"),
        CodeSpec(code="consent", title="本人同意（情報共有）", value_type="flag"),
        CodeSpec(
            code="waiting_list",
            title="入所・利用待ち",
            value_type="category",
            value_identifies=True,
        ),
    ]
}

ORDERED_TYPES = ("level", "amount", "arrears")

# Japanese names accepted wherever a code is written (docs/rules.md, "Values and Japanese names"):
# the loaders turn them into the codes, so hashes, the database and the engine see codes only.
SEVERITY_JA = {"low": "低", "medium": "中", "high": "高", "urgent": "緊急"}  # a flag's severity as read
ARREARS_SHORT_NAMES = {
    "resident_tax": ("市県民税", "市民税・県民税"),
    "kokuho": ("国保", "国民健康保険", "国民健康保険税", "国保税"),
    "water": ("水道", "上下水道料金"),
}
CODE_SHORT_NAMES = {
    "care_level": ("要介護認定",),
    "public_assistance": ("生活保護",),
    "yotaikyo_registered": ("要対協",),
}
# each code's names, the label first (what explanations print)
ARREARS_NAMES = {k: (label, *ARREARS_SHORT_NAMES.get(k, ())) for k, label in ARREARS_LABELS.items()}
CODE_NAMES = {code: (spec.title, *CODE_SHORT_NAMES.get(code, ())) for code, spec in CODES.items()}


def level_rank(spec: CodeSpec, value: str) -> int | None:
    """Position of `value` on a level scale (0-based), or None if it is not on the scale."""
    try:
        return spec.values.index(value)
    except ValueError:
        return None


def parse_arrears(value: str) -> tuple[str, int] | None:
    """'kokuho:4' -> ('kokuho', 4); None when malformed."""
    kind, sep, months = value.partition(":")
    if not sep or kind not in ARREARS_KINDS:
        return None
    try:
        n = int(months)
    except ValueError:
        return None
    return (kind, n) if n >= 0 else None


def check_value(code: str, value: str) -> str | None:
    """Return an error message (Japanese-friendly English) if `value` is invalid for `code`."""
    spec = CODES[code]
    if spec.value_type == "level":
        if level_rank(spec, value) is None:
            return f"value '{value}' is not one of {', '.join(spec.values)}"
    elif spec.value_type == "category":
        if spec.values and value not in spec.values:
            return f"value '{value}' is not one of {', '.join(spec.values)}"
    elif spec.value_type == "amount":
        try:
            if int(value) < 0:
                return f"value '{value}' must be a whole number of 0 or more"
        except ValueError:
            return f"value '{value}' must be a whole number ({spec.unit})"
    elif spec.value_type == "arrears":
        if parse_arrears(value) is None:
            return f"value '{value}' must be '<kind>:<months>' with kind one of {', '.join(ARREARS_KINDS)}"
    return None


def record_silos(code: str, value: str) -> tuple[str, ...]:
    """Silos a record touches (for `silos_touched`)."""
    spec = CODES[code]
    if spec.silo_from_value:
        return (value,) if value in SILOS else ()
    if spec.silo_min is not None and not (value.isdigit() and int(value) >= spec.silo_min):
        return ()
    return (spec.silo,) if spec.silo else ()


def identity_part(code: str, value: str) -> str:
    """The part of the value that identifies a record (arrears kind, consultation topic, …)."""
    spec = CODES[code]
    if not spec.value_identifies:
        return ""
    if spec.value_type == "arrears":
        parsed = parse_arrears(value)
        return parsed[0] if parsed else value
    return value


# the outbox's states (engine outbox), as the coordinator reads them
OUTBOX_STATE_LABELS = {
    "pending": "送信待ち",
    "sending": "送信中",
    "sent": "送信済み",
    "failed": "送信失敗",
    "superseded": "新しい版に差し替え",
    "possible_duplicate": "重複の可能性",
}

# 参加支援 (engine/participation): what a coordinator, an agency or a place reads for each code.
# The codes are what files and the database hold; each label is also accepted where a code is written.
PLACE_CATEGORY_LABELS = {
    "ibasho": "居場所",
    "work_experience": "就労体験",
    "learning": "学習支援",
    "kodomo_shokudo": "子ども食堂",
    "salon": "サロン・通いの場",
    "volunteer": "ボランティア",
}
NEED_LABELS = {  # a need the conference records for one member (and a place says whom it is for)
    "social_contact": "人とのつながり・居場所",
    "work_readiness": "働く準備・就労体験",
    "learning": "学習の支え",
    "meals": "食事・見守りのある食卓",
    "daily_activity": "日中の活動・通いの場",
    "role": "役割・社会貢献の場",
    "respite": "介護する家族の休息・交流",
}
REFERRAL_STATE_LABELS = {  # HL7 Gravity's Task statuses, in the words a place reads
    "requested": "受入れの依頼中",
    "accepted": "受入れ決定",
    "waitlisted": "空き待ち",
    "declined": "受入れ不可",
    "attending": "参加中",
    "ended": "参加終了",
    "cancelled": "紹介の取消し",
}
DECLINE_REASON_LABELS = {
    "at_capacity": "定員に空きがない",
    "not_eligible": "対象に当てはまらない",
    "could_not_contact": "本人と連絡が取れない",
    "other": "その他",
}
END_REASON_LABELS = {
    "person_stopped": "本人が参加をやめた",
    "moved": "転居",
    "needs_met": "目的を達した",
    "other": "その他",
}
WAITLIST_BAND_LABELS = {"lt1m": "1か月以内", "1to3m": "1〜3か月", "gt3m": "3か月以上"}
FOLLOWUP_LEAD_LABELS = {  # the lead (or introducer), at each follow-up after the match
    "well": "通えていて、元気に過ごしている",
    "stopped_by_choice": "本人の意思で参加をやめた",
    "stopped": "参加が途切れた（本人が望んだものではない）",
    "concern": "心配なことがある",
}
FOLLOWUP_PLACE_LABELS = {"attending": "参加している", "not_attending": "参加が途切れている"}  # the place


def fold(text: str) -> str:
    """The form labels are compared in: NFKC (full-width letters and digits, half-width kana) and
    no spaces, so that `国保`, `ｋｏｋｕｈｏ` and `要介護 1` are read as written in the lists."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def code_of(value: object, labels: Mapping[str, str | tuple[str, ...]]) -> object:
    """A label written where a code is expected (居場所 for ibasho, 国保 for kokuho): its code; a
    code written in full-width letters: the code; anything else unchanged (stripped).

    `labels` maps each code to its label or to its names (the label first). The one alias
    function of the engine: rules, configuration files and CLI options read codes through it."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in labels:
        return text
    folded = fold(text)
    for code, names in labels.items():
        if folded == fold(code) or folded in (fold(n) for n in ((names,) if isinstance(names, str) else names)):
            return code
    return text


def names_of(labels: Mapping[str, str | tuple[str, ...]]) -> list[str]:
    """Every code and name of `labels`, for a did-you-mean."""
    out: list[str] = []
    for code, names in labels.items():
        out += [code, *((names,) if isinstance(names, str) else names)]
    return out


def value_of(code: str, value: str) -> str:
    """A rule's `value:` for `code` as the records hold it: an arrears kind by its Japanese name
    (国保 → kokuho), a listed value written in another width (要介護１ → 要介護1); other text unchanged."""
    spec = CODES[code]
    if spec.value_type == "arrears":
        return str(code_of(value, ARREARS_NAMES))
    folded = fold(value)
    return next((v for v in spec.values if fold(v) == folded), value.strip())


def need_label(code: str) -> str:
    """A recorded need's label: a need of NEED_LABELS, or the kind of place asked for when the
    referral was made without naming one (`engine refer` without --need)."""
    return NEED_LABELS.get(code) or PLACE_CATEGORY_LABELS.get(code, code)


# A code field of a configuration file that also takes the Japanese names (要対協, 緊急); the
# JSON schema (engine schema) offers both, so that an editor completes and accepts either.
RecordCode = Annotated[
    str, BeforeValidator(lambda v: code_of(v, CODE_NAMES)), WithJsonSchema({"enum": names_of(CODE_NAMES)})
]
SeverityCode = Annotated[
    Literal["low", "medium", "high", "urgent"],
    BeforeValidator(lambda v: code_of(v, SEVERITY_JA)),
    WithJsonSchema({"enum": names_of(SEVERITY_JA)}),
]
