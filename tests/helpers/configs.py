"""A copy of the shipped configs/ with text edits, and the problems load_config reports for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import ConfigInvalid, load_config
from tests.helpers.paths import CONFIG_DIR


def configs(tmp_path: Path, *edits: tuple[str, str, str], delete: tuple[str, ...] = (), under: str = "configs") -> Path:
    """Copy the shipped configs/ into tmp_path and apply text edits (file, old, new).

    `old` must occur exactly once, so that an edit can never silently hit a comment instead."""
    d = tmp_path / under
    shutil.copytree(CONFIG_DIR, d)
    for name, old, new in edits:
        p = d / name
        text = p.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{name}: {old!r} occurs {text.count(old)} times"
        p.write_text(text.replace(old, new), encoding="utf-8")
    for name in delete:
        (d / name).unlink()
    return d


def line_of(path: Path, fragment: str) -> int:
    """1-based line number of the only line of `path` containing `fragment`."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line]
    assert len(hits) == 1, f"{path.name}: {fragment!r} on lines {hits}"
    return hits[0]


def problems(d: Path, rules) -> list:
    with pytest.raises(ConfigInvalid) as exc:
        load_config(d, rules)
    return exc.value.problems


def only_problem(d: Path, rules):
    ps = problems(d, rules)
    assert len(ps) == 1, [str(p) for p in ps]
    return ps[0]


def name(p) -> str:
    return Path(p.file).name


# rules/indicators.yaml edited so that a DV support measure no longer raises the DV flag (dv_signal
# counts DV consultations only): the household is still DV-locked by the record (issue 12)
DV_MEASURE_RAISES_NO_FLAG = (
    "rules/indicators.yaml",
    "      any:\n        - record: dv_support_measure\n        - record: {code: consultation, value: DV}",
    "      record: {code: consultation, value: DV}",
)
