"""mail.yaml's TLS settings (issue 12): a login configured without TLS and a CA file that cannot be
used are configuration problems naming mail.yaml, the line and the field; `config check` refuses
them in one line."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.config import load_config
from tests.helpers.certs import make_ca
from tests.helpers.configs import configs, line_of, name, only_problem
from tests.helpers.paths import RULES_DIR

NO_TLS = ("mail.yaml", "  starttls: true", "  starttls: false")


def test_a_login_without_tls_is_a_problem_naming_the_field(tmp_path, rules):
    d = configs(tmp_path, NO_TLS)
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == ("mail.yaml", line_of(d / "mail.yaml", "starttls: false"), "smtp.starttls")
    assert "smtp.username_env and smtp.password_env" in p.message and "unencrypted" in p.message
    assert "implicit_tls: true" in p.suggestion


def test_without_login_variables_tls_may_be_off(tmp_path, rules):
    """A relay on the municipality's own network that takes mail without a login."""
    d = configs(
        tmp_path,
        NO_TLS,
        ("mail.yaml", "  username_env: ENGINE_SMTP_USER\n", ""),
        ("mail.yaml", "  password_env: ENGINE_SMTP_PASSWORD\n", ""),
    )
    assert not load_config(d, rules).mail.smtp.encrypted


def test_implicit_tls_with_a_login_loads(tmp_path, rules):
    d = configs(tmp_path, NO_TLS, ("mail.yaml", "  port: 587", "  port: 465\n  implicit_tls: true"))
    smtp = load_config(d, rules).mail.smtp
    assert smtp.implicit_tls and smtp.port == 465 and not smtp.login_without_tls


def test_a_relative_ca_file_is_read_from_the_configuration_folder(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "  starttls: true", "  starttls: true\n  ca_file: certs/municipal-ca.pem"))
    make_ca().write(d / "certs", "municipal-ca")
    assert load_config(d, rules).mail.smtp.ca_file == d / "certs" / "municipal-ca.pem"


def test_a_missing_ca_file_is_a_problem_naming_file_and_field(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "  starttls: true", "  starttls: true\n  ca_file: municipal-ca.pem"))
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == ("mail.yaml", line_of(d / "mail.yaml", "ca_file:"), "smtp.ca_file")
    assert f"cannot read the CA file {d / 'municipal-ca.pem'}: no such file" in p.message


def test_a_ca_file_that_holds_no_certificate_is_a_problem(tmp_path, rules):
    d = configs(tmp_path, ("mail.yaml", "  starttls: true", "  starttls: true\n  ca_file: agencies.yaml"))
    p = only_problem(d, rules)
    assert p.field == "smtp.ca_file" and "holds no usable PEM certificate" in p.message


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_ca_file_that_is_not_a_regular_file_is_refused_without_opening_it(kind, tmp_path, rules):
    """A folder, or a FIFO (opening one would wait for a writer forever)."""
    d = configs(tmp_path, ("mail.yaml", "  starttls: true", "  starttls: true\n  ca_file: ca"))
    (d / "ca").mkdir() if kind == "folder" else os.mkfifo(d / "ca")
    p = only_problem(d, rules)
    assert p.field == "smtp.ca_file" and "not a regular file" in p.message


def test_config_check_refuses_a_login_without_tls_in_one_line(tmp_path):
    d = configs(tmp_path, NO_TLS)
    result = CliRunner().invoke(app, ["config", "check", "--config", str(d), "--rules", str(RULES_DIR)])
    assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit))
    line = next(ln for ln in result.output.splitlines() if "unencrypted" in ln)
    assert f"mail.yaml:{line_of(d / 'mail.yaml', 'starttls: false')}" in line and "smtp.starttls" in line
