"""bench/city_config.py: the capacity a 50,000-household town needs is the shipped configuration
with a few named edits; each edit still matches the shipped files once, and the result loads."""

from __future__ import annotations

import pytest

from bench import city_config
from engine.config import load_config


def test_the_city_configuration_is_the_shipped_one_with_more_slots_and_a_faster_pace(tmp_path, rules, cfg):
    out = city_config.write(tmp_path / "city")
    city = load_config(out, rules)
    slots = {k: len(v) for k, v in city.conference.slots.items()}
    shipped = {k: len(v) for k, v in cfg.conference.slots.items()}
    assert slots == {"support": shipped["support"] + 6, "multi": shipped["multi"] + 2}
    assert city.conference.cases_per_meeting == 12 and cfg.conference.cases_per_meeting == 8
    assert city.triage.settings.assessments_per_week == city_config.PACE != cfg.triage.settings.assessments_per_week
    assert city.triage.rules == cfg.triage.rules and city.lead_rules == cfg.lead_rules and city.agencies == cfg.agencies


def test_an_edit_that_no_longer_matches_the_shipped_files_stops_the_bench(tmp_path, monkeypatch):
    monkeypatch.setattr(city_config, "EDITS", (("conference.yaml", "no such text\n", "x"),))
    with pytest.raises(SystemExit, match="matches 0 times"):
        city_config.write(tmp_path / "city")


def test_the_support_heavy_city_moves_the_extra_multi_slots_to_support_meetings(tmp_path, rules, cfg):
    city = load_config(city_config.write(tmp_path / "city2", support_heavy=True), rules)
    slots = city.conference.slots
    shipped = {k: len(v) for k, v in cfg.conference.slots.items()}
    assert {k: len(v) for k, v in slots.items()} == {"support": shipped["support"] + 10, "multi": shipped["multi"]}
    times = [(s.weekday, s.time) for s in slots["support"]]
    assert len(times) == len(set(times)) == 12  # no two 支援会議 at the same hour
