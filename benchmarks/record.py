"""Make the results of record: ``python -m benchmarks.record``.

A fresh clone of ``HEAD`` in a temporary folder, ``make run`` there (install included, timed, with
its verdict against ``HEAD``'s record), then the results that run changed are copied into this
checkout and one row is added to ``benchmarks/records.csv`` and to the table of
``benchmarks/README.md``: the platform, the commit, the time and the verdict. Commit those files
and the record is made. Run it with nothing else on the machine: the time is part of the record.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fmnist.utils.atomic import atomic_path
from fmnist.utils.errors import UserError, run_stage

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "benchmarks/records.csv"
README = ROOT / "benchmarks/README.md"
COLUMNS = ["date", "commit", "cpu", "onednn_isa", "make_run", "verdict"]
START, END = "<!-- records:start -->\n", "<!-- records:end -->"


def git(*args: str, cwd: Path | None = None) -> str:
    # ROOT is read at call time, not bound as a default: a test points it at a scratch repository.
    return subprocess.run(["git", *args], cwd=cwd or ROOT, check=True, capture_output=True, text=True).stdout


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def summary(verdicts: list[dict[str, Any]]) -> str:
    """``"mlp, dnn: bit-identical; cnn: reproduced within noise"``: each verdict and its families."""
    by: dict[str, list[str]] = {}
    for v in verdicts:
        by.setdefault(v["verdict"], []).append(v["family"])
    if len(by) == 1:
        return f"all {len(verdicts)}: {next(iter(by))}"
    return "; ".join(f"{', '.join(families)}: {verdict}" for verdict, families in by.items())


def platform_of(clone: Path) -> tuple[str, str]:
    """The CPU (model and generation) and oneDNN instruction set the clone's families were trained on."""
    platform = json.loads((clone / "metrics/compare/platform.json").read_text())
    cpus = Counter(f"{p['cpu_model']} ({p['cpu_generation']})" for p in platform.values())
    isas = Counter(p["onednn_isa"] for p in platform.values())
    return cpus.most_common(1)[0][0], isas.most_common(1)[0][0]


def read_records() -> list[dict[str, str]]:
    return list(csv.DictReader(RECORDS.open())) if RECORDS.is_file() else []


def markdown(records: list[dict[str, str]]) -> str:
    """The records as the table benchmarks/README.md shows, newest first."""
    lines = [
        "| date | commit | CPU | oneDNN instruction set | `make run` | verdict against the record before |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    lines += [
        f"| {r['date']} | {r['commit']} | {r['cpu']} | {r['onednn_isa']} | {r['make_run']} | {r['verdict']} |"
        for r in reversed(records)
    ]
    return "\n".join(lines) + "\n"


def write_records(records: list[dict[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    with atomic_path(RECORDS) as tmp:
        tmp.write_text(out.getvalue())
    page = README.read_text()
    page = page[: page.index(START) + len(START)] + markdown(records) + page[page.index(END) :]
    with atomic_path(README) as tmp:
        tmp.write_text(page)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.record", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="clone into DIR (a path that does not exist yet) and keep it: its DVC cache holds the record's "
        "outputs, so after 'git pull' of the record's commit it is up to date, ready for 'make test'",
    )
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists():
        raise UserError(f"--keep {args.keep}: that path exists; name one that does not")
    if git("status", "--porcelain"):
        raise UserError("the working tree has uncommitted changes; commit or stash them: a record is of a commit")
    commit = git("rev-parse", "--short", "HEAD").strip()
    with tempfile.TemporaryDirectory(prefix="record-") as tmp:
        clone = args.keep.resolve() if args.keep is not None else Path(tmp) / "clone"
        git("clone", "-q", str(ROOT), str(clone))
        start = time.perf_counter()
        # make run ends with the verdict against HEAD; it exits 1 when a family differs.
        ran = subprocess.run(["make", "run"], cwd=clone)
        seconds = time.perf_counter() - start
        verdict = subprocess.run(
            [str(clone / ".venv/bin/python"), "-m", "fmnist.reproduction", "--json"],
            cwd=clone,
            capture_output=True,
            text=True,
        )
        if not verdict.stdout:
            raise UserError(f"make run in {clone} failed (exit {ran.returncode}) before its verdict; nothing recorded")
        verdicts = json.loads(verdict.stdout)["families"]
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=all", cwd=clone).splitlines()]
        for path in changed:
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(clone / path, ROOT / path)
        cpu, isa = platform_of(clone)
    row = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "cpu": cpu,
        "onednn_isa": isa,
        "make_run": minutes(seconds),
        "verdict": summary(verdicts),
    }
    write_records([*read_records(), row])
    print(f"record of {commit}: {row['make_run']}, {row['verdict']}; changed: {', '.join(changed) or 'nothing'}")
    print("commit it: git add -A && git commit -m 'Results of record'")


if __name__ == "__main__":
    sys.exit(run_stage(main))
