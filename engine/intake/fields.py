"""The three files of a silo extract, their columns, and how values rules depend on are normalised.

Sex becomes M/F/U, 続柄 variants the words rules use (RELATIONSHIP_ALIASES; others are kept, and
the import warns about them), ways of writing Japan 日本. A reject on one of PRIVATE_FIELDS never
repeats the value.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from engine.rules.conditions import RELATIONSHIPS
from engine.support.errors import closest
from engine.support.vocabulary import CODES

COLUMNS: dict[str, tuple[str, ...]] = {
    "households.csv": ("household_id", "area", "address"),
    "persons.csv": ("person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"),
    "records.csv": ("person_id", "source", "code", "value", "start_date", "end_date"),
}
PRIVATE_FIELDS = frozenset({"name", "kana", "address", "birth_date"})  # never echoed in a reject
EARLIEST_BIRTH = "1900-01-01"
SEX = {
    "": "U", "男": "M", "男性": "M", "m": "M", "male": "M", "1": "M",
    "女": "F", "女性": "F", "f": "F", "female": "F", "2": "F",
    "不明": "U", "u": "U", "unknown": "U",
}  # fmt: skip
SEX.update({variant: code for key, code in list(SEX.items()) for variant in (key.upper(), key.title())})
SEX_HINT = "use 男/女/不明, M/F/U, male/female or 1/2 (empty = unknown)"

# 続柄 as registers write it -> the word rules use (engine/rules/conditions.py RELATIONSHIPS).
# Looked up after NFKC and without spaces, so 妻（未届） and 妻 (未届) are 妻(未届). A value that is
# neither a rule word nor listed here is stored as it is, and the import warns about it.
RELATIONSHIP_ALIASES: dict[str, str] = {
    alias: canonical
    for canonical, aliases in {
        "世帯主": "本人",
        "子": "長男 次男 三男 四男 五男 長女 次女 三女 四女 五女 養子 養女 子供 実子 息子 娘",
        "妻": "妻(未届) 未届の妻",
        "夫": "夫(未届) 未届の夫",
        "父": "実父 養父 義父 父親",
        "母": "実母 養母 義母 母親",
        "兄弟姉妹": "兄 弟 姉 妹 兄弟 姉妹 実兄 実弟 実姉 実妹",
        "その他": "子の妻 子の夫 孫の妻 孫の夫 同居人 同居者 縁故者 甥 姪 叔父 叔母 伯父 伯母 曾孫 ひ孫",
    }.items()
    for alias in aliases.split()
} | {r: r for r in RELATIONSHIPS}
# nationality values meaning Japan, after NFKC, trimming and casefold; stored as 日本
JAPAN = frozenset({"日本", "日本国", "japan", "jp", "jpn", "nippon", "ニホン", "ニッポン", "にほん", "にっぽん"})
CHECK_YEAR = "check the year, or the era of a 和暦 date"


@lru_cache(maxsize=4096)
def relationship(text: str) -> tuple[str | None, bool]:
    """(続柄 to store, whether rules know it): a known variant becomes its rule word, else kept."""
    text = text.strip()
    canonical = RELATIONSHIP_ALIASES.get("".join(unicodedata.normalize("NFKC", text).split()))
    return canonical or text or None, bool(canonical or not text)


@lru_cache(maxsize=4096)
def nationality(text: str) -> str | None:
    """The nationality to store: any way of writing Japan becomes 日本, others are kept."""
    text = text.strip()
    return "日本" if unicodedata.normalize("NFKC", text).strip().casefold() in JAPAN else text or None


@lru_cache(maxsize=1024)
def unknown_code(code: str) -> str:
    """Why a record's code is refused, with the closest known code or the list of them."""
    close = closest(code, CODES)
    if close:
        return f"unknown code '{code}' — did you mean '{close}'?"
    return f"unknown code '{code}'; known codes: {', '.join(CODES)}"
