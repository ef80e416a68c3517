"""Rewrite every generated part of the docs from the code and the results: ``python -m fmnist.docs``.

Each part is a copy of something the code computes or a run wrote: the parameter reference from
the schema and ``params.yaml``, the README's comparison and headline tables from the comparison and
the headline study, the tolerances from the record, the benchmark table from its metrics, the
quick profile's command and ``dvc.yaml``'s chart page from the families. Run it after a ``make
run`` whose results you commit, or after adding a family; the tests hold each part to the committed
files and name this command.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from fmnist.all_params import leaves, sections, shipped_params
from fmnist.config.schema import TRAIN
from fmnist.models import families
from fmnist.quick_profile import quick_profile_command
from fmnist.reproduction.records import SEEDS, tolerance_table
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
    report = _read(SEEDS.removesuffix(".json") + ".md")
    return report[report.index("| configuration |") :]


def tolerances() -> str:
    lock = ROOT / "dvc.lock"
    return tolerance_table(
        _read("metrics/compare/comparison.json"), _read(SEEDS), lock.read_text() if lock.exists() else None
    )


def benchmark_table(rows: list[dict[str, Any]]) -> str:
    """The rows as the markdown table that docs/performance.md shows (a test keeps the two in step)."""
    return tabulate(
        [[r["row"], r["target"], r["shown"], r["verdict"]] for r in rows],
        headers=["what", "target", "measured", "verdict"],
        tablefmt="github",
    )


def benchmark() -> str:
    return benchmark_table(json.loads(_read("metrics/benchmark.json"))["rows"])


def _chart(title: str, template: str, x: str, ys: list[str], labels: tuple[str, str] | None = None) -> list[str]:
    """One top-level plot of ``dvc.yaml``: ``ys`` as ``FILE: FIELD``, drawn against ``x``."""
    lines = [f'  - "{title}":', f"      template: {template}", f"      x: {x}", "      y:"]
    lines += [f"        {y}" for y in ys]
    return lines + ([f"      x_label: {labels[0]}", f"      y_label: {labels[1]}"] if labels else [])


def chart_page() -> str:
    """``dvc.yaml``'s top-level plots, the whole chart page: every entry a family needs, for each
    family in ``params.yaml`` (top-level plots take no foreach), so a new family gets its charts here."""
    names = list(shipped_params()["families"])
    curves = ".dvc/plots/learning_curves.json"
    dvclive = "metrics/train/{}/plots/metrics/{}{}.tsv: {}"  # the files dvclive writes as each epoch ends
    # No chart of comparison.json: DVC draws a JSON file's lists as one, so its families' bars took
    # the seeds' reported figures. compare's accuracy.png shows both, apart, first of the pictures.
    lines: list[str] = []
    for title, metric in (("Loss per epoch", "loss"), ("Accuracy per epoch", "accuracy")):
        ys = [dvclive.format(n, split, metric, metric) for n in names for split in ("train/", "eval/")]
        lines += _chart(f"{title} (colour = family, dashes = split)", curves, "step", ys)
    ys = [dvclive.format(n, "", "learning_rate", "learning_rate") for n in names]
    lines += _chart("Learning rate per epoch (colour = family)", curves, "step", ys)
    for n in names:
        title = f"{n}: test confusion matrix, normalised per true class"
        ys = [f"metrics/evaluate/{n}/predictions.csv: predicted"]
        lines += _chart(title, "confusion_normalized", "actual", ys, ("true class", "predicted class"))
    lines += ["  - plots/compare/accuracy.png"] + [f"  - plots/evaluate/{n}/mistakes.png" for n in names]
    lines += ["  - plots/samples.png", "  - plots/studies  # python -m fmnist.studies run NAME: the studies' charts"]
    return "\n".join(lines) + "\n"


# (page, block name, its content); a block sits between <!-- NAME:start --> and <!-- NAME:end -->
# (in a YAML file, # NAME:start and # NAME:end).
BLOCKS: list[tuple[str, str, Callable[[], str], str]] = [
    ("README.md", "comparison", comparison, ""),
    ("README.md", "headline-seeds", headline, ""),
    ("docs/reproducibility.md", "tolerances", tolerances, ""),
    ("docs/performance.md", "benchmark", benchmark, "\n"),
    ("benchmarks/README.md", "benchmark", benchmark, "\n"),
    ("dvc.yaml", "chart-page", chart_page, ""),
]
QUICK_PROFILE_PAGES = ["README.md", "docs/performance.md"]


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rows(schema: dict[str, Any], where: str, values: dict[str, Any]) -> list[str]:
    """One row per key of ``schema``: its name, shipped value, what it allows and what it means."""
    rows = []
    for name, spec in leaves(schema, where):
        value = values
        for part in name.split("."):
            value = value[part]
        if isinstance(value, str) and len(value) > 20:
            value = value[:12] + "…"
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = f"{len(value)} entries"
        rows.append(f"| `{name}` | `{_yaml(value)}` | {spec.allowed()} | {spec.help} |")
    return rows


def parameter_reference() -> str:
    """``docs/parameters.md``: every key, its shipped value, what it allows and what it means."""
    values, schemas = shipped_params(), sections()
    whole_process = [key for key, spec in TRAIN.items() if not spec.per_family]
    but = f" but {', '.join(whole_process)}" if whole_process else ""
    rows = ["| key | shipped value | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name in ("download", "preprocess", "train"):
        rows += _rows(schemas[name], f"{name}.", values)
    for name, block in values["families"].items():
        overrides = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in block.items() if k in TRAIN) or "nothing"
        rows.append(f"| `families.{name}` | | | {families.module(name).HELP} Overrides: {overrides}. |")
        rows += _rows(schemas[f"families.{name}"], f"families.{name}.", values)
        rows.append(f"| `families.{name}.<key>` | | as `train.<key>` | Any train key{but}, for {name} only. |")
    rows += _rows(schemas["evaluate"], "evaluate.", values)
    for name in values["families"]:
        if name in values["evaluate"]:
            own = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in values["evaluate"][name].items())
            rows.append(f"| `evaluate.{name}` | | | Evaluate keys for {name} only: {own}. |")
    rows.append("| `evaluate.<family>.<key>` | | as `evaluate.<key>` | Any evaluate key, for that family only. |")
    return (
        "# Parameters\n\n"
        "Generated by `python -m fmnist.docs` from the schema (`fmnist/config/schema.py`, each\n"
        "family's own keys in `fmnist/models/families/` and the views' names in\n"
        "`fmnist/evaluation/views.py`) and the shipped `params.yaml`; a test keeps this page in step.\n"
        "The `check` stage checks the whole file before any stage runs, and each stage the part it\n"
        "reads before it touches anything: an unknown key gets a did-you-mean, a missing key or a bad\n"
        "value one line naming it and what is allowed, exit 2.\n\n"
        "Keys under `train:` are shared; a family block may set any of them for itself only.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def with_block(text: str, name: str, content: str, tail: str, yaml: bool = False) -> str:
    marks = ("# {}:start\n", "# {}:end") if yaml else ("<!-- {}:start -->\n", "<!-- {}:end -->")
    start, end = (mark.format(name) for mark in marks)
    return text[: text.index(start) + len(start)] + content + tail + text[text.index(end) :]


def with_quick_profile(text: str) -> str:
    # The command and, where its line ends in a backslash, the line that continues it.
    command = re.compile(r"^dvc exp run -S preprocess\.train_limit=[^\n]*?(?:\\\n[^\n]*)?$", re.MULTILINE)
    return command.sub(lambda _: quick_profile_command(), text)


def pages() -> dict[str, str]:
    """Every generated page as it should read, by path: ``docs/parameters.md`` whole, the others
    with their blocks rewritten."""
    out = {"docs/parameters.md": parameter_reference()}
    for page, name, content, tail in BLOCKS:
        out[page] = with_block(out.get(page) or _read(page), name, content(), tail, page.endswith(".yaml"))
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
