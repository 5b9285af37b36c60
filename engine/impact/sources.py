"""Where a candidate comes from: a folder, or a git revision of the live folder (`git show
REV:path` of each of its files, written into a temporary folder that is removed afterwards)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.support.errors import EngineError

GIT_TIMEOUT_S = 30


class CandidateNotFound(EngineError):
    """--against names neither a folder nor a revision of the git repository holding the live files."""

    exit_code = 2


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError as err:
        raise CandidateNotFound("git is not installed: give --against a folder instead of a revision") from err


def rules_folder(folder: Path) -> Path:
    """A folder of rule files, or a configuration folder holding them in rules/."""
    return folder / "rules" if (folder / "rules").is_dir() else folder


@contextmanager
def candidate_folder(against: str, live: Path) -> Iterator[Path]:
    """The candidate for `live` (a rules or configuration folder): `against` itself if it is a
    folder, else the files of `live` at git revision `against`, in a temporary folder."""
    path = Path(against)
    if path.is_dir():
        yield path
        return
    live = Path(live).resolve()
    if not live.is_dir():
        raise CandidateNotFound(f"the live folder {live} is not found: pass --rules / --config")
    top = _git(live, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise CandidateNotFound(
            f"--against {against}: no such folder, and {live} is not in a git checkout, so it cannot be a revision; "
            "give the folder of the candidate files"
        )
    root = Path(top.stdout.decode().strip())
    rel = live.relative_to(root).as_posix()
    if against.startswith("-") or _git(root, "rev-parse", "--verify", "--quiet", f"{against}^{{commit}}").returncode:
        raise CandidateNotFound(
            f"--against {against}: no such folder, and no such revision in the git repository at {root} "
            "(try a commit id, a branch, a tag or HEAD~1)"
        )
    listed = _git(root, "ls-tree", "-r", "-z", "--name-only", against, "--", rel)
    names = [n for n in listed.stdout.decode().split("\0") if n]
    if listed.returncode != 0 or not names:
        raise CandidateNotFound(f"--against {against}: the revision has no files under {rel}/")
    tmp = Path(tempfile.mkdtemp(prefix="engine-candidate-"))
    try:
        for name in names:
            shown = _git(root, "show", f"{against}:{name}")
            if shown.returncode != 0:
                raise CandidateNotFound(f"--against {against}: cannot read {name} ({shown.stderr.decode().strip()})")
            target = tmp / (Path(name).relative_to(rel) if rel != "." else Path(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shown.stdout)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
