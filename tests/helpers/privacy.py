"""The privacy scan's scanner (tests/reliability/test_privacy_scan.py): a town's secrets (names,
kana, addresses, birth dates, read back from its CSVs) searched in every text that leaves the
database, twice: as the text is stored, and written the one way the engine's personal-data guard
writes both sides (engine/policy/normalise.py), so that 髙橋 for 高橋, ﾀｶﾊｼ, 高<U+200B>橋, 北部一丁目十二番
十一号, 一九七九年十一月十五日, 79/11/15 and 次女 花（16） are found too. tests/policy/
test_personal_data_forms.py checks the scanner on each of these forms without the 18-second run.
"""

from __future__ import annotations

import csv
import email
import email.policy
import html
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from engine.policy.normalise import dates_in, hiragana, name_parts, normalise, short_name_pattern
from engine.policy.personal_data import address_tokens
from engine.support.dates import DateError, parse_date, to_wareki
from tests.helpers.paths import ROOT

CONFIG = ROOT / "configs"

# Tokens shorter than 2 characters are skipped: a 1-character family or given name (林, 森, 清, 楓,
# 李, 金) or kana (イ, レ) is an ordinary character of Japanese text and would "hit" every agenda;
# The engine's own free-text check treats a 1-character given name as personal only with an honorific.
# 2-character tokens (佐藤, 和子, ユイ, レン) are kept, so the threshold is as low as it can be; the
# only 2-character false hits are inside the engine's own katakana words, masked below.
MIN_TOKEN = 2
# Hiragana readings are checked from 4 characters: 2-character hiragana (あい, まい, はな, ゆい)
# are grammar and ordinary words in every Japanese sentence the engine writes, and so are some of 3
# (えいた in お伝えいただく, the answer links' wording): readings of 3 are searched in katakana only.
MIN_HIRAGANA = 4
SEPARATORS = re.compile(r"[ \u3000・]")  # family/given separators the generator uses (space, 全角 space, ・)
# The engine's own fixed katakana words (from its code, templates, configuration and rules) are
# masked before scanning: a 2-character name part inside one of them is not a leak (ヤン — 楊 — in
# ヤングケアラー, マイ in リマインダー). A word that is part of a secret is never masked.
KATAKANA_WORD = re.compile(r"[ァ-ヶー]{3,}")
# Random identifiers are masked before the scan, keeping their length: Prefect's database stores
# its run, task and event ids as UUID text, and SQLite's index pages put two ids side by side, so a
# compact birth date turns up across them by chance (…-6ef507198405 01a24a5a-… holds 19840501).
# Digests (32 hex characters or more, with a letter) are masked for the same reason. Only whole ids
# are masked: a date written beside one is still found.
UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{32,}"
)


def date_forms(d: date) -> set[str]:
    """Every way the engine (or a person) writes a birth date: ISO, slashes, 8 digits, 年月日, 和暦."""
    return {
        d.isoformat(),
        f"{d.year}/{d.month:02d}/{d.day:02d}",
        f"{d.year}/{d.month}/{d.day}",
        f"{d:%Y%m%d}",
        f"{d.year}年{d.month}月{d.day}日",
        to_wareki(d, "kanji"),
        to_wareki(d, "abbr"),
    }


@dataclass
class Secrets:
    kinds: dict[str, set[str]] = field(default_factory=dict)  # secret -> {"name", "kana", "address", "birth"}
    persons: int = 0
    households: int = 0
    ambiguous_births: int = 0  # birth dates also used as the date of some event: not checkable
    births: set[date] = field(default_factory=set)  # the checkable ones, found in any form by dates_in
    short_names: set[str] = field(default_factory=set)  # one-character name parts (花, 林, イ), in context only
    house_numbers: set[str] = field(default_factory=set)  # 2-14-3 of みどり市中央2丁目14-3, normalised
    _flat: Flat | None = None

    def add(self, text: str | None, kind: str, minimum: int = MIN_TOKEN) -> None:
        if text and len(text) >= minimum:
            self.kinds.setdefault(text, set()).add(kind)

    @property
    def flat(self) -> Flat:
        if self._flat is None:
            self._flat = Flat.of(self)
        return self._flat


@dataclass
class Flat:
    """The secrets written the guard's one way (normalise), for the normalised view of each text."""

    kinds: dict[str, set[str]]
    pattern: re.Pattern
    short: re.Pattern | None

    @classmethod
    def of(cls, s: Secrets) -> Flat:
        kinds: dict[str, set[str]] = {}
        for secret, k in s.kinds.items():
            if k != {"birth"}:  # dates: read by dates_in, whatever their form
                flat = normalise(secret)
                if "address" in k and flat[:1].isdigit() and flat.count("-") < 2:
                    continue  # 14番3号 is 14-3 here: any pair of numbers (the stored view finds 14番3号)
                if len(flat) >= MIN_TOKEN and (k != {"kana"} or len(flat) >= MIN_HIRAGANA or flat != hiragana(flat)):
                    kinds.setdefault(flat, set()).update(k)
        for number in s.house_numbers:
            kinds.setdefault(number, set()).add("address")
        return cls(kinds, trie_pattern(kinds), short_name_pattern(s.short_names))

    def hits(self, flat: str, births: set[date]) -> list[tuple[str, int, int]]:
        out = []
        for m in self.pattern.finditer(flat):
            secret, start, end = m.group(), m.start(), m.end()
            # a secret that begins or ends with a number is a whole number (2-14-3 not in 2026-2-14-3)
            if secret[0].isdigit() and start and (flat[start - 1].isdigit() or flat[start - 1] == "-"):
                continue
            if secret[-1].isdigit() and end < len(flat) and flat[end].isdigit():
                continue
            out.append((secret, start, end))
        if self.short:
            out += [(m.group(), m.start(), m.end()) for m in self.short.finditer(flat)]
        out += [(d.isoformat(), start, end) for d, start, end in dates_in(flat) if d in births]
        return out


def read_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))[1:]


def town_secrets(town: Path, event_dates: set[date]) -> Secrets:
    """Names, kana, addresses and birth dates of every row of the town's CSVs (bad rows included:
    the importer must not echo a rejected row's name either)."""
    s = Secrets()
    for row in read_rows(town / "persons.csv"):
        s.persons += 1
        name, kana, birth = row[2], row[3], row[4]  # same positions in every broken-row kind
        for text, kind in ((name, "name"), (kana, "kana")):
            s.add(text, kind)
            s.add(re.sub(r"[ \u3000]", "", text), kind)
            for part in [*SEPARATORS.split(text, maxsplit=1), *re.split(r"[ \u3000]", text), *name_parts(text)]:
                s.add(part, kind)
            s.short_names |= {p for p in map(normalise, name_parts(text)) if len(p) == 1}
        for text in (kana, re.sub(r"[ \u3000]", "", kana)):
            s.add(hiragana(text), "kana", MIN_HIRAGANA)
        for part in SEPARATORS.split(kana, maxsplit=1):
            s.add(hiragana(part), "kana", MIN_HIRAGANA)
        s.add(birth, "birth")  # as written in the extract (ISO or 和暦; also a broken date)
        try:
            d = parse_date(birth)
        except DateError:
            continue
        if d in event_dates:
            # The same text is also the date of a record, a meeting, a due day or today's clock:
            # a hit could not be told from a legitimate event date, so this birth date is not checked.
            s.ambiguous_births += 1
            s.kinds.pop(birth, None)
            continue
        for form in date_forms(d):
            s.add(form, "birth")
        s.births.add(d)
    for row in read_rows(town / "households.csv"):
        s.households += 1
        address, area = (row[2], row[1]) if len(row) == 3 else (row[-1], "")  # a broken row lacks the area
        s.add(address, "address")
        s.add(re.sub(r"^.+?市", "", address), "address")  # 中央2丁目14-3
        if area and area in address:
            s.add(address.split(area, 1)[1], "address", 4)  # the street part: 2丁目14-3
        # the house number as the guard reads it (2-14-3); a bare 番-号 (14-3) says nothing town-wide
        houses = {t for t in address_tokens(address) if t[0].isdigit() and t.count("-") >= 2}
        s.house_numbers |= houses
        for _, block, number in (h.split("-")[:3] for h in houses):
            # and 番-号 when written as such (14番3号): as a bare 14-3 it would be any pair of numbers
            for form in (f"{block}番{number}号", f"{block}番地{number}", f"{block}番地の{number}"):
                s.add(form, "address")
    return s


def trie_pattern(words) -> re.Pattern:
    """One regex shaped like a trie of all secrets: a 6 MB text is scanned in a few ms (a plain
    `s in text` per secret would take seconds per file)."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict) -> str:
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(build(trie))


JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def views(text: str) -> list[str]:
    """The text as stored, and with JSON \\uXXXX escapes and HTML entities resolved (Prefect stores
    JSON with ensure_ascii; a template might escape)."""
    out = [text]
    if "\\u" in text:
        out.append(JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text))
    if "&" in text:
        out.append(html.unescape(text))
    return out


def eml_text(raw: bytes) -> str:
    """Every header (decoded from RFC 2047) and every part (decoded from base64/QP) of a message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = [f"{k}: {v}" for k, v in msg.items()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        out += [f"{k}: {v}" for k, v in part.items()]
        content = part.get_content()
        out.append(content if isinstance(content, str) else content.decode("utf-8", "replace"))
    return "\n".join(out)


def engine_vocabulary(secrets) -> set[str]:
    words: set[str] = set()
    for path in [
        *(ROOT / "engine").rglob("*.py"),
        *(ROOT / "engine" / "templates").glob("*.j2"),
        *CONFIG.rglob("*.yaml"),
    ]:
        words |= set(KATAKANA_WORD.findall(path.read_text(encoding="utf-8")))
    return {w for w in words if not any(w in s for s in secrets)}


@dataclass
class Scan:
    secrets: Secrets
    pattern: re.Pattern
    vocabulary: re.Pattern | None = None
    blobs: int = 0
    files: int = 0
    bytes: int = 0
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (secret, where, context)
    by_source: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def kinds_of(self, secret: str) -> set[str]:
        """What a hit is: a secret as stored, a normalised one, a birth date, or a one-character name in context."""
        found = self.secrets.kinds.get(secret) or self.secrets.flat.kinds.get(secret)
        return found or ({"birth"} if re.fullmatch(r"\d{4}-\d\d-\d\d", secret) else {"name"})

    def text(self, where: str, text: str, source: str, *, allow: frozenset[str] = frozenset()) -> None:
        self.blobs += 1
        self.bytes += len(text.encode("utf-8", "replace"))
        self.by_source[source] = self.by_source.get(source, 0) + 1
        text = UUID.sub(lambda m: "〓" * len(m.group()), text)
        for view in views(text):
            if self.vocabulary is not None:
                view = self.vocabulary.sub(lambda m: "〓" * len(m.group()), view)
            for m in self.pattern.finditer(view):
                if not (self.secrets.kinds[m.group()] & allow):
                    self.hits.append((m.group(), where, view[max(0, m.start() - 30) : m.end() + 30]))
            flat = normalise(view)  # 髙橋, ﾀｶﾊｼ, 高<ZWSP>橋, 北部一丁目十二番十一号, 一九七九年…, 79/11/15, 花（16）
            for secret, start, end in self.secrets.flat.hits(flat, self.secrets.births):
                if not (self.kinds_of(secret) & allow):
                    self.hits.append((secret, where + " (normalised)", flat[max(0, start - 30) : end + 30]))

    def file(self, path: Path, root: Path, *, allow: frozenset[str] = frozenset()) -> None:
        self.files += 1
        raw = path.read_bytes()
        rel = str(path.relative_to(root))
        text = raw.decode("utf-8", "replace")
        if path.suffix == ".eml":
            # MIME boundaries are random digits (=====2526312019082025100==): a compact birth date
            # such as 20190820 turns up in them by chance, so they are masked before the scan
            boundaries = set(re.findall(r'boundary="([^"]+)"', text))
            decoded = eml_text(raw)
            for b in boundaries:
                text, decoded = text.replace(b, "〓"), decoded.replace(b, "〓")
            self.text(rel + " (decoded)", decoded, "file", allow=allow)
        self.text(rel, text, "file", allow=allow)
