"""No internal code reaches a reader: every e-mail of a small demo's outbox (120 simulated days, so
lead requests, withdrawals, reminders, checkpoint questions, routing notices, digests and agendas)
holds no ASCII code word of the vocabulary (record codes, arrears kinds, watch results, case states,
conference types), no rule id and no agency id.

Allowed ASCII: case and meeting ids, URLs, e-mail addresses, the answer link's mark, message keys
(the digest names a failed mail by the key `engine outbox --retry` takes), and in the .ics part the
RFC 5545 property names and parameters (only the text values and the CN of people are read)."""

from __future__ import annotations

import email
import email.policy
import re
from collections import defaultdict
from pathlib import Path

import pytest

from engine.store.lifecycle import STATE_LABELS
from engine.support.vocabulary import ARREARS_KINDS, CODES, WATCH_RESULT_LABELS
from tests.helpers.demo import demo

ALLOWED = re.compile(
    r"https?://\S+"  # URLs (the answer link, the console)
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|\bC-\d{4}-\d{5}\b|\bM-\d{8}-\d{4}-[A-Z]\b"  # case and meeting ids
    r"|\[\[回答用リンク\]\]"
    r"|\b[a-z_]+:[\w:.-]+"  # message keys (reminder:12:due, agenda:M-…:AGENCY:v2)
)
ICS_TEXT = ("SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT")  # the properties people read


def code_words(rules, cfg) -> dict[str, str]:
    """Each forbidden word and what it is."""
    words = {c: "record code" for c in CODES} | {k: "arrears kind" for k in ARREARS_KINDS}
    words |= {k: "watch result" for k in WATCH_RESULT_LABELS} | {s: "case state" for s in STATE_LABELS}
    words |= {t: "conference type" for t in cfg.conference.names}
    words |= {r: "rule id" for r in rules.flags} | {r.id: "lead rule id" for r in cfg.lead_rules}
    words |= {a: "agency id" for a in cfg.agencies}
    return {w: what for w, what in words.items() if not w.isdigit()}  # the rule 8050 is the 8050問題 of its title


def readable_text(msg) -> str:
    """What a person reads: the subject, the text and HTML parts (without tags), the .ics texts."""
    out = [str(msg["Subject"])]
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/plain":
            out.append(part.get_content())
        elif kind == "text/html":
            out.append(re.sub(r"<[^>]*>", " ", part.get_content()))
        elif kind == "text/calendar":
            unfolded = re.sub(r"\r?\n[ \t]", "", part.get_content())
            for line in unfolded.splitlines():
                name, _, value = line.partition(":")
                prop = name.split(";")[0].upper()
                if prop in ICS_TEXT:
                    out.append(value)
                out += re.findall(r";CN=\"?([^;:\"]*)", name)
    return "\n".join(out)


def findings(text: str, words: dict[str, str]) -> list[str]:
    text = ALLOWED.sub(" ", text)
    return sorted({f"{w} ({words[w]})" for w in re.findall(r"[A-Za-z0-9_]+", text) if w in words})


@pytest.fixture(scope="module")
def outbox(tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    """kind → .eml name → the code words it holds."""
    ws = tmp_path_factory.mktemp("words") / "ws"
    demo(ws, "--households", "1000", "--seed", "42", days=120)  # this town has a case routed to 要対協
    return {"mails": sorted((ws / "outbox").glob("*.eml"))}


@pytest.fixture(scope="module")
def found(outbox, rules, cfg) -> dict[str, dict[str, list[str]]]:
    words = code_words(rules, cfg)
    by_kind: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for path in outbox["mails"]:
        msg = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
        kind = str(msg["X-Engine-Key"]).split(":")[0]
        by_kind[kind][path.name] = findings(readable_text(msg), words)
    return by_kind


def test_the_demo_mails_every_kind_of_notice(found):
    assert {"agenda", "lead_request", "reminder", "checkpoint", "routing", "digest"} <= set(found), sorted(found)


@pytest.mark.parametrize("kind", ["lead_request", "lead_withdrawn", "reminder", "checkpoint", "routing", "digest"])
def test_notices_hold_no_code_word_nor_id(found, kind):
    bad = {name: words for name, words in found.get(kind, {}).items() if words}
    assert not bad, f"{len(bad)} {kind} e-mails with code words, e.g. {sorted(bad.items())[:3]}"


def test_agendas_hold_no_code_word_nor_id(found):
    bad = {name: words for name, words in found["agenda"].items() if words}
    assert not bad, f"{len(bad)} agendas with code words, e.g. {sorted(bad.items())[:3]}"


def test_the_scan_finds_what_it_looks_for(rules, cfg):
    words = code_words(rules, cfg)
    assert findings("滞納 kokuho 12か月（規則 elder_care）houkatsu_kita 様 8050世帯", words) == [
        "elder_care (lead rule id)",
        "houkatsu_kita (agency id)",
        "kokuho (arrears kind)",
    ]
    assert findings("事案 C-2026-00001 会議 M-20261204-1000-S http://x/a/houkatsu_kita a@b.example", words) == []
    assert findings("メール agenda:M-20261204-1000-S:houkatsu_kita:v2 の送信失敗", words) == []
    assert findings("安定（stable）", words) == ["stable (watch result)"]
