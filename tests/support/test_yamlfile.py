"""The safe YAML reader's size limit: a file over MAX_YAML_BYTES is refused before it is parsed,
with the file named and a located problem (a 32 MB directory of places took minutes and 750 MB)."""

from __future__ import annotations

from engine.support.yamlfile import MAX_YAML_BYTES, read_yaml


def test_a_file_over_the_limit_is_refused_with_its_size_before_parsing(tmp_path):
    path = tmp_path / "resources.yaml"
    entry = "  - id: p{}\n    name: 居場所\n"
    with path.open("w", encoding="utf-8") as f:
        f.write("places:\n")
        i = 0
        while f.tell() <= MAX_YAML_BYTES:
            f.write(entry.format(i))
            i += 1
    problems = []
    assert read_yaml(path, problems) is None
    (p,) = problems
    assert p.file == str(path) and "MB" in p.message and "read up to 4 MB" in p.message


def test_a_file_under_the_limit_is_read(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("places:\n  - id: a\n", encoding="utf-8")
    problems = []
    doc = read_yaml(path, problems)
    assert problems == [] and doc.data == {"places": [{"id": "a"}]}
