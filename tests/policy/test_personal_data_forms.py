"""Issue 12: personal data written another way is still personal data.

Each form below was mailed in reminders (an outcome's action text) although the guard caught
half-width kana, NFD, removed spaces, hiragana and 和暦: variant kanji, a part of a ・-separated
name, a one-character given name next to an age or 続柄, an address in 丁目/番/号 or kanji numerals,
a birth date spaced, in kanji numerals or with a 2-digit year, and a zero-width space in a name.
Both the guard (engine/policy/personal_data.py) and the privacy scan (tests/helpers/privacy.py)
write the text and the data one way (engine/policy/normalise.py) and must find each of them; the
near misses (花 in 花火, an unrelated number or date) must pass both.
"""

from __future__ import annotations

import csv
import json
import time
from datetime import date

import pytest

from engine.casework.handshake import HandshakeError, decline
from engine.casework.outcome import OutcomeInvalid
from engine.policy.personal_data import holds_personal_data, personal_tokens
from tests.helpers.casework import LEAD, MEETING_DAY, d, decide, open_cases, plan_text
from tests.helpers.privacy import Scan, engine_vocabulary, town_secrets, trie_pattern

# the household's members (name, kana, birth date) and address, as the silos' extracts write them
MEMBERS = (
    ("山﨑 一郎", "ヤマサキ イチロウ", "1979-11-15"),
    ("高橋 花", "タカハシ ハナ", "2010-06-20"),
    ("渡邉 恵", "ワタナベ メグミ", "1950-03-03"),
    ("齋藤 健", "サイトウ ケン", "1952-04-04"),
    ("ガルシア・マリア", "ガルシア・マリア", "1985-01-02"),
    ("グエン・ティ・ラン", "グエン・ティ・ラン", "1990-02-03"),
)
ADDRESS = "みどり市北部1丁目12-11"

LEAKS = {
    "variant_kanji_taka": "髙橋さん宅を訪問し状況を確認",  # stored 高橋
    "variant_kanji_saki": "山崎さんの通院に同行",  # stored 山﨑
    "variant_kanji_watanabe": "渡辺さんの介護認定を申請",  # stored 渡邉
    "variant_kanji_saitou": "斎藤さんに服薬を確認",  # stored 齋藤
    "nakaguro_family": "ガルシアさんの就労を支援",
    "nakaguro_given": "ランさんと面談",
    "one_char_given_with_age": "次女 花（16）の登校を支援",
    "one_char_given_after_kinship": "次女花が不登校のため家庭訪問",
    "address_dashes": "北部1-12-11の自宅を訪問",
    "address_ban_go": "12番11号の自宅を訪問",
    "address_kanji_numerals": "北部一丁目十二番十一号を訪問",
    "birth_spaced": "1979 年 11 月 15 日生まれの方の支援",
    "birth_kanji_numerals": "一九七九年十一月十五日生の方",
    "birth_two_digit_year": "79/11/15 生の方の受診",
    "birth_wareki_kanji_numerals": "昭和五十四年十一月十五日生",
    "zero_width_space": "高\u200b橋さんと面談",
    "halfwidth_kana": "ﾀｶﾊｼさんと面談",
}
# caught by the guard (it knows the household) but not by the town-wide scan, for which a bare 12-11
# would be any pair of numbers: the scan finds 12番11号 as written, and the house number 1-12-11
SCAN_SKIPS = {"address_ban_go"}

NEAR_MISSES = {
    "one_char_in_a_word": "花火大会の案内を届ける",
    "kinship_then_a_word": "次女花火大会に参加予定",
    "one_char_elsewhere": "生け花教室を紹介",
    "katakana_part_inside_a_word": "支援プランを作成",
    "area_and_chome_only": "北部1丁目の集会所で面談",
    "other_house_number": "北部1-12-13の集会所で面談",
    "numbers_inside_a_date": "2021-12-11の記録を確認",
    "other_date": "1979年11月16日の記録を確認",
    "other_two_digit_date": "79/11/16 の記録を確認",
    "age_without_a_name": "本人（82）の介護サービスを調整",
}


def _household(conn) -> None:
    """H1 (convened) gets the members and address above: its two persons renamed, the rest added."""
    pids = [p for (p,) in conn.execute("SELECT person_id FROM persons WHERE household_id = 'H1' ORDER BY person_id")]
    for i, (name, kana, birth) in enumerate(MEMBERS):
        if i < len(pids):
            conn.execute(
                "UPDATE persons SET name = ?, kana = ?, birth_date = ? WHERE person_id = ?",
                (name, kana, birth, pids[i]),
            )
        else:
            conn.execute(
                "INSERT INTO persons VALUES (?,?,?,?,?,?,?,?)", (f"TF{i}", "H1", name, kana, birth, "F", "子", "日本")
            )
    conn.execute("UPDATE households SET address = ? WHERE household_id = 'H1'", (ADDRESS,))
    conn.commit()


@pytest.fixture
def case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    _household(conn)
    return cid, mid


def _action(text: str) -> str:
    return plan_text(roles=((LEAD, json.dumps(text, ensure_ascii=False), "2027-01-29"),))


@pytest.mark.regression("issue 12: personal data written another way")
@pytest.mark.parametrize("form", list(LEAKS))
def test_an_action_text_with_personal_data_written_another_way_is_refused(conn, workspace, rules, cfg, case, form):
    cid, mid = case
    with pytest.raises(OutcomeInvalid) as err:
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, _action(LEAKS[form]))
    assert [p.field for p in err.value.problems] == ["roles.action"]
    assert "personal data" in str(err.value)
    assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 0


@pytest.mark.parametrize("form", list(NEAR_MISSES))
def test_near_misses_are_accepted(conn, workspace, rules, cfg, case, form):
    cid, mid = case
    result = decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, _action(NEAR_MISSES[form]))
    assert result.status == "lead_pending"


@pytest.mark.regression("issue 12: personal data written another way")
def test_a_decline_reason_with_a_variant_kanji_name_is_refused(conn, workspace, rules, cfg, case):
    cid, mid = case
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    with pytest.raises(HandshakeError):
        decline(conn, rules, cfg, cid, "髙橋さん宅は担当地区外のため", d("2026-12-07"), "tester")
    assert conn.execute("SELECT COUNT(*) FROM lead_requests WHERE status = 'declined'").fetchone()[0] == 0


def test_the_guard_stays_fast_on_a_long_text(conn, workspace, rules, cfg, case):
    """It runs for every text of every outcome: linear in the text, over one household's tokens."""
    tokens = personal_tokens(conn, "H1")
    text = "本人宅を訪問し、次女の登校状況と 2026-12-11 の受診結果を確認する。" * 2000  # ~70,000 characters
    started = time.perf_counter()
    assert not holds_personal_data(text, tokens)
    assert time.perf_counter() - started < 2.0


# --- the privacy scan --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scanner(tmp_path_factory) -> Scan:
    """The privacy scan's scanner on a town of this one household (and the engine's vocabulary mask)."""
    town = tmp_path_factory.mktemp("town")
    with open(town / "persons.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"])
        for i, (name, kana, birth) in enumerate(MEMBERS):
            w.writerow([f"P{i}", "H1", name, kana, birth, "F", "子", "日本"])
    (town / "households.csv").write_text(f"household_id,area,address\nH1,北部,{ADDRESS}\n", encoding="utf-8")
    secrets = town_secrets(town, {date(2026, 11, 27)})
    return Scan(secrets, trie_pattern(secrets.kinds), trie_pattern(engine_vocabulary(secrets.kinds)))


def _hits(scanner: Scan, text: str) -> list:
    probe = Scan(scanner.secrets, scanner.pattern, scanner.vocabulary)
    probe.text("probe", text, "probe")
    return probe.hits


@pytest.mark.regression("issue 12: personal data written another way")
@pytest.mark.parametrize("form", sorted(set(LEAKS) - SCAN_SKIPS))
def test_the_privacy_scan_finds_personal_data_written_another_way(scanner, form):
    assert _hits(scanner, LEAKS[form])


def test_the_privacy_scan_finds_ban_go_as_written(scanner):
    assert _hits(scanner, "12番11号の自宅を訪問") and not _hits(scanner, "12番13号の自宅を訪問")


@pytest.mark.regression("CI of stop 28: a birth date across two ids in Prefect's database")
def test_the_privacy_scan_masks_ids_not_the_dates_beside_them(scanner):
    """Prefect's SQLite index pages hold run ids side by side: 19791115 read across two of them is chance.
    A birth date next to an id, or in an id-like text that is not one, is still found."""
    across = "592cbb0f-0c02-4384-8928-6ef507197911" + "1501a24a-55af-7c14-895d-a8bbabc0e1f2"
    assert _hits(scanner, across) == []
    assert _hits(scanner, "592cbb0f-0c02-4384-8928-6ef5071979 19791115") != []
    assert _hits(scanner, "id 592cbb0f-0c02-4384-8928-6ef507197911 生年月日 19791115") != []
    assert _hits(scanner, "6ef50719791115a24a5a") != []
    digest = "9f86d081884c7d65" + "19791115" + "2b0b822cd15d6c15b0f00a08"
    assert _hits(scanner, digest) == [] and _hits(scanner, "19791115" + "0" * 40) != []


@pytest.mark.parametrize("form", list(NEAR_MISSES))
def test_the_privacy_scan_passes_the_near_misses(scanner, form):
    assert _hits(scanner, NEAR_MISSES[form]) == []
