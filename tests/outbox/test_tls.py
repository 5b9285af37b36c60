"""TLS that is checked (issue 12): STARTTLS and implicit TLS (SMTPS) verify the server's certificate
and host name against the system's CAs plus mail.yaml's ca_file, against real loopback servers
with certificates made in the test. A certificate that fails the check, a server that does not
offer STARTTLS, or a login configured without TLS: nothing is sent (not even the login), every
message stays pending without using up an attempt, and the reason is shown."""

from __future__ import annotations

import re
import shutil
import ssl

import pytest

from engine.casework.listing import outbox
from engine.outbox import send_pending
from engine.workflows.cycle import nightly_cycle
from tests.helpers.certs import EXPIRED_AT, make_ca, make_server
from tests.helpers.mail_checks import engine_cli
from tests.helpers.paths import ROOT
from tests.helpers.smtp import smtp_config, tls_sink
from tests.helpers.town import ON, add_household, elder_and_son

LOGIN = ("kaigi", "himitsu-123")
MODES = {"starttls": {"starttls": True}, "implicit": {"implicit_tls": True, "starttls": False}}


@pytest.fixture(scope="module")
def ca():
    return make_ca()


@pytest.fixture
def queued(conn, workspace, rules, cfg):
    add_household(conn, "H1", *elder_and_son(), area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    assert outbox(conn, "pending")[1]
    return conn


@pytest.fixture
def login_env(monkeypatch):
    monkeypatch.setenv("ENGINE_SMTP_USER", LOGIN[0])
    monkeypatch.setenv("ENGINE_SMTP_PASSWORD", LOGIN[1])
    return {"username_env": "ENGINE_SMTP_USER", "password_env": "ENGINE_SMTP_PASSWORD"}


def assert_nothing_sent(conn, result, handler, n: int, reason: str) -> None:
    """Nothing delivered and no login given; every message still pending, none used up an attempt
    or was marked sent, failed or possibly duplicated; the reason is shown and kept."""
    assert handler.messages == [] and handler.logins == []
    assert result.sent == 0 and result.failed == 0 and result.deferred == n
    assert reason in (result.server_unavailable or ""), result.server_unavailable
    counts, rows = outbox(conn)
    assert len(rows) == n and {r.status for r in rows} == {"pending"}
    assert sum(r.attempts for r in rows) == 0 and not any(r.possible_duplicate for r in rows)
    assert sum(1 for r in rows if r.last_error and reason in r.last_error) == 1  # one try, not one per message


# --- the good case: a certificate signed by the CA given as ca_file -----------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_of_the_ca_in_ca_file_is_accepted_with_the_login(
    mode, ca, queued, workspace, rules, tmp_path, login_env
):
    ca_file, _ = ca.write(tmp_path, "ca")
    server = make_server(ca).server_context(tmp_path, "server")
    with tls_sink(server, implicit=mode == "implicit", login=LOGIN) as (handler, port):
        cfg = smtp_config(rules, port, ca_file=ca_file, **MODES[mode], **login_env)
        n = len(outbox(queued, "pending")[1])
        result = send_pending(queued, cfg, workspace)
    assert result.sent == n == len(handler.messages) and result.server_unavailable is None
    assert handler.logins == [LOGIN]  # one connection for the run, the login over TLS


# --- certificates that fail the check: expired, self-signed, another host name -----------------------
BAD = {
    "expired": (lambda ca: make_server(ca, not_after=EXPIRED_AT), "certificate has expired"),
    "self-signed": (lambda ca: make_server(None), "self-signed certificate"),
    "wrong-host": (lambda ca: make_server(ca, names=("mail.example.lg.jp",)), "mismatch"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", BAD)
def test_a_certificate_that_fails_the_check_sends_nothing(bad, mode, ca, queued, workspace, rules, tmp_path, login_env):
    ca_file, _ = ca.write(tmp_path, "ca")  # the test CA is trusted: the self-signed one is not in it
    make, reason = BAD[bad]
    with tls_sink(make(ca).server_context(tmp_path, "server"), implicit=mode == "implicit", login=LOGIN) as (
        handler,
        port,
    ):
        cfg = smtp_config(rules, port, ca_file=ca_file, **MODES[mode], **login_env)
        n = len(outbox(queued, "pending")[1])
        result = send_pending(queued, cfg, workspace)
    assert_nothing_sent(queued, result, handler, n, reason)
    assert f"the certificate of 127.0.0.1:{port} was refused" in result.server_unavailable


def test_without_ca_file_a_certificate_of_a_private_ca_is_refused(ca, queued, workspace, rules, tmp_path):
    """The system's CAs alone do not know the municipality's CA: ca_file is what makes it trusted."""
    with tls_sink(make_server(ca).server_context(tmp_path, "server")) as (handler, port):
        n = len(outbox(queued, "pending")[1])
        result = send_pending(queued, smtp_config(rules, port, starttls=True), workspace)
    assert_nothing_sent(queued, result, handler, n, "unable to get local issuer certificate")
    assert "smtp.ca_file" in result.server_unavailable


# --- no login over an unencrypted connection ---------------------------------------------------------
def test_a_server_that_does_not_offer_starttls_gets_neither_login_nor_mail(queued, workspace, rules, login_env):
    """A server (or someone in between) that drops STARTTLS: the engine does not fall back to clear text."""
    with tls_sink(None, login=LOGIN) as (handler, port):  # takes a password in clear
        n = len(outbox(queued, "pending")[1])
        result = send_pending(queued, smtp_config(rules, port, starttls=True, **login_env), workspace)
    assert_nothing_sent(queued, result, handler, n, "does not offer STARTTLS")


def test_a_login_configured_without_tls_is_refused_at_send_time(queued, workspace, rules, login_env):
    with tls_sink(None, login=LOGIN) as (handler, port):  # takes a password in clear
        n = len(outbox(queued, "pending")[1])
        result = send_pending(queued, smtp_config(rules, port, starttls=False, **login_env), workspace)
    assert_nothing_sent(queued, result, handler, n, "TLS is off in mail.yaml but a login is configured")


def test_engine_send_shows_the_refused_certificate(ca, queued, workspace, tmp_path, monkeypatch):
    """Through the CLI: one line with the reason, exit 1, the messages stay queued."""
    monkeypatch.delenv("ENGINE_SMTP_USER", raising=False)
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    ca.write(configs, "municipal-ca")
    with tls_sink(make_server(ca, names=("mail.example.lg.jp",)).server_context(tmp_path, "server")) as (handler, port):
        (configs / "mail.yaml").write_text(
            "transport: smtp\nsender: shien-kaigi@city.example.lg.jp\n"
            f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  starttls: true\n  ca_file: municipal-ca.pem\n  timeout: 5\n",
            encoding="utf-8",
        )
        n = len(outbox(queued, "pending")[1])
        result = engine_cli(
            workspace, "send", "--force", "--config", str(configs), "--rules", str(ROOT / "configs" / "rules")
        )
    assert result.exit_code == 1 and handler.messages == []
    line = next(ln for ln in result.output.splitlines() if "was refused" in ln)
    assert "IP address mismatch" in line and "stay queued" in line
    assert len(outbox(queued, "pending")[1]) == n


def test_the_engine_context_verifies_certificate_and_host_name(rules):
    context = smtp_config(rules, 25, starttls=True).mail.smtp.tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_no_engine_module_turns_verification_off():
    """One context (Smtp.tls_context), always verifying: nothing in the engine switches the check off."""
    unverified = re.compile(
        r"CERT_NONE|CERT_OPTIONAL|_create_unverified_context|_create_stdlib_context|check_hostname\s*="
    )
    found = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in (ROOT / "engine").rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if unverified.search(line)
    ]
    assert found == []
