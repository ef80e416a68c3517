"""Rewrite every generated part of the docs from the code and the results: ``python -m fmnist.docs``.

Each part is a copy of something the code computes or a run wrote: the parameter reference from
the schema and ``params.yaml``, the README's comparison and headline tables from the comparison and
the headline study, the tolerances from the record, the benchmark table from its metrics, and the
quick profile's command from the families. Run it after a ``make run`` whose results you commit, or
after adding a family; the tests hold each part to the committed files and name this command.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from fmnist.utils.atomic import atomic_path
from fmnist.utils.errors import DataError, run_stage

ROOT = Path(__file__).resolve().parent.parent


def _read(path: str) -> str:
    if not (ROOT / path).is_file():
        raise DataError(f"{path} is missing; run 'make run' first (or 'dvc pull')")
    return (ROOT / path).read_text()


def comparison() -> str:
    return _read("metrics/compare/comparison.md")


def headline() -> str:
    report = _read("metrics/studies/headline-seeds.md")
    return report[report.index("| configuration |") :]


def tolerances() -> str:
    from fmnist.reproduction.__main__ import tolerance_table

    lock = ROOT / "dvc.lock"
    seeds = "metrics/studies/headline-seeds.json"
    return tolerance_table(
        _read("metrics/compare/metrics.json"), _read(seeds), lock.read_text() if lock.exists() else None
    )


def benchmark() -> str:
    from benchmarks.bench import table

    return table(json.loads(_read("metrics/benchmark.json"))["rows"])


# (page, block name, its content); a block sits between <!-- NAME:start --> and <!-- NAME:end -->.
BLOCKS: list[tuple[str, str, Callable[[], str], str]] = [
    ("README.md", "comparison", comparison, ""),
    ("README.md", "headline-seeds", headline, ""),
    ("docs/reproducibility.md", "tolerances", tolerances, ""),
    ("docs/performance.md", "benchmark", benchmark, "\n"),
]
QUICK_PROFILE_PAGES = ["README.md", "docs/performance.md"]


def with_block(text: str, name: str, content: str, tail: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    return text[: text.index(start) + len(start)] + content + tail + text[text.index(end) :]


def with_quick_profile(text: str) -> str:
    from benchmarks.bench import quick_profile_command

    return re.sub(r"^dvc exp run -S preprocess\.train_limit=\S+.*$", quick_profile_command(), text, flags=re.MULTILINE)


def pages() -> dict[str, str]:
    """Every generated page as it should read, by path: ``docs/parameters.md`` whole, the others
    with their blocks rewritten."""
    from fmnist.config.params import reference_page

    out = {"docs/parameters.md": reference_page()}
    for page, name, content, tail in BLOCKS:
        out[page] = with_block(out.get(page) or _read(page), name, content(), tail)
    for page in QUICK_PROFILE_PAGES:
        out[page] = with_quick_profile(out.get(page) or _read(page))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.docs", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    for path, text in pages().items():
        if (ROOT / path).read_text() != text:
            with atomic_path(ROOT / path) as tmp:
                tmp.write_text(text)
            print(f"rewrote {path}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
