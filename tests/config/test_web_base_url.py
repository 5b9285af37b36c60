"""web.yaml base_url starts every answer link in the e-mails: an address that is not one a browser
can open is refused by `engine config check`, not found out when agencies click a broken link."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.config.models import Web


@pytest.mark.parametrize(
    "url",
    [
        "https://exa mple.com",  # a space
        "https://example.com:99999",  # no such port
        "https://example.com:80a",
        "ftp://example.com",
        "https://user@example.com",
        "http://soudan.city.example.lg.jp",  # plain http to another machine
        "https://",
    ],
)
def test_an_address_no_browser_can_open_is_refused(url):
    with pytest.raises(ValidationError):
        Web(base_url=url)


@pytest.mark.parametrize(
    "url, kept",
    [
        ("https://soudan.city.example.lg.jp/", "https://soudan.city.example.lg.jp"),
        ("https://soudan.city.example.lg.jp:8443/engine", "https://soudan.city.example.lg.jp:8443/engine"),
        ("http://127.0.0.1:8300", "http://127.0.0.1:8300"),
        ("http://[::1]:8300", "http://[::1]:8300"),
    ],
)
def test_a_good_address_is_kept_without_its_last_slash(url, kept):
    assert Web(base_url=url).base_url == kept
