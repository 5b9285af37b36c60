"""The documentation stays true to the repository: the README stays short, every relative link
(and its #anchor) resolves, every engine/, tests/ and bench/ path written exists, and every
`make X` names a target of the Makefile."""

import re
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 10_000  # bytes
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
PATH = re.compile(r"(?<![\w./-])(?:engine|tests|bench)/[\w./*-]*")
MAKE = re.compile(r"\bmake((?:\s+[A-Z_]+=\S*)*)\s+([a-z][\w-]*)")
TARGET = re.compile(r"^([A-Za-z][\w.-]*)[ \t]*:(?!=)", re.M)


def ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def prose(text: str) -> str:
    """The text without fenced code and code spans: what a Markdown renderer turns into links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def code(text: str) -> list[str]:
    """Fenced blocks, indented blocks and code spans: where commands are written."""
    parts = FENCE.findall(text) + CODE_SPAN.findall(text)
    parts += [line for line in text.splitlines() if line.startswith("    ")]
    return parts


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move reference text to docs/ (limit {README_LIMIT})"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_paths_exist(page: Path):
    missing = []
    for written in PATH.findall(page.read_text(encoding="utf-8")):
        path = written.rstrip(".,;:")
        found = any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
        if not found:
            missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist: {sorted(set(missing))}"


def test_paths_are_found():
    """The path test above does find paths (a regex that matched nothing would pass silently)."""
    text = "see engine/support/clock.py, `tests/helpers/reference.py`; not /x/engine/y nor engine.db"
    assert PATH.findall(text) == ["engine/support/clock.py", "tests/helpers/reference.py"]


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_make_targets_exist(page: Path):
    targets = set(TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))
    named = {m.group(2) for part in code(page.read_text(encoding="utf-8")) for m in MAKE.finditer(part)}
    assert named <= targets, f"{page.name} names make targets the Makefile lacks: {sorted(named - targets)}"


def test_slug_and_make_patterns():
    assert slug("Record codes (records.csv `code` column)") == "record-codes-recordscsv-code-column"
    assert slug("ENGINE_NOW: a pinned clock") == "engine_now-a-pinned-clock"
    assert [m.group(2) for m in MAKE.finditer("make demo HOUSEHOLDS=5; make WORKSPACE=/tmp/x serve")] == [
        "demo",
        "serve",
    ]
