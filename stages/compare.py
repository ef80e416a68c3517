"""Stage ``compare``: every family side by side, and against the seeds' reported accuracies.

Reads each family's training summary and curves (``metrics/train/``), test results and validation
and test probabilities (``metrics/evaluate/``) and the true classes (``data/processed``). Writes
under ``metrics/compare/`` the best family's name (``metrics.json``, DVC's metric), the comparison
with its ensemble row (``comparison.json``), a markdown table, the learning curves of all families
in one CSV (for ``dvc plots``) and ``platform.json``, the machine each family was trained on (what
changes its bits, for ``python -m fmnist.reproduction``), and under ``plots/compare/`` accuracy
against size and training compute, and the overlaid curves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from fmnist.config.params import load_sections
from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.evaluation import figures
from fmnist.evaluation.comparison import (
    REFERENCES,
    best_family,
    ensemble_row,
    family_platform,
    family_probabilities,
    family_row,
    markdown_table,
    read_curves,
)
from fmnist.utils import plotting
from fmnist.utils.atomic import atomic_dir, write_json
from fmnist.utils.errors import run_stage

OUT_DIR = Path("metrics/compare")
PLOTS_DIR = Path("plots/compare")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.compare", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    families = list(load_sections()["families"])

    rows = [family_row(family) for family in families]
    curves = pd.concat([read_curves(family) for family in families])
    best = best_family(rows)
    (_, y_val), (_, y_test) = load_split(PROCESSED_DIR, "val"), load_split(PROCESSED_DIR, "test")
    mixed = ensemble_row(rows, {family: family_probabilities(family) for family in families}, y_val, y_test)
    comparison = {"best": best, "families": rows, "ensemble": mixed, "references": list(REFERENCES)}
    charts = {
        "accuracy.png": figures.accuracy_vs_cost(rows, REFERENCES),
        "learning_curves.png": figures.learning_curves(curves),
    }
    with atomic_dir(OUT_DIR) as out, atomic_dir(PLOTS_DIR) as plots:
        # DVC's metric, one column in `dvc exp show`; the ensemble's would push the first param out of
        # 120 columns, so it stays in the comparison.
        write_json(out / "metrics.json", {"best": best["family"]})
        write_json(out / "comparison.json", comparison)
        write_json(out / "platform.json", {family: family_platform(family) for family in families})
        (out / "comparison.md").write_text(markdown_table(rows, best, mixed))
        curves.to_csv(out / "curves.csv", index=False, lineterminator="\n")
        for name, fig in charts.items():
            plotting.save_figure(fig, plots / name)
    print(markdown_table(rows, best, mixed), end="")


if __name__ == "__main__":
    sys.exit(run_stage(main))
