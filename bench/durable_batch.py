"""durable_rules batch size: time DurableScreen.evaluate() per household for several BATCH values.

    python bench/durable_batch.py [--households 250000] [--sizes 50,100,200,500,1000,2000] [--rounds 5]

Generates and imports a town, takes the pre-selection's candidates (what a full screen gives
durable_rules), loads them once, then evaluates them with each batch size in turn, round after
round, and prints the smallest CPU time of each (least disturbed by other load), with the
batches redone household by household after a duplicate-hash collision.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchlib import ON, ROOT  # noqa: E402  (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=250_000)
    ap.add_argument("--sizes", default="50,100,200,500,1000,2000")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from engine.demo.town import generate_town
    from engine.intake.importer import import_dir
    from engine.rules import durable_eval
    from engine.rules.compile import Compiled
    from engine.rules.facts import Context, load_households
    from engine.rules.loader import load_rules
    from engine.rules.prefilter import Prefilter, Shard
    from engine.store.db import connect

    base = Path(tempfile.mkdtemp(prefix="engine-batch-"))
    generate_town(base / "town", args.households, 1, today=ON)
    conn = connect(base / "workspace")
    import_dir(conn, base / "town", today=ON)
    rules = load_rules(ROOT / "configs" / "rules")
    ids = sorted(Prefilter(rules, ON).candidates(conn, Shard()))
    households = [h for h in load_households(conn, ids, ON) if h.persons]
    ctx = Context(ON)
    screen = durable_eval.DurableScreen(Compiled(rules))
    redone = [0]
    batch = durable_eval.DurableScreen._evaluate_batch

    def counted(self, chunk, ctx):
        try:
            return batch(self, chunk, ctx)
        except durable_eval.FactsLost:
            redone[0] += 1
            raise

    durable_eval.DurableScreen._evaluate_batch = counted
    sizes = [int(s) for s in args.sizes.split(",")]
    cpu: dict[int, list[float]] = {s: [] for s in sizes}
    collisions = dict.fromkeys(sizes, 0)
    expected = None
    for _ in range(args.rounds):
        for size in sizes:
            durable_eval.BATCH = size
            redone[0] = 0
            t = time.process_time()
            hits = screen.evaluate(households, ctx)
            cpu[size].append(time.process_time() - t)
            collisions[size] += redone[0]
            expected = hits if expected is None else expected
            assert hits == expected, f"batch {size} changed the result"
    print(f"{len(households):,} candidate households of {args.households:,}; {len(expected):,} hits")
    print(f"{'batch':>6} {'µs/household':>13} {'batches':>8} {'collisions':>11}")
    rows = []
    for size in sizes:
        best = min(cpu[size])
        rows.append(
            {"batch": size, "us_per_household": round(best / len(households) * 1e6, 1), "collisions": collisions[size]}
        )
        print(f"{size:>6} {rows[-1]['us_per_household']:>13} {-(-len(households) // size):>8} {collisions[size]:>11}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
