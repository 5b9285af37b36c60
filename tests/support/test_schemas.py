"""Editor schemas (`engine schema`, configs/schemas/): the shipped schemas are a fresh generation,
every shipped YAML file names its schema on its first line and validates against it, and broken
files do not (validated with jsonschema, reading YAML as yaml-language-server does: 1.2, no dates)."""

import json

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from engine.cli.main import app
from engine.config.schemas import HEADER, SCHEMA_DIR, schema_for, schema_texts
from tests.helpers.paths import CONFIG_DIR, RULES_DIR

runner = CliRunner()
SHIPPED = CONFIG_DIR / SCHEMA_DIR
YAML_FILES = sorted(CONFIG_DIR.glob("*.yaml")) + sorted(RULES_DIR.glob("*.yaml"))


class Yaml12(yaml.SafeLoader):
    """YAML as an editor's language server reads it: `2027-01-04` stays text."""


Yaml12.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def errors(schema_file: str, text: str) -> list[str]:
    schema = json.loads((SHIPPED / schema_file).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(yaml.load(text, Loader=Yaml12))]


def test_the_shipped_schemas_are_a_fresh_generation():
    fresh = schema_texts()
    shipped = {p.name: p.read_text(encoding="utf-8") for p in SHIPPED.glob("*.json")}
    assert shipped == fresh, "run `engine schema --out configs/schemas` and commit the result"
    assert len(fresh) == 13


def test_the_schemas_are_valid_json_schemas():
    for path in SHIPPED.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_shipped_file_names_its_schema_first_and_validates(path):
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == HEADER + schema_for(path)
    assert (path.parent / schema_for(path)).is_file()
    assert errors(schema_for(path).rsplit("/", 1)[1], text) == []


def edited(file: str, old: str, new: str) -> str:
    path = RULES_DIR / file.split("/", 1)[1] if file.startswith("rules/") else CONFIG_DIR / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{file}: {old!r} does not occur"
    return text.replace(old, new, 1)  # the first occurrence


SCHEMA = {"rules/indicators.yaml": "rules", "rules/flags.yaml": "rules"}

BROKEN = [
    ("agencies.yaml", "    member: true\n", "    member: true\n    phone: 0000\n", "Additional properties"),
    ("agencies.yaml", "silo: 介護", "silo: 介護保険", "is not one of"),
    ("conference.yaml", "min_severity: medium", "min_severity: 至急", "is not one of"),
    ("conference.yaml", "locked_codes: [dv_support_measure]", "locked_codes: [dv_measure]", "is not one of"),
    ("mail.yaml", "\ntransport: file", "\ntransport: fax", "is not one of"),
    ("rules/flags.yaml", "severity: high", "severity: 至急", "is not one of"),
    ("rules/indicators.yaml", "- record: care_level\n", "- record: care_levl\n", "is not valid under any"),
    ("rules/indicators.yaml", "age: {min: 75}", "age: {}", "is not valid under any"),
    ("rules/indicators.yaml", "      age: {max: 5}", "      age: {max: 5}\n      sex: F", "is not valid under any"),
    ("matching_rules.yaml", "    categories: [salon]\n", "    categories: [salon]\n    note: x\n", "Additional"),
]


@pytest.mark.parametrize("file,old,new,why", BROKEN, ids=[f"{b[0]}:{b[2][:20]}" for b in BROKEN])
def test_a_broken_file_does_not_validate(file, old, new, why):
    found = errors(f"{SCHEMA.get(file, file.removesuffix('.yaml'))}.schema.json", edited(file, old, new))
    assert found and any(why in e for e in found), found


ALIASES = [
    ("rules/flags.yaml", "severity: high", "severity: 高"),
    ("rules/indicators.yaml", "- record: care_level\n", "- record: 要介護・要支援認定\n"),
    ("conference.yaml", "min_severity: medium", "min_severity: 中"),
    ("conference.yaml", "locked_codes: [dv_support_measure]", "locked_codes: [DV等支援措置]"),
]


@pytest.mark.parametrize("file,old,new", ALIASES, ids=[a[2] for a in ALIASES])
def test_japanese_names_of_codes_validate(file, old, new):
    assert errors(f"{SCHEMA.get(file, file.removesuffix('.yaml'))}.schema.json", edited(file, old, new)) == []


def test_an_outcome_file_validates_with_japanese_names_and_not_with_unknown_keys():
    outcome = (
        "decision: 支援方針\nlead: houkatsu_kita\nconsent: 未取得\n"
        "roles:\n  - {agency: houkatsu_kita, action: 介護サービスの利用調整, due: 2026-12-15}\n"
    )
    assert errors("outcome.schema.json", outcome) == []
    assert errors("outcome.schema.json", outcome.replace("consent", "agreement")) != []


def test_engine_schema_writes_the_shipped_schemas(tmp_path):
    result = runner.invoke(app, ["schema", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 's' / 'rules.schema.json'}" in result.output and "ok: 13 schemas" in result.output
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "s").iterdir()}
    assert written == {p.name: p.read_text(encoding="utf-8") for p in SHIPPED.glob("*.json")}


def test_engine_schema_refuses_a_file_as_out(tmp_path):
    (tmp_path / "f").write_text("x")
    result = runner.invoke(app, ["schema", "--out", str(tmp_path / "f")])
    assert result.exit_code != 0 and "is a file; give a folder" in result.output
