"""docs/commands.md, the command reference: every command's --help as `engine … --help` prints it.

    python -m engine.cli.reference            write docs/commands.md
    python -m engine.cli.reference --check    exit 1 if docs/commands.md differs from a fresh generation

The help is rendered by typer itself at a fixed width, without colour, in a child process started
from the repository root without the ENGINE_* variables: the defaults it shows (`configs/rules`, …)
and the line breaks are the same on every machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from engine.support.settings import PACKAGE_ROOT

DOC = PACKAGE_ROOT / "docs" / "commands.md"
WIDTH = 100
REGENERATE = ".venv/bin/python -m engine.cli.reference"
HEADER = f"""# Command reference

Generated from the `--help` of every command by `engine/cli/reference.py`; do not edit it by hand.
After changing a command or its help, regenerate it with `{REGENERATE}`
(tests/cli/test_commands_doc.py fails while this file is out of date).
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
UNSTABLE = ("TERMINAL_WIDTH", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "_TYPER_FORCE_DISABLE_TERMINAL")


def command_paths() -> list[list[str]]:
    """Every command and group as typed after `engine`, in the order `--help` lists them ([] is `engine`)."""
    import typer.main

    from engine.cli.main import app

    def walk(group, path: list[str]) -> list[list[str]]:
        out = [path]
        for name, command in group.commands.items():
            out += walk(command, [*path, name]) if hasattr(command, "commands") else [[*path, name]]
        return out

    return walk(typer.main.get_command(app), [])


def render() -> str:
    """The reference, rendered in this process (its environment decides the defaults shown)."""
    from typer.testing import CliRunner

    from engine.cli.main import app

    runner = CliRunner()
    sections = [HEADER]
    for path in command_paths():
        result = runner.invoke(app, [*path, "--help"], prog_name="engine", env={"COLUMNS": str(WIDTH)}, color=False)
        if result.exit_code != 0:
            raise RuntimeError(f"`engine {' '.join(path)} --help` exited with {result.exit_code}: {result.output}")
        text = "\n".join(line.rstrip() for line in ANSI.sub("", result.output).splitlines()).strip("\n")
        sections.append(f"## {' '.join(['engine', *path])}\n\n```text\n{text}\n```\n")
    return "\n".join(sections)


def generate() -> str:
    """The reference as it reads on any machine: rendered by a child process in a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_") and k not in UNSTABLE}
    env |= {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from engine.cli.reference import render; sys.stdout.write(render())"],
        cwd=PACKAGE_ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rendering the command reference failed:\n{proc.stderr}")
    return proc.stdout


def main(argv: list[str]) -> int:
    fresh = generate()
    if "--check" in argv:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != fresh:
            print(f"{DOC.relative_to(PACKAGE_ROOT)} is out of date: regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    Path(DOC).write_text(fresh, encoding="utf-8")
    print(f"wrote {DOC.relative_to(PACKAGE_ROOT)} ({fresh.count('## engine')} commands and groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
