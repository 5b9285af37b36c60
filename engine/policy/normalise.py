"""One way to write a piece of Japanese text, so that personal data matches however it was typed.

Used on both sides by the personal-data guard (engine/policy/personal_data.py: a household's names,
kana, address and birth dates against free text that is e-mailed) and by the privacy scan of the
tests (tests/helpers/privacy.py). `normalise` applies, in this order:

- NFKC: full-width digits and letters to ASCII, half-width kana to full-width, NFD recomposed,
  compatibility ideographs (塚 U+FA10) to their unified form;
- zero-width and other invisible format characters (U+200B, U+2060, U+FEFF, soft hyphen, bidi
  marks) and variation selectors (異体字 selectors of IVS) removed;
- variant kanji of Japanese surnames folded to one form (髙→高, 﨑→崎, 邉/邊→辺, 齋/齊/斉→斎…);
- kanji numerals to digits (一九七九→1979, 十一→11, 一丁目→1丁目);
- 丁目, 番地, 番, 号 and の after a number, and every dash between two numbers, written "-"
  (北部1丁目12番11号 = 北部1-12-11);
- separators removed: spaces, ・ = (name parts), dashes and ー that are not between two numbers.
  Whitespace between two numbers stays one space, so two numbers never run together.

Kana are not folded here: callers compare katakana and hiragana forms themselves (`hiragana`),
because 2-character hiragana are ordinary grammar.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date

from engine.support.dates import DateError, parse_date

# Format characters (Cf) a name can hide in, variation selectors (standard and IVS), and the two
# private-use characters normalise() uses as placeholders
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ue000\ue001\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)

# 異体字 of Japanese surnames and given names: the first character of each group is the form kept.
# NFKC already folds the compatibility ideographs (U+F900–FAFF) that have a decomposition; the ones
# it leaves alone (﨑 U+FA11 among them) are listed.
VARIANT_GROUPS = (
    "高髙",
    "崎﨑嵜碕",
    "辺邉邊",
    "斎齋齊斉",
    "浜濱濵",
    "沢澤",
    "島嶋嶌",
    "広廣",
    "桜櫻",
    "国國",
    "徳德",
    "恵惠",
    "真眞",
    "富冨",
    "槙槇",
    "篭籠",
    "館舘",
    "実實",
    "竜龍",
    "吉𠮷",
    "栄榮",
    "蔵藏",
    "寿壽",
    "条條",
    "瀬瀨",
    "黒黑",
    "万萬",
    "与與",
    "学學",
    "宝寶寳",
    "満滿",
    "青靑",
    "桑桒",
    "曽曾",
    "増增",
    "峰峯",
    "渋澁",
    "恒恆",
    "柳栁",
    "関關",
    "円圓",
    "船舩",
    "渕淵",
    "桧檜",
    "竈竃",
    "亀龜",
    "礼禮",
    "来來",
    "巌巖",
    "荘莊",
    "尭堯",
    "遥遙",
    "凛凜",
    "弥彌",
    "穂穗",
    "会會",
    "聡聰",
    "顕顯",
    "稲稻",
    "晋晉",
    "為爲",
    "豊豐",
    "鴎鷗",
    "騨驒",
    "塩鹽",
    "験驗",
)
VARIANT_OF = {v: group[0] for group in VARIANT_GROUPS for v in group[1:] if v != group[0]}
VARIANT = re.compile("[" + "".join(VARIANT_OF) + "]")

NUMERAL_RUN = re.compile("[〇零一二三四五六七八九十百千]+")
DIGIT = {ch: i for i, ch in enumerate("〇一二三四五六七八九")} | {"零": 0}
UNIT = {"十": 10, "百": 100, "千": 1000}

# 丁目 / 番地 / 番 / 号 after a number (and の between two), written as a dash
ADDRESS_MARK = re.compile(r"(\d)(?:丁目|番地の|番地|番の|番|号|の(?=\d))")
DASHES = "\\-‐‑‒–—―−ー﹣"
NAME_SEPARATORS = "・·‧=゠"
# between two numbers: a run with a dash is one dash, a run of spaces one space (placeholders first)
DASH_BETWEEN = re.compile(f"(\\d)\\s*[{DASHES}][\\s{DASHES}]*(?=\\d)")
SPACE_BETWEEN = re.compile(r"(\d)\s+(?=\d)")
SEPARATOR = re.compile(f"[\\s{NAME_SEPARATORS}{DASHES}]+")
SEPARATOR_NOT_LONG_VOWEL = re.compile(f"[\\s{NAME_SEPARATORS}{DASHES.replace('ー', '')}]+")


def _number(run: str) -> str:
    """一九七九 → 1979 (digit by digit), 十一 → 11, 二千二十六 → 2026 (with units)."""
    if not any(ch in UNIT for ch in run):
        return "".join(str(DIGIT[ch]) for ch in run)
    total, current = 0, 0
    for ch in run:
        if ch in UNIT:
            total += (current or 1) * UNIT[ch]
            current = 0
        else:
            current = current * 10 + DIGIT[ch]
    return str(total + current)


def normalise(text: str, mark: str = "") -> str:
    """The one written form of a text (see the module's docstring): 「北部一丁目１２番１１号」 →
    北部1-12-11, 「髙橋　ﾊﾅ」 → 高橋ハナ, 「一九七九 年 十一 月」 → 1979年11月. With `mark`, a run of
    separators is kept as that one character instead of removed (word boundaries: ガルシア・マリア)."""
    s = INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    s = VARIANT.sub(lambda m: VARIANT_OF[m.group()], s)
    s = NUMERAL_RUN.sub(lambda m: _number(m.group()), s)
    s = ADDRESS_MARK.sub("\\1-", s)
    s = SPACE_BETWEEN.sub("\\1\ue001", DASH_BETWEEN.sub("\\1\ue000", s))
    if mark:
        s = SEPARATOR_NOT_LONG_VOWEL.sub(mark, s.replace("ー", ""))
    else:
        s = SEPARATOR.sub("", s)
    return s.replace("\ue000", "-").replace("\ue001", " ")


def hiragana(text: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in text)


def name_parts(name: str) -> list[str]:
    """A name's parts: split at spaces and at ・ or = (ガルシア・マリア, the generator's foreign names)."""
    return [p for p in re.split(f"[\\s{NAME_SEPARATORS}]+", unicodedata.normalize("NFKC", name)) if p]


# --- one-character name parts ---------------------------------------------------------------------
HONORIFICS = ("さん", "くん", "ちゃん", "様", "氏", "君")
# 続柄 as coordinators write them (normalised: 三男 is 3男)
KINSHIP = tuple(
    sorted(
        {
            normalise(w)
            for w in (
                "本人 世帯主 配偶者 夫 妻 長男 次男 三男 四男 五男 長女 次女 三女 四女 五女 息子 娘 子 長子 末子 "
                "養子 孫 父 母 祖父 祖母 義父 義母 兄 姉 弟 妹 嫁 婿 叔父 叔母 伯父 伯母 甥 姪 同居人"
            ).split()
        },
        key=len,
        reverse=True,
    )
)
AGE = r"(?:\(\d{1,3}(?:歳|才)?\)|\d{1,3}(?:歳|才))"
WORD_CHAR = "[\u3005\u3006\u4e00-\u9fff\uf900-\ufaff\u30a1-\u30fa]"  # kanji, 々, katakana: X continues a word


def short_name_pattern(chars: Iterable[str]) -> re.Pattern | None:
    """Where a one-character name part (花, 楓, 林, イ) stands for a person in a normalised text.

    Alone it is an ordinary character (花火, 森林), so it counts only in a person's context:
    followed by an honorific (花さん), by an age (花(16), 花16歳), or right after a 続柄 (次女花,
    長男学が) when it does not go on into a word (次女花火 is not a name)."""
    alts = "".join(sorted({re.escape(c) for c in chars if len(c) == 1}))
    if not alts:
        return None
    honorific = "|".join(HONORIFICS)
    x = f"[{alts}]"
    # the character first (a text is scanned at the speed of one character class), then what precedes it
    after_kinship = "|".join(f"(?<={re.escape(k)}{sep}{x})" for k in KINSHIP for sep in ("", ":"))
    return re.compile(
        f"{x}(?:(?=(?:{honorific}|{AGE}))"  # 花さん, 花(16)
        f"|(?:{after_kinship})(?!{WORD_CHAR}))"  # 次女花が, 次女:花
    )


def kana_word_pattern(words: Iterable[str]) -> re.Pattern | None:
    """Katakana name parts (ガルシア, ラン) as words of their own: not inside a longer katakana word
    (ラン in プラン is no name). Matched on `normalise(text, mark="・")`, where name separators remain."""
    alts = "|".join(sorted({re.escape(w) for w in words if w}, key=len, reverse=True))
    return re.compile(f"(?<![ァ-ヺ])(?:{alts})(?![ァ-ヺ])") if alts else None


# --- dates ------------------------------------------------------------------------------------------
# on normalised text: 1979-11-15, 1979/11/15, 1979.11.15, 1979年11月15日, 79/11/15, 昭和54年11月15日,
# S54.11.15, 昭和元年…, 19791115 (spaces and kanji numerals are gone by then)
DATE_LIKE = re.compile(r"(?:\d{1,4}|元)[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?!\d)|\d{8}(?!\d)")
ERA_BEFORE = re.compile(r"(?:明治|大正|昭和|平成|令和|[MTSHRmtshr])$")
TWO_DIGIT_YEAR = re.compile(r"(\d{2})([-/.年].*)")


def _word_before(text: str, at: int) -> bool:
    return at > 0 and text[at - 1].isascii() and text[at - 1].isalnum()


def dates_in(flat: str) -> Iterator[tuple[date, int, int]]:
    """Every calendar date written in a normalised text, with where it is written; a two-digit year
    (79/11/15) is read both as 1979 and as 2079 (or 1926 and 2026)."""
    for m in DATE_LIKE.finditer(flat):
        start = m.start()
        if start and flat[start - 1].isdigit():
            continue  # inside a longer number
        era = ERA_BEFORE.search(flat, max(0, start - 2), start)
        if era and len(era.group()) == 1 and _word_before(flat, era.start()):
            era = None  # the last letter of a word (ms12.1.3), not S12
        candidate = (era.group() if era else "") + m.group()
        if candidate.isdigit():
            candidate = f"{candidate[:4]}-{candidate[4:6]}-{candidate[6:]}"
        two = TWO_DIGIT_YEAR.fullmatch(candidate)
        if two and (
            _word_before(flat, start)
            or flat.startswith(".", m.end())
            or (era is None and start and flat[start - 1] == ".")
        ):
            continue  # part of a word, a hash or a version number (a1d00.3.20, 1.12.3.4), not 79/11/15
        forms = [f"{century}{two[1]}{two[2]}" for century in ("19", "20")] if two else [candidate]
        for form in forms:
            try:
                yield parse_date(form), start - (len(era.group()) if era else 0), m.end()
            except DateError:
                continue
