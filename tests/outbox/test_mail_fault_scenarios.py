"""Mail faults over many dispatches: faults switched on and off at random never send a message twice
unless the engine marked it possible_duplicate; a batch hit by faults in the middle recovers; `engine
send` reports faults without a traceback."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from engine.outbox import retry, send_pending
from engine.workflows.cycle import nightly_cycle
from tests.helpers.faulty_smtp import Fault
from tests.helpers.mail_checks import (
    AGENCIES,
    DIGEST_DAY,
    T0,
    assert_in_digest,
    assert_no_silent_outcome,
    assert_shown,
    email_of,
    engine_cli,
    marked,
    queue_messages,
    row,
    run_until_done,
    smtp,
    statuses,
)
from tests.helpers.paths import ROOT
from tests.helpers.town import ON, add_household, person

# --- nothing twice: many dispatches with faults switched on and off ----------------------------------
RANDOM_FAULTS = {
    "raw": [
        Fault("greeting", code=421),
        Fault("greeting", "drop"),
        Fault("mail", code=451),
        Fault("mail", code=421),
        Fault("rcpt", code=451),
        Fault("rcpt", code=421),
        Fault("rcpt", code=550),
        Fault("data_cmd", code=451),
        Fault("data_cmd", code=554),
        Fault("data_cmd", "drop"),
        Fault("data_body", "drop"),
        Fault("data_end", code=451),
        Fault("data_end", code=421),
        Fault("data_end", code=554),
        Fault("data_end", "drop"),
        Fault("data_end", "drop", store=True),
        Fault("after_accept", "drop"),
    ],
    "aiosmtpd": [
        Fault("mail", code=451),
        Fault("mail", code=421),
        Fault("rcpt", code=451),
        Fault("rcpt", code=550),
        Fault("data_end", code=451),
        Fault("data_end", code=554),
        Fault("data_end", "drop"),
        Fault("data_end", "drop", store=True),
        Fault("after_accept", "drop"),
    ],
}
# faults where the server answers for certain: after recovery every message arrives exactly once
# (a connection closed before the body is certain too: the message goes again on a new one)
CERTAIN = [f for f in RANDOM_FAULTS["raw"] if f.action == "reply"] + [
    Fault("greeting", "drop"),
    Fault("after_accept", "drop"),
]


def churn(conn, cfg, workspace, server, menu: list[Fault], seed: int, rounds: int) -> list[str]:
    """`rounds` dispatches; before each, three new messages are queued and 0-2 faults switched on
    (random stage, position, repetition); now moves by 1 minute (inside every backoff), 20 minutes
    or 3 hours; every 7th round the failures are queued again. Then faults off, everything out.
    Returns the keys queued."""
    rnd = random.Random(seed)
    now, keys = T0, []
    for n in range(rounds):
        keys += queue_messages(conn, cfg, rnd.sample(AGENCIES, 3), prefix=f"r{n:02d}")
        server.plan.clear()
        if rnd.random() < 0.8:
            for f in rnd.sample(menu, rnd.choice((1, 1, 2))):
                server.plan.add(
                    replace(
                        f,
                        skip=rnd.randrange(4),
                        times=rnd.choice((1, 1, 2, None)),
                        rcpt=email_of(cfg, rnd.choice(AGENCIES))
                        if int(f.code) >= 500 and f.stage in ("rcpt", "data_cmd", "data_end")
                        else None,
                    )
                )
        before = server.plan.keys()
        due = {
            k
            for (k,) in conn.execute(
                "SELECT message_key FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
                (now.isoformat(),),
            )
        }
        send_pending(conn, cfg, workspace, now=now)
        assert (
            set((server.plan.keys() - before).keys()) <= due
        )  # only what was due: nothing before its next attempt, nothing already sent
        assert not [k for k, s in statuses(conn).items() if s == "sending"]
        if n % 7 == 6:
            retry(conn)  # the coordinator queues the failures again
        now += rnd.choice((timedelta(minutes=1), timedelta(minutes=20), timedelta(hours=3)))
    server.plan.clear()
    retry(conn)
    run_until_done(conn, cfg, workspace, now)
    return keys


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
def test_nothing_is_sent_twice_unmarked_over_many_dispatches_with_faults_on_and_off(kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    keys = churn(conn, c, workspace, server, RANDOM_FAULTS[kind], seed=5, rounds=40)
    got = server.plan.keys()
    assert set(statuses(conn).values()) == {"sent"} and set(got) == set(keys)
    duplicated = {k for k, n in got.items() if n > 1}
    assert duplicated <= marked(conn), f"unmarked duplicates: {duplicated - marked(conn)}"
    assert all(got[k] == 1 for k in keys if k not in marked(conn))


def test_faults_the_server_answers_for_certain_never_cause_a_duplicate(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    keys = churn(conn, c, workspace, server, CERTAIN, seed=11, rounds=40)
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)
    assert set(statuses(conn).values()) == {"sent"}


def test_without_faults_every_message_goes_exactly_once_however_often_dispatched(conn, workspace, cfg, start):
    server = start("aiosmtpd")
    c = smtp(cfg, server.port)
    keys = queue_messages(conn, c, AGENCIES)
    for i in range(10):
        send_pending(conn, c, workspace, now=T0 + timedelta(hours=i))
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


# --- the full scenario -------------------------------------------------------------------------------
@pytest.fixture
def town(conn):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(conn, "HHIKI", person(48, "世帯主", sex="M"), area="北部")
    return conn


def test_full_scenario_faults_in_the_middle_of_a_batch_then_recovery(town, workspace, cfg, rules, start):
    conn = town
    server = start("raw")
    c = smtp(cfg, server.port)
    nightly_cycle(conn, workspace, rules, c, ON)
    used = {a for (a,) in conn.execute("SELECT agency_id FROM outbox")}
    spare = [a for a in AGENCIES if a not in used]
    assert len(spare) >= 6
    notices = queue_messages(conn, c, spare[:6])
    order = [
        k
        for (k,) in conn.execute(
            "SELECT message_key FROM outbox WHERE status = 'pending' ORDER BY queued_at, message_key"
        )
    ]
    assert len(order) >= 8, order
    agency = dict(conn.execute("SELECT message_key, agency_id FROM outbox"))
    # run 1: the 3rd message's DATA gets 451; the 5th is dropped after its body (the server keeps it);
    # reconnecting for the 6th meets 421 in the greeting: the rest waits
    server.plan.add(
        Fault("data_end", code=451, skip=2),
        Fault("data_end", "drop", store=True, skip=4),
        Fault("greeting", code=421, skip=2),
    )
    first = send_pending(conn, c, workspace, now=T0)
    assert first.sent == 3 and "421" in first.server_unavailable
    assert [statuses(conn)[k] for k in order[:5]] == ["sent", "sent", "pending", "sent", "pending"]
    assert row(conn, order[2]).last_error.startswith("451") and not row(conn, order[2]).dup
    assert row(conn, order[4]).dup  # the server may have it: said so
    assert all(row(conn, k).status == "pending" and row(conn, k).attempts == 0 for k in order[5:])
    # run 2, two minutes later: the deferred ones wait for their backoff; one agency now rejects its mailbox
    victim = next(k for k in order[6:] if k in notices)  # its agency has no other message
    server.plan.clear()
    server.plan.add(
        Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", rcpt=email_of(c, agency[victim]), times=None)
    )
    second = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=2))
    assert second.failed == 1 and second.sent == len(order) - 6 - 1
    assert [k for k in order if statuses(conn)[k] == "pending"] == [order[2], order[4], order[5]]
    assert [server.plan.keys()[k] for k in order[2:6]] == [0, 1, 1, 0]
    # run 3, after the backoff: everything due goes
    third = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=10))
    assert third.sent == 3 and not [k for k, s in statuses(conn).items() if s == "pending"]
    # the coordinator sees the failure: outbox, audit log, the next digest
    assert_shown(conn, workspace, victim, 550)
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [victim], T0 + timedelta(hours=1))
    # in the end: each message delivered exactly once, or failed and shown, or possible_duplicate and shown
    got = server.plan.keys()
    for key in order:
        status, m = statuses(conn)[key], row(conn, key)
        if status == "failed":
            assert key == victim and got[key] == 0
        elif m.dup:
            assert status == "sent" and 1 <= got[key] <= 2
        else:
            assert status == "sent" and got[key] == 1, key
    assert marked(conn) == {order[4]}
    assert_no_silent_outcome(conn, server)
    listed = engine_cli(workspace, "outbox").output
    assert any(order[4] in ln and "重複の可能性" in ln for ln in listed.splitlines())


# --- the `engine send` command against the faults ----------------------------------------------------
def test_engine_send_reports_faults_without_traceback(conn, workspace, cfg, start, tmp_path, monkeypatch):
    server = start("raw")
    monkeypatch.delenv("ENGINE_SMTP_USER", raising=False)
    monkeypatch.delenv("ENGINE_SMTP_PASSWORD", raising=False)
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "mail.yaml").write_text(
        "transport: smtp\nsender: shien-kaigi@city.example.lg.jp\nmax_attempts: 5\n"
        f"smtp:\n  host: 127.0.0.1\n  port: {server.port}\n  starttls: false\n  timeout: 2\n",
        encoding="utf-8",
    )
    keys = queue_messages(conn, cfg, AGENCIES[:3])
    args = ["send", "--force", "--config", str(configs), "--rules", str(ROOT / "configs" / "rules")]
    server.plan.add(Fault("greeting", code=421, text="4.3.2 too busy", times=1))
    busy = engine_cli(workspace, *args)
    assert busy.exit_code == 1 and "421" in busy.output and "stay queued" in busy.output
    assert set(statuses(conn).values()) == {"pending"}
    conn.execute("UPDATE outbox SET next_attempt_at = NULL")  # the next day (the CLI dispatches on the real clock)
    conn.commit()
    server.plan.add(
        Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", rcpt=email_of(cfg, AGENCIES[1]), times=None)
    )
    sent = engine_cli(workspace, *args)
    assert sent.exit_code == 0 and "送信 2 通、延期 0 通、失敗 1 通" in sent.output
    assert server.plan.keys() == Counter({keys[0]: 1, keys[2]: 1})
    assert_shown(conn, workspace, keys[1], 550)
