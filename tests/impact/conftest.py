"""The impact tests compare leads, participants and meetings: the conference's own decisions, which
a triage rule would not reach for an arrears-only household (it is watched). Their configuration is
the shipped one without triage_rules.yaml; test_cli.py's config diff keeps triage on both sides."""

import pytest

from tests.helpers.conference import conference_only


@pytest.fixture
def cfg(cfg):
    return conference_only(cfg)
