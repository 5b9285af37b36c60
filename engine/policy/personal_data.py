"""Is there personal data of a household in a piece of free text? (outcome files, decline reasons)

Free text typed by coordinators goes out by e-mail (actions, reasons), so it is refused when it
holds a member's name (also its parts, a one-character given name with an honorific, kana in
katakana or hiragana), the address or its street part, or a birth date written in any form the
engine reads. Both sides are NFKC-normalised (full-width digits, half-width kana) without spaces
or dashes, so 「テスト町１－１」 matches テスト町1-1.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from datetime import date

from engine.support.dates import DateError, parse_date


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII, half-width kana → full-width), without spaces or dashes' variants."""
    return re.sub(r"[\s\-‐―−ー－]", "", unicodedata.normalize("NFKC", text))


def personal_tokens(conn: sqlite3.Connection, household_id: str) -> tuple[set[str], set[date]]:
    """Normalised strings that identify the household's members (names and their parts, kana,
    address), and their birth dates."""
    out: set[str] = set()
    births: set[date] = set()
    for name, kana, birth in conn.execute(
        "SELECT name, kana, birth_date FROM persons WHERE household_id = ?", (household_id,)
    ):
        for text in (name, kana, hiragana(kana or "")):
            if text:
                out.add(normalise(text))
                for part in text.replace("\u3000", " ").split():
                    # a one-character given name (楓) only with an honorific: alone it is an ordinary word
                    out |= {normalise(part)} if len(part) >= 2 else {normalise(part + h) for h in HONORIFICS}
        if birth:
            births.add(date.fromisoformat(birth))
    (address,) = conn.execute("SELECT address FROM households WHERE household_id = ?", (household_id,)).fetchone() or (
        None,
    )
    if address:
        flat = normalise(address)
        out.add(flat)
        # the street part without the town's name (港4丁目16-7), if it says more than a number
        for m in re.finditer(r"[市区町村郡]", flat):
            rest = flat[m.end() :]
            if len(rest) >= 4 and not rest.isdigit():
                out.add(rest)
    return {t for t in out if t}, births


HONORIFICS = ("さん", "くん", "ちゃん", "様", "氏", "君")


def hiragana(text: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in text)


# dates as people write them: 1944-4-1, 1944/04/01, 1944.4.1, 19440401, 1944年4月1日, 昭和19年4月1日, S19.4.1
DATE_LIKE = re.compile(r"(?:明治|大正|昭和|平成|令和|[MTSHR])?\d{1,4}(?:[-/.年]\d{1,2}[-/.月]\d{1,2}日?)|\d{8}")


def holds_personal_data(text: str, tokens: tuple[set[str], set[date]]) -> bool:
    names, births = tokens
    flat = normalise(text)
    if any(t in flat for t in names):
        return True
    for m in DATE_LIKE.finditer(unicodedata.normalize("NFKC", text)):
        candidate = m.group(0)
        if candidate.isdigit() and len(candidate) == 8:
            candidate = f"{candidate[:4]}-{candidate[4:6]}-{candidate[6:]}"
        try:
            if parse_date(candidate) in births:
                return True
        except DateError:
            continue
    return False
