"""Templates from the configuration folder are rendered in Jinja2's sandbox: editing configs/templates/
must not run code as the operator (issue 12: an unsandboxed environment ran os.system)."""

from __future__ import annotations

import jinja2
import pytest

from engine.config import load_config
from engine.papers.agenda import environment
from tests.helpers.configs import configs

PAYLOADS = (
    "{{ lipsum.__globals__['os'].system('touch PWNED') }}",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% set x = [] %}{{ x.append(1) }}",
)


def overridden(tmp_path, rules, templates: dict[str, str]) -> jinja2.Environment:
    """The papers' environment of a configuration folder whose templates/ holds `templates`."""
    folder = configs(tmp_path)
    (folder / "templates").mkdir()
    for name, text in templates.items():
        (folder / "templates" / name).write_text(text, encoding="utf-8")
    return environment(load_config(folder, rules))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_template_in_the_config_folder_cannot_reach_python(tmp_path, rules, payload, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = overridden(tmp_path, rules, {"notice.txt.j2": payload})
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.get_template("notice.txt.j2").render()
    assert not (tmp_path / "PWNED").exists()


def test_the_shipped_templates_still_render_in_the_sandbox(cfg):
    env = environment(cfg)
    assert isinstance(env, jinja2.sandbox.ImmutableSandboxedEnvironment)
    for name in env.list_templates():
        if not name.startswith("web/"):  # the web pages' own environment: tests/web/test_app.py
            env.get_template(name)  # every template compiles in the sandbox


MODEL_PAYLOADS = (
    "{{ a.__class__.__init__.__globals__ }}",
    "{{ a.model_copy.__globals__ }}",
    "{{ a.model_config.__class__.__subclasses__() }}",
    "{{ a.cases.append(1) }}",
    "{{ a.__dict__ }}",
)


@pytest.mark.parametrize("payload", MODEL_PAYLOADS)
def test_a_template_cannot_reach_python_through_the_agenda_it_is_given(tmp_path, rules, payload, monkeypatch):
    """The papers' environment reads a model's declared fields without the sandbox's slower checks
    (engine/papers/environment.py); anything else of the model still goes through them."""
    from engine.papers.agenda import Agenda

    monkeypatch.chdir(tmp_path)
    env = overridden(
        tmp_path, rules, {"notice.txt.j2": "{{ a.meeting_id }}", "agenda.txt.j2": "{{ a.meeting_id }}" + payload}
    )
    agenda = Agenda.model_construct(meeting_id="M-1", cases=[])
    assert env.get_template("notice.txt.j2").render(a=agenda) == "M-1"  # a field: read
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.get_template("agenda.txt.j2").render(a=agenda)
