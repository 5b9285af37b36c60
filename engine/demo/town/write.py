"""`generate_town`: the three CSV files of a synthetic town, written chunk by chunk.

Every chunk of CHUNK_HOUSEHOLDS households has its own random stream, derived from `seed`, and its
rows are written before the next chunk starts, so memory stays flat and the same arguments give
the same bytes.
"""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.demo.town.bad_rows import bad_records, bad_row
from engine.demo.town.calendar import TownCalendar
from engine.demo.town.chunk import Chunk
from engine.demo.town.household import household
from engine.demo.town.population import PATTERNS
from engine.support.private_files import open_private, private_dir
from engine.support.progress import Progress, report

HOUSEHOLD_COLUMNS = ("household_id", "area", "address")
PERSON_COLUMNS = ("person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality")
RECORD_COLUMNS = ("person_id", "source", "code", "value", "start_date", "end_date")

CHUNK_HOUSEHOLDS = 25_000  # households per random stream (rows are written chunk by chunk)
PROGRESS_EVERY = 5_000  # households between two progress reports
PROGRESS_LABEL = "町を生成"


class GenerateResult(BaseModel):
    """What `generate_town` wrote. Counts exclude the deliberately broken rows."""

    out_dir: str
    households: int
    persons: int
    records: int
    bad_rows: int = 0
    planted: dict[str, int]


def _wareki_formatter(wareki_share: float):
    if not wareki_share:
        return None
    from engine.support.dates import to_wareki  # imported late: only needed when 和暦 is asked for

    return to_wareki


def generate_town(
    out_dir: Path,
    households: int,
    seed: int,
    *,
    today: date = date(2026, 11, 27),
    encoding: str = "utf-8",
    wareki_share: float = 0.2,
    bad_rows: int = 0,
    progress: Progress | None = None,
) -> GenerateResult:
    """Write households.csv, persons.csv and records.csv for a synthetic town to `out_dir`.

    Ages and record dates are relative to `today`. A share `wareki_share` of date cells is
    written in 和暦; `bad_rows` broken rows (unknown household, bad date, duplicate id,
    unknown code, missing field) are spread over the files. Same arguments, same bytes.
    `progress` hears how many households are done every PROGRESS_EVERY households.

    Example:
        generate_town(Path("town"), 5000, seed=42, encoding="cp932")
    """
    if households < 0 or bad_rows < 0:
        raise ValueError("households and bad_rows must be 0 or more")
    if not 0.0 <= wareki_share <= 1.0:
        raise ValueError(f"wareki_share must be between 0 and 1, not {wareki_share}")
    out_dir = Path(out_dir)
    private_dir(out_dir)
    to_wareki = _wareki_formatter(wareki_share)
    cal = TownCalendar(today)
    master = random.Random(seed)
    chunk_count = (households + CHUNK_HOUSEHOLDS - 1) // CHUNK_HOUSEHOLDS
    chunk_seeds = [master.getrandbits(64) for _ in range(chunk_count)]
    bad_rows = bad_rows if households else 0  # broken rows need a household to sit next to
    bad_after: dict[int, list[int]] = {}
    for number in range(bad_rows):
        bad_after.setdefault(master.randrange(households), []).append(number)

    totals = {"households": 0, "persons": 0, "records": 0}  # rows written, broken ones included
    planted = dict.fromkeys(PATTERNS, 0)
    files = {
        name: open_private(out_dir / f"{name}.csv", "w", encoding=encoding, newline="", buffering=1 << 20)
        for name in ("households", "persons", "records")
    }
    try:
        writers = {name: csv.writer(f) for name, f in files.items()}
        writers["households"].writerow(HOUSEHOLD_COLUMNS)
        writers["persons"].writerow(PERSON_COLUMNS)
        writers["records"].writerow(RECORD_COLUMNS)
        next_pid = 1
        report(progress, 0, households, PROGRESS_LABEL)
        for chunk_number, chunk_seed in enumerate(chunk_seeds):
            chunk = Chunk(chunk_seed, cal, wareki_share, to_wareki)
            first = chunk_number * CHUNK_HOUSEHOLDS
            last = min(households, first + CHUNK_HOUSEHOLDS)
            for step in range(first, last, PROGRESS_EVERY):
                for index in range(step, min(last, step + PROGRESS_EVERY)):
                    next_pid = household(chunk, index, next_pid)
                    for number in bad_after.get(index, ()):
                        bad_row(chunk, number, households)
                report(progress, min(last, step + PROGRESS_EVERY), households, PROGRESS_LABEL)
            for name, rows in (
                ("households", chunk.households),
                ("persons", chunk.persons),
                ("records", chunk.records),
            ):
                writers[name].writerows(rows)
                totals[name] += len(rows)
            for pattern, n in chunk.planted.items():
                planted[pattern] += n
    finally:
        for f in files.values():
            f.close()
    return GenerateResult(
        out_dir=str(out_dir),
        households=households,
        persons=next_pid - 1,
        records=totals["records"] - bad_records(bad_rows),
        bad_rows=bad_rows,
        planted=planted,
    )
