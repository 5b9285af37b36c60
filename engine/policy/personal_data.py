"""Is there personal data of a household in a piece of free text? (outcome files, decline reasons)

Free text typed by coordinators goes out by e-mail (actions, reasons), so it is refused when it
holds a member's name, its kana (katakana or hiragana), the address, or a birth date. Both sides
are written one way first (engine/policy/normalise.py: NFKC, zero-width characters removed,
variant kanji folded, kanji numerals, 丁目/番/号 and dashes, separators), so 髙橋 is 高橋,
「テスト町１－１」 is テスト町1-1 and 一九七九年十一月十五日 is 1979-11-15. What counts:

- a full name or kana, with or without spaces, and a name part of 2 characters or more; a katakana
  part (ガルシア of ガルシア・マリア) only as a word of its own (ラン is not in プラン);
- a one-character part (花, 楓, 林) only in a person's context: 花さん, 花（16）, 次女 花 (花火 is a word);
- the address, its street part (港4丁目16-7), its house number (4-16-7) and its 番-号 (16番7号)
  when they have 3 digits or more, never inside a longer number (2026-12-11 is not 12-11);
- a birth date in any form the engine reads, spaced, in kanji numerals, or with a 2-digit year.

The tokens are the household's only (a handful of persons): one pass of a few regular expressions
per text, whatever the size of the town.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import NamedTuple

from engine.policy.normalise import dates_in, hiragana, kana_word_pattern, name_parts, normalise, short_name_pattern

KATAKANA = re.compile(r"[ァ-ヺー]+")


class PersonalTokens(NamedTuple):
    text: re.Pattern | None  # names, kanji parts, hiragana, address forms: on normalise(text)
    kana_words: re.Pattern | None  # katakana parts as words: on normalise(text, mark="・")
    short_names: re.Pattern | None  # one-character parts in context: on normalise(text)
    births: frozenset[date]


def _literal(token: str) -> str:
    """A token that begins or ends with a number matches only a whole number (12-11 not in 2026-12-11)."""
    left = r"(?<![\d-])" if token[0].isdigit() else ""
    right = r"(?!\d)" if token[-1].isdigit() else ""
    return left + re.escape(token) + right


def _alternation(tokens: set[str]) -> re.Pattern | None:
    tokens = {t for t in tokens if t}
    return re.compile("|".join(_literal(t) for t in sorted(tokens, key=len, reverse=True))) if tokens else None


def address_tokens(address: str) -> set[str]:
    """The address, its street part after the city (港4-16-7), its house number (4-16-7) and 番-号 (16-7)."""
    flat = normalise(address)
    out = {flat}
    for m in re.finditer(r"[市区町村郡]", flat):
        rest = flat[m.end() :]
        if len(rest) >= 4 and not rest.isdigit():
            out.add(rest)
    number = re.search(r"(\D*?)(\d+(?:-\d+)+)", flat[flat.find("市") + 1 :])
    if number:
        groups = number[2].split("-")
        house = "-".join(groups[:3])
        out |= {number[1] + house, house, "-".join(groups[1:3]) if len(groups) >= 3 else house}
    return {t for t in out if sum(ch.isdigit() for ch in t) >= 3 or not t[0].isdigit()}


def personal_tokens(conn: sqlite3.Connection, household_id: str) -> PersonalTokens:
    """What identifies the household's members (names and their parts, kana, address), and their birth dates."""
    text: set[str] = set()
    kana_words: set[str] = set()
    short: set[str] = set()
    births: set[date] = set()
    for name, kana, birth in conn.execute(
        "SELECT name, kana, birth_date FROM persons WHERE household_id = ?", (household_id,)
    ):
        for full in (name, kana):
            if not full:
                continue
            text |= {normalise(full), normalise(hiragana(full))}
            for part in name_parts(full):
                flat = normalise(part)
                if len(flat) == 1:
                    short |= {flat, hiragana(flat)}
                elif KATAKANA.fullmatch(part):
                    kana_words.add(flat)
                else:
                    text.add(flat)
            # hiragana of the space-separated parts (かえで), as written before; not of ・ parts (まい of ティ・マイ)
            for part in full.replace("\u3000", " ").split():
                flat = normalise(hiragana(part))
                if len(flat) >= 2 and flat != normalise(part):
                    text.add(flat)
        if birth:
            births.add(date.fromisoformat(birth))
    row = conn.execute("SELECT address FROM households WHERE household_id = ?", (household_id,)).fetchone()
    if row and row[0]:
        text |= address_tokens(row[0])
    return PersonalTokens(
        _alternation(text), kana_word_pattern(kana_words), short_name_pattern(short), frozenset(births)
    )


def holds_personal_data(text: str, tokens: PersonalTokens) -> bool:
    flat = normalise(text)
    if tokens.text and tokens.text.search(flat):
        return True
    if tokens.short_names and tokens.short_names.search(flat):
        return True
    if tokens.kana_words and tokens.kana_words.search(normalise(text, mark="・")):
        return True
    return any(d in tokens.births for d, _, _ in dates_in(flat))
