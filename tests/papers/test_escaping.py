"""Every HTML part is escaped (issue 12): notice.html.j2 and routing.html.j2 include the text
templates, which were compiled without autoescape, so a link, a tracking image or a hidden span in
an action text, a rule title or an SMTP error reached the HTML part verbatim.

Each template is rendered with the context the engine really gives it (captured during a night, a
routing notice and a lifecycle notice), with every string in it replaced by hostile markup: no raw
tag survives in an HTML part, and the text parts keep the text as written (no entities)."""

from __future__ import annotations

import re

import jinja2
import pytest

from engine.config import load_config
from engine.papers.agenda import TEMPLATES, environment
from engine.papers.notices import Notice, queue_notice
from tests.helpers.conference import cycle
from tests.helpers.paths import ROOT

HOSTILE = (
    '<img src=http://x/t.gif><a href="http://x/?a=1&b=2">開く</a>'
    "<span style=display:none>隠し</span><script>alert(1)</script> \" ' & 1;2,3"
)
RAW_TAG = re.compile(r"<\s*(img|a|span|script)\b", re.IGNORECASE)
CONFIG_TEMPLATES = ROOT / "configs" / "templates"


def poisoned(value):
    """The same structure with every string replaced by HOSTILE (keys and numbers kept)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, str):
        return HOSTILE
    if isinstance(value, dict):
        return {k: poisoned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [poisoned(v) for v in value]
    return value


@pytest.fixture
def contexts(town, workspace, rules, cfg, monkeypatch):
    """name -> the keyword arguments of each render the engine did."""
    seen: dict[str, list[dict]] = {}
    original = jinja2.Template.render

    def recording(self, *args, **kwargs):
        seen.setdefault(self.name, []).append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", recording)
    cycle(town, workspace, rules, cfg)  # agendas, the coordinator's version, a routing notice (HYOTAI)
    queue_notice(
        town,
        cfg,
        Notice(
            key="reminder:1:due",
            kind="reminder",
            recipient="houkatsu_chuo",
            title="期日のお知らせ",
            case_id="C-2026-00001",
            lines=["役割: 訪問", "前回の送信エラー: 550 rejected"],
            answer="engine done 1",
        ),
    )
    monkeypatch.setattr(jinja2.Template, "render", original)
    return seen


def template_names() -> set[str]:
    names = {p.name for p in TEMPLATES.iterdir() if p.suffix == ".j2"}
    if CONFIG_TEMPLATES.is_dir():
        names |= {p.name for p in CONFIG_TEMPLATES.iterdir() if p.suffix == ".j2"}
    return names


def test_every_template_is_rendered_with_hostile_values_and_html_parts_keep_no_raw_tag(contexts, rules):
    env = environment(load_config(ROOT / "configs", rules))
    names = template_names()
    assert names - set(contexts) == set(), "a template the engine never rendered here: give it a context"
    html_seen = 0
    for name in sorted(names):
        for kwargs in contexts[name]:
            out = env.get_template(name).render(**poisoned(kwargs))
            if name.endswith(".html.j2"):
                html_seen += 1
                assert not RAW_TAG.search(out), (name, RAW_TAG.search(out).group(0))
                assert "&lt;img src=http://x/t.gif&gt;" in out and "&lt;span style=display:none&gt;" in out, name
                assert "&#34;" in out and "&#39;" in out and "&amp;" in out, name
            elif name.endswith(".txt.j2"):
                assert HOSTILE in out, name  # the text part as written: readable, no entities
                assert "&lt;" not in out and "&amp;" not in out and "&#" not in out, name
    assert html_seen >= 4


def test_a_hostile_action_text_reaches_the_notice_html_part_escaped(town, cfg):
    """The path the issue found: an action text (or an SMTP error) in a reminder."""
    import json

    queue_notice(
        town,
        cfg,
        Notice(
            key="reminder:9:due",
            kind="reminder",
            recipient="houkatsu_chuo",
            title="期日のお知らせ",
            case_id="C-2026-00009",
            lines=[f"役割: {HOSTILE}"],
        ),
    )
    parts = json.loads(town.execute("SELECT parts FROM outbox WHERE message_key = 'reminder:9:due'").fetchone()[0])
    assert not RAW_TAG.search(parts["html"]), parts["html"]
    assert "&lt;a href=&#34;http://x/?a=1&amp;b=2&#34;&gt;" in parts["html"]
    assert HOSTILE in parts["text"]
