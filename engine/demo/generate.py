"""A synthetic town for demos, tests and benchmarks: みどり市.

`generate_town` writes the three extracts a municipality would hand over —
households.csv, persons.csv and records.csv — for a plausible Japanese town: household
composition, ages, names with kana, nationality, and the silo records of
engine/support/vocabulary.py at realistic base rates. On top of that it PLANTS the twelve patterns
of shared/domain.md ("Patterns") so that each fires at a realistic rate, and reports how many
households it planted per pattern.

Determinism: everything is drawn from random.Random streams derived from `seed` (one per
chunk of 25,000 households); no clock, no set order. The same arguments give byte-identical
files. Speed: ~3 s per 100,000 households, ~32 s per million, ~100 MB (2-vCPU machine).

`planted[p]` counts the households into which pattern p was deliberately put (a planted
8050 household also counts as a planted ひきこもり). Patterns also occur naturally, so the
number of households that match p is higher; parent_disability_child is never planted.

Modelling choices worth knowing
- Every working-age adult (20-64) who is not a planted ひきこもり has an earned_income
  record: a positive amount for ~90% of men and ~75% of women, otherwise an amount of 0
  (a 住民税 declaration of no income: 専業主婦, unemployed, sick). So "no earned_income
  record" is rare outside the planted patterns, as the ひきこもり rate requires.
- Consultation topics ごみ, セルフネグレクト and DV, and dv_support_measure, occur only where
  planted; the other topics follow each person's situation.
"""

from __future__ import annotations

import csv
import random
from bisect import bisect
from collections.abc import Callable, Iterable
from datetime import date
from itertools import accumulate
from pathlib import Path

from pydantic import BaseModel

from engine.support.private_files import open_private, private_dir

PATTERNS = (
    "8050",
    "double_care",
    "young_carer",
    "hikikomori",
    "isolated_elder",
    "self_neglect",
    "multiple_arrears",
    "child_risk",
    "dv",
    "parent_disability_child",
    "foreign_household_risk",
    "multi_domain",
)

HOUSEHOLD_COLUMNS = ("household_id", "area", "address")
PERSON_COLUMNS = ("person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality")
RECORD_COLUMNS = ("person_id", "source", "code", "value", "start_date", "end_date")

CITY = "みどり市"
CHUNK_HOUSEHOLDS = 25_000  # households per random stream (rows are written chunk by chunk)


class GenerateResult(BaseModel):
    """What `generate_town` wrote. Counts exclude the deliberately broken rows."""

    out_dir: str
    households: int
    persons: int
    records: int
    bad_rows: int = 0
    planted: dict[str, int]


# --------------------------------------------------------------------------- weighted picks


class Picker:
    """Weighted choice from a fixed table, by bisecting cumulative weights (fast, no copies)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, table: Iterable[tuple[object, float]]):
        pairs = list(table)
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def __call__(self, r: Callable[[], float]):
        return self.items[bisect(self.cum, r() * self.total)]


# --------------------------------------------------------------------------- names and places

AREAS = Picker(
    [("中央", 18), ("北部", 14), ("南部", 14), ("東部", 13), ("西部", 13), ("山手", 10), ("港", 9), ("川辺", 9)]
)

FAMILY_NAMES = [
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
    ("吉田", "ヨシダ"), ("山田", "ヤマダ"), ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"),
    ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
    ("山崎", "ヤマザキ"), ("森", "モリ"), ("池田", "イケダ"), ("橋本", "ハシモト"), ("阿部", "アベ"),
    ("石川", "イシカワ"), ("山下", "ヤマシタ"), ("中島", "ナカジマ"), ("石井", "イシイ"), ("小川", "オガワ"),
    ("前田", "マエダ"), ("岡田", "オカダ"), ("長谷川", "ハセガワ"), ("藤田", "フジタ"), ("後藤", "ゴトウ"),
    ("近藤", "コンドウ"), ("村上", "ムラカミ"), ("遠藤", "エンドウ"), ("青木", "アオキ"), ("坂本", "サカモト"),
    ("福田", "フクダ"), ("太田", "オオタ"), ("西村", "ニシムラ"), ("藤井", "フジイ"), ("金子", "カネコ"),
    ("岡本", "オカモト"), ("藤原", "フジワラ"), ("中野", "ナカノ"), ("三浦", "ミウラ"), ("原田", "ハラダ"),
]  # fmt: skip
# Common surnames are more common: weight ~ 1/sqrt(rank).
FAMILY = Picker((name, 1 / (rank + 1) ** 0.5) for rank, name in enumerate(FAMILY_NAMES))

# Given names by sex and birth cohort (before 1965, 1965-1994, 1995 and later).
GIVEN_NAMES = {
    ("M", 0): [("清", "キヨシ"), ("茂", "シゲル"), ("実", "ミノル"), ("博", "ヒロシ"), ("勇", "イサム"),
               ("進", "ススム"), ("正雄", "マサオ"), ("和夫", "カズオ"), ("昭", "アキラ"), ("勝", "マサル"),
               ("弘", "ヒロシ"), ("武", "タケシ"), ("秀夫", "ヒデオ"), ("幸雄", "ユキオ"), ("正", "タダシ"),
               ("隆", "タカシ"), ("修", "オサム"), ("誠", "マコト"), ("健一", "ケンイチ"), ("義男", "ヨシオ")],
    ("M", 1): [("大輔", "ダイスケ"), ("直樹", "ナオキ"), ("哲也", "テツヤ"), ("健太", "ケンタ"), ("拓也", "タクヤ"),
               ("翔太", "ショウタ"), ("和也", "カズヤ"), ("達也", "タツヤ"), ("浩二", "コウジ"), ("剛", "ツヨシ"),
               ("聡", "サトシ"), ("亮", "リョウ"), ("健二", "ケンジ"), ("学", "マナブ"), ("洋平", "ヨウヘイ"),
               ("雄一", "ユウイチ"), ("慎也", "シンヤ"), ("隆之", "タカユキ"), ("誠", "マコト"), ("秀樹", "ヒデキ")],
    ("M", 2): [("蓮", "レン"), ("陽翔", "ハルト"), ("湊", "ミナト"), ("悠真", "ユウマ"), ("大翔", "ヒロト"),
               ("蒼", "アオイ"), ("樹", "イツキ"), ("颯太", "ソウタ"), ("悠人", "ユウト"), ("陸", "リク"),
               ("翔", "ショウ"), ("律", "リツ"), ("朝陽", "アサヒ"), ("大和", "ヤマト"), ("奏太", "カナタ"),
               ("優斗", "ユウト"), ("海斗", "カイト"), ("瑛太", "エイタ"), ("陽太", "ヒナタ"), ("悠斗", "ハルト")],
    ("F", 0): [("和子", "カズコ"), ("幸子", "サチコ"), ("節子", "セツコ"), ("洋子", "ヨウコ"), ("恵子", "ケイコ"),
               ("京子", "キョウコ"), ("美智子", "ミチコ"), ("久子", "ヒサコ"), ("文子", "フミコ"), ("春子", "ハルコ"),
               ("弘子", "ヒロコ"), ("悦子", "エツコ"), ("照子", "テルコ"), ("静子", "シズコ"), ("千代子", "チヨコ"),
               ("君子", "キミコ"), ("順子", "ジュンコ"), ("和江", "カズエ"), ("ハル", "ハル"), ("トシ子", "トシコ")],
    ("F", 1): [("恵美", "エミ"), ("久美子", "クミコ"), ("由美子", "ユミコ"), ("陽子", "ヨウコ"), ("直美", "ナオミ"),
               ("智子", "トモコ"), ("真由美", "マユミ"), ("裕子", "ユウコ"), ("明美", "アケミ"), ("美穂", "ミホ"),
               ("愛", "アイ"), ("彩", "アヤ"), ("麻衣", "マイ"), ("千尋", "チヒロ"), ("香織", "カオリ"),
               ("由香", "ユカ"), ("綾香", "アヤカ"), ("沙織", "サオリ"), ("舞", "マイ"), ("美咲", "ミサキ")],
    ("F", 2): [("陽葵", "ヒマリ"), ("凛", "リン"), ("結菜", "ユイナ"), ("芽依", "メイ"), ("葵", "アオイ"),
               ("紬", "ツムギ"), ("澪", "ミオ"), ("結愛", "ユア"), ("咲良", "サクラ"), ("莉子", "リコ"),
               ("美桜", "ミオ"), ("杏", "アン"), ("心春", "コハル"), ("結衣", "ユイ"), ("陽菜", "ヒナ"),
               ("花", "ハナ"), ("楓", "カエデ"), ("彩花", "アヤカ"), ("琴音", "コトネ"), ("詩", "ウタ")],
}  # fmt: skip

# Foreign nationals: (family names, male given names, female given names, separator).
# Names in katakana as registered (kana = name); Chinese and Korean names in kanji with a kana reading.
FOREIGN_NAMES = {
    "ベトナム": (
        [("グエン", "グエン"), ("チャン", "チャン"), ("レ", "レ"), ("ファム", "ファム"), ("ホアン", "ホアン"), ("ブイ", "ブイ")],
        [("バン・ナム", "バン・ナム"), ("ヴァン・フン", "ヴァン・フン"), ("ドゥック・アイン", "ドゥック・アイン"), ("ミン・トゥアン", "ミン・トゥアン")],
        [("ティ・ラン", "ティ・ラン"), ("ティ・フオン", "ティ・フオン"), ("ティ・マイ", "ティ・マイ"), ("ゴック・アイン", "ゴック・アイン")],
        "・",
    ),
    "中国": (
        [("王", "ワン"), ("李", "リー"), ("張", "チャン"), ("劉", "リュウ"), ("陳", "チェン"), ("楊", "ヤン")],
        [("偉", "ウェイ"), ("磊", "レイ"), ("強", "チアン"), ("浩", "ハオ"), ("軍", "ジュン")],
        [("芳", "ファン"), ("静", "ジン"), ("麗", "リー"), ("敏", "ミン"), ("丹", "ダン")],
        " ",
    ),
    "フィリピン": (
        [("サントス", "サントス"), ("レイエス", "レイエス"), ("クルス", "クルス"), ("ガルシア", "ガルシア"), ("メンドーサ", "メンドーサ")],
        [("ホセ", "ホセ"), ("マーク", "マーク"), ("ジョン", "ジョン"), ("ミゲル", "ミゲル")],
        [("マリア", "マリア"), ("アンジェリカ", "アンジェリカ"), ("ジェニファー", "ジェニファー"), ("クリスティーナ", "クリスティーナ")],
        "・",
    ),
    "ブラジル": (
        [("シルバ", "シルバ"), ("オリベイラ", "オリベイラ"), ("ソウザ", "ソウザ"), ("ペレイラ", "ペレイラ"), ("コスタ", "コスタ")],
        [("ルーカス", "ルーカス"), ("ガブリエル", "ガブリエル"), ("マテウス", "マテウス"), ("ラファエル", "ラファエル")],
        [("アナ", "アナ"), ("ジュリアナ", "ジュリアナ"), ("カミラ", "カミラ"), ("フェルナンダ", "フェルナンダ")],
        "・",
    ),
    "韓国": (
        [("金", "キム"), ("李", "イ"), ("朴", "パク"), ("崔", "チェ"), ("鄭", "チョン")],
        [("民俊", "ミンジュン"), ("志勲", "ジフン"), ("成浩", "ソンホ"), ("賢宇", "ヒョヌ")],
        [("智恩", "ジウン"), ("恵珍", "ヘジン"), ("美英", "ミヨン"), ("秀賢", "スヒョン")],
        " ",
    ),
    "ネパール": (
        [("グルン", "グルン"), ("タパ", "タパ"), ("シュレスタ", "シュレスタ"), ("ライ", "ライ"), ("マガル", "マガル")],
        [("ラム", "ラム"), ("ビカス", "ビカス"), ("スレシュ", "スレシュ"), ("プラカシュ", "プラカシュ")],
        [("サビタ", "サビタ"), ("プジャ", "プジャ"), ("アニタ", "アニタ"), ("スニタ", "スニタ")],
        "・",
    ),
}  # fmt: skip
NATIONALITIES = Picker(
    [("ベトナム", 32), ("中国", 25), ("フィリピン", 12), ("ブラジル", 9), ("韓国", 12), ("ネパール", 10)]
)
FOREIGN_HOUSEHOLD_SHARE = 0.026  # ~2.5% of persons: foreign households are smaller

# --------------------------------------------------------------------------- population model

# Household types of Japanese households (per mille), ~2.26 persons per household.
HOUSEHOLD_TYPES = Picker(
    [
        ("single_young", 118),
        ("single_middle", 92),
        ("single_elderly", 145),
        ("couple", 75),
        ("couple_elderly", 135),
        ("couple_children", 235),
        ("single_parent", 70),
        ("three_generation", 64),
        ("elder_with_adult_child", 50),
        ("other", 16),
    ]
)
FOREIGN_HOUSEHOLD_TYPES = Picker([("single_young", 45), ("couple", 15), ("couple_children", 32), ("single_parent", 8)])


def _elderly_weight(age: int) -> float:
    """Relative number of people of `age` (65+) in a Japanese town (baby boomers ~75-79)."""
    if age < 70:
        return 7.4
    if age < 75:
        return 9.0
    if age < 80:
        return 7.5
    if age < 85:
        return 5.8
    if age < 90:
        return 3.8
    if age < 95:
        return 1.8
    return 0.5 if age < 100 else 0.1


ELDERLY_AGE = Picker((a, _elderly_weight(a)) for a in range(65, 101))
# Living alone grows with age (widowhood).
SINGLE_ELDERLY_AGE = Picker((a, _elderly_weight(a) * (1 + (a - 65) / 12)) for a in range(65, 101))
OLD_ELDERLY_AGE = Picker((a, _elderly_weight(a)) for a in range(75, 96))

CARE_LEVELS = Picker(
    [
        ("要支援1", 14),
        ("要支援2", 14),
        ("要介護1", 20),
        ("要介護2", 17),
        ("要介護3", 13),
        ("要介護4", 12),
        ("要介護5", 10),
    ]
)
HEAVY_CARE = frozenset(("要介護3", "要介護4", "要介護5"))
DEMENTIA = Picker([("自立", 5), ("I", 20), ("IIa", 18), ("IIb", 20), ("IIIa", 15), ("IIIb", 9), ("IV", 9), ("M", 4)])
DISABILITY_CHILD = Picker([("療育", 75), ("身体", 20), ("精神", 5)])
DISABILITY_YOUNG = Picker([("身体", 25), ("療育", 30), ("精神", 45)])
DISABILITY_MIDDLE = Picker([("身体", 50), ("療育", 10), ("精神", 40)])
DISABILITY_OLD = Picker([("身体", 92), ("精神", 6), ("療育", 2)])
ARREARS_MONTHS = Picker(
    [(1, 25), (2, 20), (3, 15), (4, 10), (5, 8), (6, 7), (7, 3), (8, 3), (9, 3), (10, 2), (11, 2), (12, 2)]
)
ARREARS_KIND_COUNT = Picker([(1, 70), (2, 22), (3, 8)])
ARREARS_SOURCE = {"resident_tax": "住民税", "kokuho": "国保", "water": "水道", "rent": "市営住宅", "school_fee": "学校"}

# Planted scenarios: probability per household. Rates are net of what occurs naturally, so that
# each pattern's total prevalence lands near its target (see tests/test_generate.py's docstring).
SCENARIOS = (
    ("8050", 0.0036),
    ("double_care", 0.0016),
    ("young_carer", 0.0010),
    ("isolated_elder", 0.0020),
    ("self_neglect", 0.0012),
    ("multiple_arrears", 0.0025),
    ("child_risk", 0.0015),
    ("dv", 0.0010),
    ("foreign_household_risk", 0.0007),
    ("multi_domain", 0.0035),
)
SCENARIOS_WITH_ARREARS = ("multiple_arrears", "child_risk", "double_care", "multi_domain")
# 生活保護 by household type (~1.7% of households overall).
ASSISTANCE_RATE = {
    "single_elderly": 0.04,
    "single_parent": 0.06,
    "single_middle": 0.025,
    "elder_with_adult_child": 0.025,
}
# ひきこもり is planted per person aged 15-64, by 続柄 (young adults living with parents most).
HIKIKOMORI_RATE = {"子": 0.056, "世帯主": 0.029}
HIKIKOMORI_RATE_OTHER = 0.009

# --------------------------------------------------------------------------- dates


def _shift_years(d: date, years: int) -> date:
    """The same day `years` later (29 Feb becomes 28 Feb)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


class _Calendar:
    """Ordinal arithmetic for one `today`: birth-date windows per age and school-year starts."""

    def __init__(self, today: date):
        self.today = today.toordinal()
        self.today_year = today.year
        school_year = today.year if (today.month, today.day) >= (4, 1) else today.year - 1
        self.school_year = school_year
        self.school_start = date(school_year, 4, 1).toordinal()
        june = date(today.year if today.month >= 6 else today.year - 1, 6, 1)
        self.tax_year_start = june.toordinal()  # 住民税 assessments run from June
        # Born in (today - (a+1) years, today - a years] <=> age a today.
        self.birth_lo = [_shift_years(today, -a - 1).toordinal() + 1 for a in range(111)]
        self.birth_hi = [_shift_years(today, -a).toordinal() for a in range(111)]
        # Age on the school-year start is a (not a-1) when born on or before 1 April, year - a.
        self.school_cut = [date(school_year - a, 4, 1).toordinal() for a in range(111)]
        self.aprils = {y: date(y, 4, 1).toordinal() for y in range(school_year - 111, school_year + 1)}

    def april(self, year: int) -> int:
        """Ordinal of 1 April of `year` (a school year's first day)."""
        return self.aprils[year]


# --------------------------------------------------------------------------- the town model


class _Member:
    """One person being generated. Class attributes are defaults; planting sets flags."""

    hikikomori = False  # no income or school record in the last 6 months
    no_service = False  # must not use any service (planted 8050 / isolated elder)
    care: str | None = None  # forced active care_level
    dementia: str | None = None  # forced dementia (without care_level if care is None)
    disability: str | None = None  # forced active certificate
    absence = 0  # forced school_absence_days
    unenrolled = False  # school-age child without any enrollment
    check_missed: str | None = None  # forced health_check_missed value
    has_care = False  # set while generating: has an active care_level
    has_disability: str | None = None  # set while generating: certificate kind

    pid: str  # set by `identify`, with birth (ordinal) and school_age (age on 1 April)
    birth: int
    school_age: int

    def __init__(self, rel: str, sex: str, age: int):
        self.rel = rel
        self.sex = sex
        self.age = age


class _Household:
    """Household-level state while generating."""

    def __init__(self, hid: str, members: list[_Member], kind: str):
        self.hid = hid
        self.members = members
        self.kind = kind
        self.foreign: str | None = None
        self.tenant = False
        self.assistance = False
        self.arrears_planted = False  # the scenario adds its own arrears


class _ChunkBuilder:
    """Generates one chunk of households with its own random stream, collecting the CSV rows."""

    def __init__(self, seed: int, cal: _Calendar, wareki_share: float, to_wareki):
        self.rng = random.Random(seed)
        self.r = self.rng.random
        self.cal = cal
        self.wareki_share = wareki_share
        self.to_wareki = to_wareki
        self.iso_cache: dict[int, str] = {}
        self.wareki_cache: dict[tuple[int, str], str] = {}
        self.households: list[list[str]] = []
        self.persons: list[list[str]] = []
        self.records: list[list[str]] = []
        self.planted = dict.fromkeys(PATTERNS, 0)
        self.seen: set[tuple[str, ...]] = set()  # per household, see first_time
        self.scenario_pick = Picker([*SCENARIOS, (None, 1.0 - sum(p for _, p in SCENARIOS))])

    # ---- small helpers

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self.r() * (hi - lo + 1))

    def fmt(self, ordinal: int) -> str:
        """A date cell: ISO, or 和暦 for a share of cells."""
        if self.wareki_share and self.r() < self.wareki_share:
            style = "kanji" if self.r() < 0.6 else "abbr"
            key = (ordinal, style)
            text = self.wareki_cache.get(key)
            if text is None:
                text = self.wareki_cache[key] = self.to_wareki(date.fromordinal(ordinal), style)
            return text
        text = self.iso_cache.get(ordinal)
        if text is None:
            text = self.iso_cache[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def past(self, max_days: int, min_days: int = 1) -> int:
        """An ordinal between `max_days` and `min_days` before today."""
        return self.cal.today - min_days - int(self.r() * max(1, max_days - min_days))

    def record(self, m: _Member, source: str, code: str, value: str, start: int, end: int | None = None) -> None:
        self.records.append([m.pid, source, code, value, self.fmt(start), self.fmt(end) if end else ""])

    def first_time(self, *key: str) -> bool:
        """True the first time `key` is seen in the current household (no duplicate arrears etc.)."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    # ---- composition

    def spouse_of(self, head: _Member) -> _Member:
        if head.sex == "M":
            return _Member("妻", "F", max(18, min(100, head.age - self.between(-2, 6))))
        return _Member("夫", "M", max(18, min(100, head.age + self.between(-2, 6))))

    def head(self, lo: int, hi: int, male: float = 0.5) -> _Member:
        return _Member("世帯主", "M" if self.r() < male else "F", self.between(lo, hi))

    def children(self, mother_age: int, count: int, rel: str = "子", youngest_max: int | None = None) -> list[_Member]:
        """Children born when the mother was 20-42; adult children over 35 have moved out."""
        kids = []
        for _ in range(count):
            age = mother_age - self.between(20, 42)
            if age < 0 or age > 35:
                continue
            kids.append(_Member(rel, "M" if self.r() < 0.51 else "F", age))
        if youngest_max is not None and (not kids or min(k.age for k in kids) > youngest_max):
            # ensure a child of at most `youngest_max`, born when the mother was 18-44
            hi = min(youngest_max, max(0, mother_age - 18))
            kids.append(
                _Member(rel, "M" if self.r() < 0.51 else "F", self.between(min(hi, max(0, mother_age - 44)), hi))
            )
        kids.sort(key=lambda k: -k.age)
        return kids

    def compose(self, kind: str) -> list[_Member]:
        """Members of a natural household of `kind`, head first."""
        r = self.r
        if kind == "single_young":
            return [self.head(18, 39, 0.55)]
        if kind == "single_middle":
            return [self.head(40, 64, 0.6)]
        if kind == "single_elderly":
            return [_Member("世帯主", "M" if r() < 0.32 else "F", SINGLE_ELDERLY_AGE(r))]
        if kind == "couple":
            head = self.head(24, 64, 0.88)
            return [head, self.spouse_of(head)]
        if kind == "couple_elderly":
            head = _Member("世帯主", "M" if r() < 0.9 else "F", ELDERLY_AGE(r))
            return [head, self.spouse_of(head)]
        if kind == "couple_children":
            head = self.head(25, 62, 0.9)
            spouse = self.spouse_of(head)
            mother = spouse if spouse.sex == "F" else head
            kids = self.children(mother.age, 1 + (r() < 0.62) + (r() < 0.2))
            return [head, spouse, *(kids or self.children(mother.age, 0, youngest_max=35))]
        if kind == "single_parent":
            head = self.head(22, 58, 0.13)
            kids = self.children(head.age, 1 + (r() < 0.4), youngest_max=19)
            return [head, *kids]
        if kind == "three_generation":
            head = self.head(32, 58, 0.9)
            spouse = self.spouse_of(head)
            mother = spouse if spouse.sex == "F" else head
            elders = []
            parent_age = min(100, head.age + self.between(24, 36))
            if r() < 0.6:
                elders.append(_Member("母", "F", parent_age - self.between(0, 4)))
            if r() < 0.55 or not elders:
                elders.append(_Member("父", "M", parent_age))
            kids = self.children(mother.age, 1 + (r() < 0.6) + (r() < 0.25), youngest_max=20)
            return [head, spouse, *kids, *elders]
        if kind == "elder_with_adult_child":
            parent_age = OLD_ELDERLY_AGE(r) if r() < 0.7 else self.between(65, 74)
            parent_sex = "F" if r() < 0.7 else "M"
            child_age = max(30, parent_age - self.between(24, 38))
            child_sex = "M" if r() < 0.6 else "F"
            if r() < 0.6:
                return [_Member("世帯主", parent_sex, parent_age), _Member("子", child_sex, child_age)]
            return [
                _Member("世帯主", child_sex, child_age),
                _Member("母" if parent_sex == "F" else "父", parent_sex, parent_age),
            ]
        # other: siblings, or an unrelated cohabitant
        head = self.head(25, 80, 0.5)
        if r() < 0.6:
            other = _Member("兄弟姉妹", "M" if r() < 0.5 else "F", max(18, min(100, head.age + self.between(-8, 8))))
        else:
            other = _Member("その他", "M" if r() < 0.5 else "F", self.between(22, 70))
        return [head, other]

    # ---- identity: ids, names, birth dates

    def identify(self, house: _Household, next_pid: int) -> int:
        """Give every member an id, a birth date and (shared family) name; return the next id."""
        r = self.r
        cal = self.cal
        foreign = house.foreign
        if foreign:
            families, males, females, sep = FOREIGN_NAMES[foreign]
            family = families[int(r() * len(families))]
        else:
            family = FAMILY(r)
        rows = self.persons
        for m in house.members:
            age = m.age
            lo = cal.birth_lo[age]
            m.birth = birth = lo + int(r() * (cal.birth_hi[age] - lo + 1))
            m.school_age = age if birth <= cal.school_cut[age] else age - 1
            m.pid = f"P{next_pid:08d}"
            next_pid += 1
            if foreign:
                pool = males if m.sex == "M" else females
                given = pool[int(r() * len(pool))]
                name, kana = f"{family[0]}{sep}{given[0]}", f"{family[1]}{sep}{given[1]}"
                nationality = foreign
            else:
                born = cal.today_year - age
                cohort = 0 if born < 1965 else (1 if born < 1995 else 2)
                pool = GIVEN_NAMES[(m.sex, cohort)]
                given = pool[int(r() * len(pool))]
                name, kana = f"{family[0]} {given[0]}", f"{family[1]} {given[1]}"
                nationality = "日本"
            rows.append([m.pid, house.hid, name, kana, self.fmt(birth), m.sex, m.rel, nationality])
        return next_pid

    def address(self, area: str, tenant: bool) -> str:
        """'みどり市中央2丁目14-3', sometimes with a flat number, or a 市営住宅 flat for tenants."""
        chome, block, number = self.between(1, 5), self.between(1, 30), self.between(1, 20)
        if tenant:
            return f"{CITY}{area}{chome}丁目{block}-{number} 市営{area}団地{self.between(1, 8)}号棟{self.between(1, 5)}0{self.between(1, 8)}"
        if self.r() < 0.3:
            return f"{CITY}{area}{chome}丁目{block}-{number}-{self.between(1, 4)}0{self.between(1, 9)}"
        return f"{CITY}{area}{chome}丁目{block}-{number}"

    # ---- records of one person

    def person_records(self, m: _Member, house: _Household) -> None:
        """Natural records of one member (respecting the planted flags)."""
        age = m.age
        self.disability(m, age)
        enrolled = self.schooling(m) if m.school_age <= 21 else False
        if m.hikikomori:
            self.former_activity(m)
        elif age >= 15:
            self.income(m, age, enrolled)
        if age >= 65 or m.care or m.dementia:
            self.care(m, age, house)
        if age <= 5:
            self.health_check(m, house)

    def disability(self, m: _Member, age: int) -> None:
        """障害者手帳 (mostly 身体 among the old, 療育 among children), half with services."""
        kind = m.disability
        if kind is None:
            r = self.r
            if age < 18:
                kind = DISABILITY_CHILD(r) if r() < 0.013 else None
            elif age < 40:
                kind = DISABILITY_YOUNG(r) if r() < 0.010 else None
            elif age < 65:
                kind = DISABILITY_MIDDLE(r) if r() < 0.020 else None
            else:
                kind = DISABILITY_OLD(r) if r() < 0.19 else None
        if kind is None:
            return
        m.has_disability = kind
        lived = self.cal.today - m.birth
        start = self.past(min(lived - 30, 20 * 365), 30) if lived > 60 else m.birth + 1
        self.record(m, "障害福祉", "disability_certificate", kind, start)
        if not m.no_service and self.r() < 0.5:
            self.record(m, "障害福祉", "service_use", "障害", min(self.cal.today - 1, start + self.between(14, 400)))

    def schooling(self, m: _Member) -> bool:
        """Preschool, school or college enrollment from the school-year age; True if enrolled now."""
        if m.hikikomori or m.unenrolled:
            return False
        cal, r, sa = self.cal, self.r, m.school_age
        if sa <= 5:
            rate = 0.15 if sa == 0 else 0.45 if sa <= 2 else 0.75 if sa <= 4 else 0.97
            if r() >= rate:
                return False
            start = max(m.birth + 180, cal.school_start - 365 * int(r() * (sa + 1)))
            if start >= cal.today:
                return False
            place = "保育所" if sa < 3 or r() < 0.55 else "幼稚園"
            self.record(m, "子ども家庭" if place == "保育所" else "学校", "school_enrollment", place, start)
            return True
        if sa <= 17:
            if sa >= 15 and not m.absence and r() < 0.03:
                return False  # left school: works (or is planted as ひきこもり)
            if m.has_disability == "療育" and r() < 0.5:
                self.record(m, "学校", "school_enrollment", "特別支援学校", cal.april(cal.school_year - (sa - 6)))
            else:
                stage, first, previous = (
                    ("小学校", 6, None)
                    if sa <= 11
                    else ("中学校", 12, "小学校")
                    if sa <= 14
                    else ("高校", 15, "中学校")
                )
                entry = cal.school_year - (sa - first)
                if previous:
                    years = 6 if previous == "小学校" else 3
                    self.record(
                        m, "学校", "school_enrollment", previous, cal.april(entry - years), cal.april(entry) - 1
                    )
                self.record(m, "学校", "school_enrollment", stage, cal.april(entry))
            if m.absence or r() < 0.05:
                days = m.absence or (self.between(5, 29) if r() < 0.6 else self.between(30, 120))
                self.record(m, "学校", "school_absence_days", str(days), cal.school_start)
            return True
        # 18-21 on the school-year start: university or vocational school
        if r() >= (0.6 if sa <= 19 else 0.5):
            return False
        place = "専門学校" if sa <= 19 and r() < 0.3 else "大学"
        entry = cal.school_year - (sa - 18)
        self.record(m, "学校", "school_enrollment", "高校", cal.april(entry - 3), cal.april(entry) - 1)
        self.record(m, "学校", "school_enrollment", place, cal.april(entry))
        return True

    def income(self, m: _Member, age: int, enrolled: bool) -> None:
        """earned_income: a positive amount, or 0 (declared no income) for the working-age rest."""
        r = self.r
        male = m.sex == "M"
        if enrolled:
            if age >= 18 and r() < 0.4:  # アルバイト
                self.job(m, age, 200_000 + int(r() * 800_000))
            return
        if age < 20:
            if r() < 0.85:
                self.job(m, age, 1_000_000 + int(r() * 1_800_000))
            else:
                self.record(m, "住民税", "earned_income", "0", self.cal.tax_year_start)
            return
        if age < 65:
            if male:
                p = 0.62 if m.has_disability else 0.93
            else:
                p = 0.70 if m.rel == "妻" else 0.86
                if m.has_disability:
                    p -= 0.3
            if r() < p:
                if male:
                    amount = 1_800_000 + int(6_400_000 * r() * r())
                else:
                    amount = 600_000 + int(4_200_000 * r() * r())
                self.job(m, age, amount)
            else:
                self.record(m, "住民税", "earned_income", "0", self.cal.tax_year_start)
            return
        if r() < ((0.5 if male else 0.3) if age < 70 else (0.28 if male else 0.14) if age < 75 else 0.02):
            self.job(m, age, 600_000 + int(2_400_000 * r() * r()))

    def job(self, m: _Member, age: int, amount: int) -> None:
        """A current job (rounded yen/year); some people also have an earlier, ended one."""
        r = self.r
        value = str(amount // 1000 * 1000)
        working_days = max(60, (age - 16) * 365)
        start = self.past(min(working_days, 25 * 365), 30)
        self.record(m, "住民税", "earned_income", value, start)
        if r() < 0.12 and working_days > 3 * 365:
            end = start - self.between(1, 120)
            old = end - self.between(365, 8 * 365)
            if old > m.birth + 16 * 365:
                self.record(m, "住民税", "earned_income", str(int(amount * (0.6 + 0.4 * r())) // 1000 * 1000), old, end)

    def former_activity(self, m: _Member) -> None:
        """A planted ひきこもり: at most an income or school record that ended over 6 months ago."""
        r, cal = self.r, self.cal
        ended = cal.today - self.between(200, 200 + min(15 * 365, max(1, (m.age - 16) * 365)))
        if ended - 365 <= m.birth + 15 * 365:
            if m.age <= 22 and r() < 0.5:
                self.record(m, "学校", "school_enrollment", "高校", cal.today - 3 * 365 - 200, cal.today - 200)
            return
        if r() < 0.5:
            self.record(
                m,
                "住民税",
                "earned_income",
                str(self.between(800, 3500) * 1000),
                ended - self.between(365, 6 * 365),
                ended,
            )
        elif m.age <= 30 and r() < 0.5:
            self.record(m, "学校", "school_enrollment", "大学", ended - self.between(365, 3 * 365), ended)

    def care(self, m: _Member, age: int, house: _Household) -> None:
        """Care certification (by age), dementia, care services and waiting lists."""
        r = self.r
        level = m.care
        if level is None and age >= 65:
            rate = (
                0.02 if age < 70 else 0.06 if age < 75 else 0.12 if age < 80
                else 0.25 if age < 85 else 0.45 if age < 90 else 0.7 if age < 95 else 0.85
            )  # fmt: skip
            if r() < rate:
                level = CARE_LEVELS(r)
        if level is None:
            if m.dementia:
                self.record(m, "介護保険", "dementia", m.dementia, self.past(3 * 365, 30))
            return
        m.has_care = True
        start = self.past(min(6 * 365, max(60, (age - 64) * 365)), 14)
        if age >= 68 and r() < 0.3:  # an earlier certification, replaced on renewal
            self.record(m, "介護保険", "care_level", CARE_LEVELS(r), start - self.between(180, 1000), start - 1)
        self.record(m, "介護保険", "care_level", level, start)
        dementia = m.dementia or (DEMENTIA(r) if r() < 0.5 else None)
        if dementia:
            self.record(m, "介護保険", "dementia", dementia, start)
        if not m.no_service and r() < (0.9 if len(house.members) == 1 else 0.8):
            self.record(m, "介護保険", "service_use", "介護", min(self.cal.today - 1, start + self.between(7, 120)))
        if level in HEAVY_CARE and r() < 0.12 and self.first_time(m.pid, "特養"):
            self.record(m, "介護保険", "waiting_list", "特養", self.past(700, 10))

    def health_check(self, m: _Member, house: _Household) -> None:
        """乳幼児健診: a missed check (4%, 10% in foreign households) is a record."""
        value = m.check_missed
        if value is None:
            if self.r() >= (0.10 if house.foreign else 0.04):
                return
            value = "連絡なし" if self.r() < 0.25 else "連絡あり"
        first = m.birth + 120  # the 4-month check
        if first >= self.cal.today - 1:
            first = m.birth + 1
        self.record(m, "母子保健", "health_check_missed", value, first + int(self.r() * (self.cal.today - 1 - first)))

    # ---- records of the household

    def household_records(self, house: _Household) -> None:
        """Public assistance, arrears, consultations, child-welfare flags and waiting lists."""
        r, members = self.r, house.members
        head = members[0]
        if house.assistance:
            start = self.past(10 * 365, 60)
            for m in members if r() < 0.7 else members[:1]:
                self.record(m, "生活保護", "public_assistance", "生活扶助", max(start, m.birth + 1))
        if r() < 0.04 and not house.arrears_planted:
            self.arrears(house, ARREARS_KIND_COUNT(r), lambda: ARREARS_MONTHS(r), ended_share=0.25)
            if r() < 0.1:
                self.record(head, "相談支援", "service_use", "困窮", self.past(365, 7))
        minors = [m for m in members if m.age < 18]
        if minors and r() < 0.003:
            child = minors[int(r() * len(minors))]
            start = max(child.birth + 1, self.past(3 * 365, 14))
            self.record(child, "子ども家庭", "yotaikyo_registered", "要支援児童" if r() < 0.7 else "要保護児童", start)
        if r() < 0.0025:
            women = [m for m in members if m.sex == "F" and 16 <= m.age <= 44 and m.rel in ("世帯主", "妻", "子")]
            if women:
                self.record(women[0], "母子保健", "specific_pregnancy", "登録", self.past(240, 7))
                if r() < 0.25:
                    self.arrears(house, 1, lambda: self.between(1, 6), ended_share=0.0)
        toddlers = [m for m in minors if m.school_age <= 2]
        if toddlers and r() < 0.03:
            self.record(
                toddlers[-1], "子ども家庭", "waiting_list", "保育所", max(toddlers[-1].birth + 1, self.past(300, 14))
            )
        consulted = False
        for m in members:
            if m.age >= 15 and r() < 0.052:
                self.consultation(m, self.topic(m, house), ended_share=0.5)
                consulted = True
        if consulted:
            self.consents(house)

    def arrears(self, house: _Household, count: int, months: Callable[[], int], ended_share: float) -> None:
        """`count` distinct kinds of arrears, owed by the head (sometimes the spouse)."""
        r = self.r
        members = house.members
        payer = members[1] if len(members) > 1 and members[1].rel in ("妻", "夫") and r() < 0.15 else members[0]
        kinds = ["resident_tax", "kokuho", "water"]
        if house.tenant:
            kinds.append("rent")
        if any(6 <= m.school_age <= 14 for m in members):
            kinds.append("school_fee")
        kinds = [kind for kind in kinds if ("arrears", kind) not in self.seen]
        for _ in range(min(count, len(kinds))):
            kind = kinds.pop(int(r() * len(kinds)))
            self.seen.add(("arrears", kind))
            n = months()
            start = self.cal.today - n * 30 - self.between(0, 25)
            end = None
            if r() < ended_share:
                end = start + int(r() * (self.cal.today - 1 - start))
            self.record(payer, ARREARS_SOURCE[kind], "arrears", f"{kind}:{n}", start, end)

    def topic(self, m: _Member, house: _Household) -> str:
        """A natural consultation topic that fits the person's situation."""
        r = self.r
        if m.has_care or (m.age >= 65 and r() < 0.5):
            return "介護"
        if m.has_disability:
            return "障害"
        if house.assistance or r() < 0.25:
            return "生活困窮"
        if m.rel in ("世帯主", "妻", "夫") and any(k.age < 6 for k in house.members):
            return "子育て"
        return "健康"

    def consultation(self, m: _Member, topic: str, ended_share: float) -> None:
        """A consultation record of `topic`; some are closed (ended) already."""
        if not self.first_time(m.pid, topic):
            return
        start = max(m.birth + 1, self.past(3 * 365, 1))
        end = None
        if self.r() < ended_share:
            end = start + self.between(14, 400)
            if end >= self.cal.today:
                end = None
        self.record(m, "相談支援", "consultation", topic, start, end)

    def consents(self, house: _Household) -> None:
        """About a third of the members of a consulted household consent to 重層的支援会議."""
        for m in house.members:
            if m.age >= 15 and self.r() < 0.34:
                self.record(m, "相談支援", "consent", "重層的支援会議", self.past(365, 1))

    def plant_hikikomori(self, house: _Household) -> bool:
        """Mark ひきこもり among members aged 15-64 (not in households on public assistance)."""
        if house.assistance and self.r() < 0.9:
            return False
        alone = len(house.members) == 1 or house.kind == "elder_with_adult_child"
        planted = False
        for m in house.members:
            if not 15 <= m.age <= 64 or m.absence or m.hikikomori or m.disability:
                continue
            if m.rel == "子":
                rate = HIKIKOMORI_RATE["子"]
            elif m.rel == "世帯主":
                rate = HIKIKOMORI_RATE["世帯主"] if alone else 0.0
            elif m.rel in ("妻", "夫") and any(k.age < 18 for k in house.members):
                rate = 0.0
            else:
                rate = HIKIKOMORI_RATE_OTHER
            if rate and self.r() < rate:
                m.hikikomori = True
                planted = True
        return planted

    # ---- planted scenarios: each returns (household kind, members, finish) where `finish`
    # ---- adds the scenario's own records once ids and natural records exist.

    def plant_8050(self) -> tuple[str, list[_Member], Callable | None]:
        """An elderly parent (75+) with care certification and a withdrawn child of 40-64."""
        r = self.r
        parent = _Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
        parent.care = CARE_LEVELS(r)
        child = _Member("子", "M" if r() < 0.65 else "F", min(64, max(40, parent.age - self.between(24, 38))))
        child.hikikomori = child.no_service = True
        if r() < 0.6:
            members = [parent, child]
            if r() < 0.25:
                members.insert(1, self.spouse_of(parent))
                members[1].age = max(70, members[1].age)
        else:
            child.rel = "世帯主"
            parent.rel = "母" if parent.sex == "F" else "父"
            members = [child, parent]

        def finish(house: _Household) -> None:
            if r() < 0.3:
                self.consultation(parent, "ひきこもり" if r() < 0.6 else "介護", ended_share=0.3)

        return "elder_with_adult_child", members, finish

    def plant_double_care(self) -> tuple[str, list[_Member], Callable | None]:
        """Parents with a preschool child and a parent needing care, under stress."""
        r = self.r
        head = self.head(30, 46, 0.85)
        spouse = self.spouse_of(head)
        mother = spouse if spouse.sex == "F" else head
        kids = self.children(mother.age, 1 + (r() < 0.5), youngest_max=5)
        elder_sex = "F" if r() < 0.6 else "M"
        elder = _Member("母" if elder_sex == "F" else "父", elder_sex, min(95, head.age + self.between(26, 38)))
        elder.care = CARE_LEVELS(r)
        members = [head, spouse, *kids, elder]

        def finish(house: _Household) -> None:
            roll = r()
            if roll < 0.45:
                self.record(
                    kids[-1], "子ども家庭", "waiting_list", "保育所", max(kids[-1].birth + 1, self.past(300, 14))
                )
            elif roll < 0.7 and self.first_time(elder.pid, "特養"):
                self.record(elder, "介護保険", "waiting_list", "特養", self.past(500, 14))
            else:
                self.arrears(house, 1 + (r() < 0.3), lambda: self.between(1, 6), ended_share=0.0)

        return "three_generation", members, finish

    def plant_young_carer(self) -> tuple[str, list[_Member], Callable | None]:
        """A child of 10-17 missing 30+ school days, caring for a parent or grandparent at the head."""
        r = self.r
        carer = _Member("子", "F" if r() < 0.55 else "M", self.between(10, 17))
        carer.absence = self.between(30, 120)
        if r() < 0.75:
            head = self.head(carer.age + 22, min(58, carer.age + 40), 0.2)
            head.disability = "精神" if r() < 0.7 else "療育"
            siblings = self.children(head.age, int(r() < 0.5))
            members = [head, carer, *siblings]
            kind = "single_parent"
        else:
            head = self.head(carer.age + 50, min(88, carer.age + 70), 0.45)
            head.care = CARE_LEVELS(r)
            parent = _Member("子", "F" if r() < 0.8 else "M", carer.age + self.between(22, 38))
            carer.rel = "孫"
            members = [head, parent, carer]
            kind = "three_generation"
        return kind, members, None

    def plant_isolated_elder(self) -> tuple[str, list[_Member], Callable | None]:
        """A person of 75+ living alone, with care certification or dementia, using no service."""
        r = self.r
        m = _Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
        if r() < 0.8:
            m.care = CARE_LEVELS(r)
        else:
            m.dementia = DEMENTIA(r) if r() < 0.5 else "IIa"
        m.no_service = True
        return "single_elderly", [m], None

    def plant_self_neglect(self) -> tuple[str, list[_Member], Callable | None]:
        """A hoarding / self-neglect complaint about a person living alone."""
        r = self.r
        m = _Member("世帯主", "M" if r() < 0.6 else "F", self.between(40, 64) if r() < 0.4 else ELDERLY_AGE(r))

        def finish(house: _Household) -> None:
            self.consultation(m, "ごみ" if r() < 0.75 else "セルフネグレクト", ended_share=0.0)

        return "single_elderly" if m.age >= 65 else "single_middle", [m], finish

    def plant_multiple_arrears(self) -> tuple[str, list[_Member], Callable | None]:
        """Arrears of 3+ months in two or three kinds (tax, 国保, water, rent, school fees)."""
        r = self.r
        kind = HOUSEHOLD_TYPES(r)
        members = self.compose(kind)

        def finish(house: _Household) -> None:
            self.arrears(house, 2 + (r() < 0.3), lambda: self.between(3, 12), ended_share=0.0)
            if r() < 0.4:
                self.consultation(house.members[0], "生活困窮", ended_share=0.2)

        return kind, members, finish

    def plant_child_risk(self) -> tuple[str, list[_Member], Callable | None]:
        """A missed infant check with no contact, or a 特定妊婦 in a household in arrears."""
        r = self.r
        single = r() < 0.35
        head = self.head(19, 42, 0.0 if single else 0.88)
        members = [head] if single else [head, self.spouse_of(head)]
        mother = head if head.sex == "F" else members[1]
        if r() < 0.7:
            kids = self.children(mother.age, int(r() < 0.5), youngest_max=5)
            kids[-1].age = max(1, kids[-1].age)
            kids[-1].check_missed = "連絡なし"

            def registered(house: _Household) -> None:  # 要対協 often knows such a child already
                if r() < 0.4:
                    self.record(
                        kids[-1],
                        "子ども家庭",
                        "yotaikyo_registered",
                        "要支援児童",
                        max(kids[-1].birth + 1, self.past(365, 14)),
                    )

            return ("single_parent" if single else "couple_children"), [*members, *kids], registered

        def finish(house: _Household) -> None:
            self.record(mother, "母子保健", "specific_pregnancy", "登録", self.past(240, 7))
            self.arrears(house, 1 + (r() < 0.3), lambda: self.between(1, 8), ended_share=0.0)

        return ("single_young" if single else "couple"), members, finish

    def plant_dv(self) -> tuple[str, list[_Member], Callable | None]:
        """A DV support measure and/or a DV consultation (often a mother who fled with children)."""
        r = self.r
        if r() < 0.65:
            head = self.head(24, 45, 0.0)
            members = [head, *self.children(head.age, 1 + (r() < 0.4), youngest_max=15)]
            kind = "single_parent"
        else:
            head = self.head(20, 60, 0.0)
            members, kind = [head], "single_young"

        def finish(house: _Household) -> None:
            measure = r() < 0.7
            if measure:
                self.record(head, "住民記録", "dv_support_measure", "住民票等の閲覧制限", self.past(3 * 365, 14))
            if not measure or r() < 0.5:
                self.consultation(head, "DV", ended_share=0.3 if measure else 0.0)

        return kind, members, finish

    def plant_foreign_household_risk(self) -> tuple[str, list[_Member], Callable | None]:
        """A foreign-national family with an unenrolled school-age child or a missed infant check."""
        r = self.r
        single = r() < 0.25
        head = self.head(24, 48, 0.1 if single else 0.9)
        members = [head] if single else [head, self.spouse_of(head)]
        mother = head if single or head.sex == "F" else members[1]
        if r() < 0.5:
            kids = self.children(mother.age, int(r() < 0.5))
            child = _Member("子", "M" if r() < 0.5 else "F", self.between(7, 15))
            child.unenrolled = True
            kids.append(child)
        else:
            kids = self.children(mother.age, int(r() < 0.4), youngest_max=5)
            kids[-1].age = max(1, kids[-1].age)
            kids[-1].check_missed = "連絡なし" if r() < 0.5 else "連絡あり"
        return ("single_parent" if single else "couple_children"), [*members, *kids], None

    def plant_multi_domain(self) -> tuple[str, list[_Member], Callable | None]:
        """A household touching three silos: care, disability and hardship / assistance / school."""
        r = self.r
        roll = r()
        if roll < 0.4:
            parent = _Member("世帯主", "F" if r() < 0.7 else "M", OLD_ELDERLY_AGE(r))
            parent.care = CARE_LEVELS(r)
            child = _Member("子", "M" if r() < 0.6 else "F", max(35, parent.age - self.between(24, 36)))
            child.disability = "精神" if r() < 0.6 else "療育"
            members, kind = [parent, child], "elder_with_adult_child"
        elif roll < 0.7:
            head = self.head(30, 50, 0.2)
            head.disability = "精神" if r() < 0.6 else "身体"
            child = _Member("子", "M" if r() < 0.5 else "F", self.between(7, 15))
            child.absence = self.between(5, 29)
            members, kind = [head, child], "single_parent"
        else:
            head = _Member("世帯主", "M", ELDERLY_AGE(r))
            head.care = CARE_LEVELS(r)
            spouse = self.spouse_of(head)
            spouse.disability = "身体"
            members, kind = [head, spouse], "couple_elderly"

        def finish(house: _Household) -> None:
            if not house.assistance:
                self.arrears(house, 1, lambda: self.between(1, 8), ended_share=0.0)

        return kind, members, finish

    # ---- one household

    def household(self, index: int, next_pid: int) -> int:
        """Generate household number `index` (0-based) with its members and records."""
        r = self.r
        scenario = self.scenario_pick(r)
        finish = None
        foreign = None
        if scenario is None:
            if r() < FOREIGN_HOUSEHOLD_SHARE:
                foreign = NATIONALITIES(r)
                kind = FOREIGN_HOUSEHOLD_TYPES(r)
            else:
                kind = HOUSEHOLD_TYPES(r)
            members = self.compose(kind)
        else:
            kind, members, finish = getattr(self, f"plant_{scenario}")()
            self.planted[scenario] += 1
            if scenario == "foreign_household_risk":
                foreign = NATIONALITIES(r)
        self.seen.clear()
        house = _Household(f"H{index + 1:07d}", members, kind)
        house.foreign = foreign
        house.arrears_planted = scenario in SCENARIOS_WITH_ARREARS
        house.tenant = r() < (0.2 if kind in ("single_elderly", "single_parent") else 0.06)
        if scenario == "8050":
            self.planted["hikikomori"] += 1
        elif scenario == "multi_domain":
            house.assistance = r() < 0.4
        else:
            house.assistance = r() < ASSISTANCE_RATE.get(kind, 0.005)
        if scenario != "8050" and self.plant_hikikomori(house):
            self.planted["hikikomori"] += 1
        area = AREAS(r)
        self.households.append([house.hid, area, self.address(area, house.tenant)])
        next_pid = self.identify(house, next_pid)
        for m in members:
            self.person_records(m, house)
        self.household_records(house)
        if finish is not None:
            finish(house)
        if any(m.hikikomori for m in members) and scenario != "8050" and r() < 0.2:
            withdrawn = next(m for m in members if m.hikikomori)
            self.consultation(withdrawn if r() < 0.4 else members[0], "ひきこもり", ended_share=0.4)
        return next_pid

    # ---- deliberately broken rows (for the importer's rejects report)

    BAD_KINDS = (
        "person_unknown_household",
        "person_bad_date",
        "person_duplicate_id",
        "record_unknown_code",
        "record_bad_date",
        "household_missing_field",
        "record_missing_field",
        "person_missing_field",
    )
    BAD_DATES = ("令和6年13月1日", "2019-02-30", "R5.13.1", "令和5年2月30日", "2024/13/01")

    def bad_row(self, number: int, households_total: int) -> None:
        """Append broken row `number`: the kind cycles through BAD_KINDS, the data is plausible."""
        kind = self.BAD_KINDS[number % len(self.BAD_KINDS)]
        last_person = self.persons[-1]
        pid, hid = last_person[0], last_person[1]
        bad_date = self.BAD_DATES[int(self.r() * len(self.BAD_DATES))]
        new_pid = f"P{99_000_000 + number:08d}"
        name, kana = "田中 花子", "タナカ ハナコ"
        birth = self.fmt(self.cal.birth_lo[40])
        if kind == "person_unknown_household":
            unknown = f"H{households_total + 1 + number:07d}"
            self.persons.append([new_pid, unknown, name, kana, birth, "F", "世帯主", "日本"])
        elif kind == "person_bad_date":
            self.persons.append([new_pid, hid, name, kana, bad_date, "F", "その他", "日本"])
        elif kind == "person_duplicate_id":
            self.persons.append([pid, hid, name, kana, birth, "F", "その他", "日本"])
        elif kind == "record_unknown_code":
            self.records.append([pid, "介護保険", "care_levl", "要介護2", self.fmt(self.past(900, 30)), ""])
        elif kind == "record_bad_date":
            self.records.append([pid, "国保", "arrears", "kokuho:2", bad_date, ""])
        elif kind == "household_missing_field":
            self.households.append([f"H{households_total + 5_000_000 + number:07d}", self.address("中央", False)])
        elif kind == "record_missing_field":
            self.records.append([pid, "水道", "water:3", self.fmt(self.past(300, 30)), ""])
        else:  # person_missing_field: the sex column is missing
            self.persons.append([new_pid, hid, name, kana, birth, "その他", "日本"])


# --------------------------------------------------------------------------- writing files


def _wareki_formatter(wareki_share: float):
    if not wareki_share:
        return None
    from engine.support.dates import to_wareki  # imported late: only needed when 和暦 is asked for

    return to_wareki


def generate_town(
    out_dir: Path,
    households: int,
    seed: int,
    *,
    today: date = date(2026, 11, 27),
    encoding: str = "utf-8",
    wareki_share: float = 0.2,
    bad_rows: int = 0,
) -> GenerateResult:
    """Write households.csv, persons.csv and records.csv for a synthetic town to `out_dir`.

    Ages and record dates are relative to `today`. A share `wareki_share` of date cells is
    written in 和暦; `bad_rows` broken rows (unknown household, bad date, duplicate id,
    unknown code, missing field) are spread over the files. Same arguments, same bytes.

    Example:
        generate_town(Path("town"), 5000, seed=42, encoding="cp932")
    """
    if households < 0 or bad_rows < 0:
        raise ValueError("households and bad_rows must be 0 or more")
    if not 0.0 <= wareki_share <= 1.0:
        raise ValueError(f"wareki_share must be between 0 and 1, not {wareki_share}")
    out_dir = Path(out_dir)
    private_dir(out_dir)
    to_wareki = _wareki_formatter(wareki_share)
    cal = _Calendar(today)
    master = random.Random(seed)
    chunk_count = (households + CHUNK_HOUSEHOLDS - 1) // CHUNK_HOUSEHOLDS
    chunk_seeds = [master.getrandbits(64) for _ in range(chunk_count)]
    bad_rows = bad_rows if households else 0  # broken rows need a household to sit next to
    bad_after: dict[int, list[int]] = {}
    for number in range(bad_rows):
        bad_after.setdefault(master.randrange(households), []).append(number)

    totals = {"households": 0, "persons": 0, "records": 0}  # rows written, broken ones included
    planted = dict.fromkeys(PATTERNS, 0)
    files = {
        name: open_private(out_dir / f"{name}.csv", "w", encoding=encoding, newline="", buffering=1 << 20)
        for name in ("households", "persons", "records")
    }
    try:
        writers = {name: csv.writer(f) for name, f in files.items()}
        writers["households"].writerow(HOUSEHOLD_COLUMNS)
        writers["persons"].writerow(PERSON_COLUMNS)
        writers["records"].writerow(RECORD_COLUMNS)
        next_pid = 1
        for chunk, chunk_seed in enumerate(chunk_seeds):
            builder = _ChunkBuilder(chunk_seed, cal, wareki_share, to_wareki)
            first = chunk * CHUNK_HOUSEHOLDS
            for index in range(first, min(households, first + CHUNK_HOUSEHOLDS)):
                next_pid = builder.household(index, next_pid)
                for number in bad_after.get(index, ()):
                    builder.bad_row(number, households)
            for name, rows in (
                ("households", builder.households),
                ("persons", builder.persons),
                ("records", builder.records),
            ):
                writers[name].writerows(rows)
                totals[name] += len(rows)
            for pattern, n in builder.planted.items():
                planted[pattern] += n
    finally:
        for f in files.values():
            f.close()
    return GenerateResult(
        out_dir=str(out_dir),
        households=households,
        persons=next_pid - 1,
        records=totals["records"] - _bad_records(bad_rows),
        bad_rows=bad_rows,
        planted=planted,
    )


def _bad_records(bad_rows: int) -> int:
    """How many of the first `bad_rows` broken rows go to records.csv."""
    kinds = _ChunkBuilder.BAD_KINDS
    return sum(1 for n in range(bad_rows) if kinds[n % len(kinds)].startswith("record_"))
