"""Recipients only from the registry: against a real SMTP server on loopback, every envelope recipient and
every To/Cc/Bcc header is a registry address, whatever a queued row, a template or a configuration
tries; an unusable message is marked failed with a clear reason."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from email.utils import getaddresses

import pytest

from engine.config import ConfigInvalid, load_config
from engine.outbox import send_pending
from engine.outbox.queue import queue
from engine.rules.loader import load_rules
from engine.workflows.cycle import nightly_cycle
from tests.helpers.paths import ROOT
from tests.helpers.smtp import smtp_config
from tests.helpers.town import ON, add_household, person

RULES = load_rules(ROOT / "configs" / "rules")
CFG = load_config(ROOT / "configs", RULES)
EVIL = "evil@attacker.example"


def registry(cfg) -> set[str]:
    return {a.email for a in cfg.agencies.values()} | {cfg.lifecycle.coordinator_email}


def assert_only_registry(handler, cfg) -> None:
    allowed = registry(cfg)
    for rcpts, raw in handler.messages:
        assert set(rcpts) <= allowed, rcpts  # the SMTP envelope
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for header in ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"):
            addresses = [addr for _, addr in getaddresses([str(v) for v in msg.get_all(header, [])])]
            assert set(addresses) <= allowed, (header, addresses, msg["X-Engine-Key"])
        assert msg.get_all("To") == [rcpts[0]] and not msg.get_all("Cc") and not msg.get_all("Bcc")
        head = raw.decode("ascii", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
        address_lines = [line for line in head if re.match(r"(?i)(resent-)?(to|cc|bcc):", line)]
        assert address_lines == [f"To: {rcpts[0]}"], address_lines  # raw, before any parser's reading


@pytest.fixture
def night(conn, workspace):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(conn, "HHIKI", person(48, "世帯主", sex="M"), area="北部")
    nightly_cycle(conn, workspace, RULES, CFG, ON)
    return conn


def enqueue(conn, **row) -> None:
    """A row in the outbox as the engine's own writers put it there (papers.queue, committed)."""
    with conn:
        assert queue(conn, **row)


def status_of(conn, key: str) -> tuple[str, str | None]:
    return conn.execute("SELECT status, last_error FROM outbox WHERE message_key = ?", (key,)).fetchone()


SMUGGLED = (
    f"To: {EVIL}\r\nCc: {EVIL}\r\nBcc: {EVIL}\r\n\r\n本文\r\n.\r\nMAIL FROM:<a@attacker.example>\r\nRCPT TO:<{EVIL}>\r\nDATA\r\n"
    f"To: {EVIL}\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\nQUIT\r\n"
)


def test_a_queued_row_for_an_agency_not_in_the_registry_is_failed_not_sent(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    enqueue(
        night,
        key="notice:attack:unknown",
        kind="notice",
        agency_id="attacker",
        subject="x",
        parts={"text": "x", "html": "<p>x</p>"},
    )
    enqueue(
        night,
        key="notice:attack:injected-id",
        kind="notice",
        agency_id=f"houkatsu_chuo\r\nBcc: {EVIL}",
        subject="x",
        parts={"text": "x", "html": "x"},
    )
    result = send_pending(night, cfg, workspace)
    assert result.sent == len(handler.messages) > 0 and result.failed == 2
    for key in ("notice:attack:unknown", "notice:attack:injected-id"):
        status, error = status_of(night, key)
        assert status == "failed" and "agencies.yaml" in error, (key, status, error)
    assert_only_registry(handler, cfg)


def test_an_agency_removed_from_the_registry_after_queueing_gets_nothing(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    removed = cfg.model_copy(update={"agencies": {k: a for k, a in cfg.agencies.items() if k != "houkatsu_chuo"}})
    keys = [k for (k,) in night.execute("SELECT message_key FROM outbox WHERE agency_id = 'houkatsu_chuo'")]
    assert keys
    result = send_pending(night, removed, workspace)
    assert result.sent == len(handler.messages) > 0
    assert all(
        status_of(night, k)[0] == "failed" and "no longer in agencies.yaml" in status_of(night, k)[1] for k in keys
    )
    assert cfg.agencies["houkatsu_chuo"].email not in {r for rcpts, _ in handler.messages for r in rcpts}
    assert_only_registry(handler, removed)


def test_a_changed_address_is_read_from_the_registry_at_send_time(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    new = cfg.agencies["houkatsu_chuo"].model_copy(update={"email": "houkatsu-chuo-2@city.example.lg.jp"})
    moved = cfg.model_copy(update={"agencies": {**cfg.agencies, "houkatsu_chuo": new}})
    send_pending(night, moved, workspace)
    delivered = {r for rcpts, _ in handler.messages for r in rcpts}
    assert new.email in delivered and cfg.agencies["houkatsu_chuo"].email not in delivered
    assert_only_registry(handler, moved)


def test_header_lines_and_smtp_commands_inside_the_parts_add_no_recipient(night, workspace, sink):
    handler, port = sink
    cfg = smtp_config(RULES, port)
    ascii_smuggle = SMUGGLED.replace("本文", "body")  # pure ASCII: stays 7bit, line for line, in the DATA stream
    enqueue(
        night,
        key="notice:attack:parts",
        kind="notice",
        agency_id="houkatsu_chuo",
        subject=f"To: {EVIL} Bcc: {EVIL}",
        parts={"text": ascii_smuggle, "html": SMUGGLED, "ics": SMUGGLED, "ics_method": "REQUEST"},
    )
    enqueue(
        night,
        key="notice:attack:parts-jp",
        kind="notice",
        agency_id="houkatsu_chuo",
        subject="x",
        parts={"text": SMUGGLED, "html": SMUGGLED},
    )
    pending = night.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    result = send_pending(night, cfg, workspace)
    assert result.sent == pending == len(handler.messages)  # no smuggled second message
    assert status_of(night, "notice:attack:parts")[0] == "sent"
    assert_only_registry(handler, cfg)


def test_a_custom_templates_folder_cannot_add_recipients(conn, workspace, sink, tmp_path):
    handler, port = sink
    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    (conf / "templates").mkdir(exist_ok=True)
    for name in ("agenda.txt.j2", "agenda.html.j2", "notice.txt.j2", "routing.txt.j2"):
        (conf / "templates" / name).write_text(
            f"To: {EVIL}\nCc: {EVIL}\nBcc: {EVIL}\nSubject: 差し替え\n\n"
            + SMUGGLED.replace("\r\n", "\n")
            + "{{ 1 }}\n",
            encoding="utf-8",
        )
    (conf / "templates" / "agenda.ics.j2").write_text(
        f"BEGIN:VCALENDAR\nMETHOD:REQUEST\nATTENDEE:mailto:{EVIL}\nEND:VCALENDAR\n", encoding="utf-8"
    )
    local = load_config(conf, RULES)
    assert local.templates_dir == conf / "templates"
    cfg = local.model_copy(update={"mail": smtp_config(RULES, port).mail})
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn,
        "HYOTAI",
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )
    nightly_cycle(conn, workspace, RULES, cfg, ON)
    result = send_pending(conn, cfg, workspace)
    assert result.sent == len(handler.messages) >= 3 and result.failed == 0
    bodies = [
        "".join(
            p.get_content()
            for p in email.message_from_bytes(raw, policy=email.policy.default).walk()
            if p.get_content_maintype() == "text"
        )
        for _, raw in handler.messages
    ]
    assert all(f"Bcc: {EVIL}" in b for b in bodies)  # the templates' text is in every body…
    assert_only_registry(handler, cfg)  # …and in no header, no envelope


@pytest.mark.parametrize(
    "field",
    [
        "email",  # agencies.yaml
        "coordinator_email",  # lifecycle.yaml
        "sender",  # mail.yaml: the From header
    ],
)
@pytest.mark.parametrize(
    "value",
    [f"houkatsu@city.example.lg.jp, {EVIL}", f"houkatsu@city.example.lg.jp\r\nBcc: {EVIL}", f"中央包括 <{EVIL}>"],
)
def test_a_configuration_cannot_name_a_second_recipient(field, value, tmp_path):
    import yaml

    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    file, path = {
        "email": ("agencies.yaml", ("agencies", 0, "email")),
        "coordinator_email": ("lifecycle.yaml", ("coordinator_email",)),
        "sender": ("mail.yaml", ("sender",)),
    }[field]
    doc = yaml.safe_load((conf / file).read_text(encoding="utf-8"))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    (conf / file).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigInvalid):
        load_config(conf, RULES)


HEADER_ATTACKS = ["subject", "ics_method", "conference_name"]


@pytest.fixture(params=HEADER_ATTACKS)
def injected(request, night, workspace, sink):
    """A message whose headers would carry a line break, queued with the night's agendas:
    (the SMTP sink, the configuration to send with, the message's key)."""
    handler, port = sink
    cfg, key = _inject(request.param, night, workspace, port)
    assert key and status_of(night, key)[0] == "pending"
    return handler, cfg, key


def _inject(how: str, night, workspace, port):
    cfg = smtp_config(RULES, port)
    if how == "subject":
        enqueue(
            night,
            key="notice:attack:subject",
            kind="notice",
            agency_id="houkatsu_chuo",
            subject=f"議題\r\nBcc: {EVIL}",
            parts={"text": "x", "html": "x"},
        )
        return cfg, "notice:attack:subject"
    if how == "ics_method":
        enqueue(
            night,
            key="notice:attack:ics",
            kind="notice",
            agency_id="houkatsu_chuo",
            subject="議題",
            parts={
                "text": "x",
                "html": "x",
                "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
                "ics_method": f"REQUEST\r\nBcc: {EVIL}",
            },
        )
        return cfg, "notice:attack:ics"
    # conference.yaml: the local name of the 支援会議 (free text) goes into every agenda's Subject
    conference = cfg.conference.model_copy(
        update={"names": {"support": f"支援会議\nBcc: {EVIL}", "multi": "重層的支援会議"}}
    )
    bad = cfg.model_copy(update={"conference": conference})
    add_household(
        night,
        "H8050B",
        person(81, "世帯主", ("care_level", "要介護3"), sex="M"),
        person(50, "子", sex="M"),
        area="港",
        changed_seq=1,
    )
    night.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    night.commit()
    nightly_cycle(night, workspace, RULES, bad, ON)
    key = night.execute(
        "SELECT message_key FROM outbox WHERE subject LIKE '%Bcc:%' ORDER BY message_key LIMIT 1"
    ).fetchone()[0]
    return bad, key


def test_a_line_break_in_a_header_never_adds_a_recipient(injected, night, workspace):
    handler, cfg, key = injected
    for _ in range(2):  # two dispatches
        send_pending(night, cfg, workspace)
    assert_only_registry(handler, cfg)


def test_a_message_with_a_line_break_in_a_header_is_failed_with_a_reason_and_the_rest_goes_out(
    injected, night, workspace
):
    handler, cfg, key = injected
    others = night.execute(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND subject NOT LIKE '%Bcc:%' AND parts NOT LIKE '%Bcc:%'"
    ).fetchone()[0]
    result = send_pending(night, cfg, workspace)
    status, error = status_of(night, key)
    assert status == "failed" and error and ("line" in error.lower() or "改行" in error), (status, error)
    assert (
        result.sent == others == len(handler.messages)
        and not night.execute("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')").fetchone()
    )
    again = send_pending(night, cfg, workspace)
    assert again.sent == 0 and again.possible_duplicates == 0
