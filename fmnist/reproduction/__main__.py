"""Did this run reproduce the results of record? ``python -m fmnist.reproduction [--against REV] [--json]``.

Compares the workspace's results (after ``make run`` or ``dvc repro``) with those committed at a
revision (default ``HEAD``, the record this checkout came with), family by family: the model's
bytes (against ``dvc.lock``), the test accuracy (against ``metrics/compare/comparison.json``), the
platform each was trained on (``metrics/compare/platform.json``) and the settings it ran with. The
rule and its tolerances: :mod:`fmnist.reproduction.verdict`, docs/reproducibility.md. Exits 1 only
when a family differs beyond its tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys

from fmnist.reproduction.records import (
    LOCK,
    SEEDS,
    NotReproducedError,
    check_revision,
    git_show,
    recorded_comparison,
    table,
    tolerance_table,
    verdicts,
)
from fmnist.reproduction.verdict import DIFFERS
from fmnist.utils.errors import run_stage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.reproduction", description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", metavar="REV", help="the revision of record (default: HEAD)")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument("--tolerances", action="store_true", help="print each family's tolerance at the record, only")
    args = parser.parse_args(argv)
    commit = check_revision(args.against)
    if args.tolerances:
        print(
            tolerance_table(
                recorded_comparison(args.against), git_show(args.against, SEEDS), git_show(args.against, LOCK)
            ),
            end="",
        )
        return
    rows = verdicts(args.against)
    print(json.dumps({"against": commit, "families": rows}, indent=2) if args.json else table(rows, commit), end="")
    if args.json:
        print()
    failed = [r["family"] for r in rows if r["verdict"] == DIFFERS]
    if failed:
        raise NotReproducedError(f"{', '.join(failed)}: test accuracy further from the record's than the tolerance")


if __name__ == "__main__":
    sys.exit(run_stage(main))
