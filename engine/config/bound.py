"""The rules and configuration a command or a server works on, each loaded (and checked) once,
when first used: the CLI's Inputs and the web's WebContext both build on it."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path


class Bound:
    """`rules_dir` and `config_dir`, with `rules` and `config` loaded from them when first asked."""

    rules_dir: Path | None
    config_dir: Path | None

    @cached_property
    def rules(self):
        from engine.rules.loader import load_rules

        return load_rules(self.rules_dir)

    @cached_property
    def config(self):
        from engine.config.load import load_config

        return load_config(self.config_dir, self.rules)
