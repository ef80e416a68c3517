"""Stage ``compare``: every family side by side, and against the seeds' reported accuracies.

Reads each family's training summary and curves (``metrics/train/``) and test results
(``metrics/evaluate/``); writes under ``metrics/compare/`` the comparison JSON, a markdown table and
the learning curves of all families in one CSV (for ``dvc plots``), and under ``plots/compare/``
accuracy against size and training time, and the overlaid learning curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from stages import figures
from stages.atomic import atomic_dir, write_json
from stages.errors import DataError, run_stage
from stages.params import FAMILIES, load_params

TRAIN_DIR = Path("metrics/train")
EVALUATE_DIR = Path("metrics/evaluate")
OUT_DIR = Path("metrics/compare")
PLOTS_DIR = Path("plots/compare")

# What the seed projects (../shared/seeds/) report for their best runs, on the same test set.
REFERENCES = (
    {"source": "seed 001", "model": "AlexNet, 10 epochs", "test_accuracy": 0.9314},
    {"source": "seed 004", "model": "CNN", "test_accuracy": 0.92},
    {"source": "seed 001", "model": "FCN", "test_accuracy": 0.8846},
    {"source": "seed 003", "model": "MLP (about)", "test_accuracy": 0.88},
    {"source": "seed 004", "model": "ANN", "test_accuracy": 0.8615},
)
# dvclive's folder of each curve, and the name the comparison gives it.
SPLITS = {"train": "train", "eval": "val", "test": "test"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing; run 'dvc repro' to produce it") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err}); rerun its stage with 'dvc repro -f'") from None


def family_row(family: str) -> dict[str, Any]:
    """One family's headline figures from its training summary and its evaluation."""
    summary = _read_json(TRAIN_DIR / family / "summary.json")
    metrics = _read_json(EVALUATE_DIR / family / "metrics.json")
    speed = _read_json(EVALUATE_DIR / family / "speed.json")
    return {
        "family": family,
        "test_accuracy": metrics["test"]["accuracy"],
        "macro_f1": metrics["macro"]["f1"],
        "top2_accuracy": metrics["test"]["top2_accuracy"],
        "params": summary["params"],
        "epochs": summary["epochs_run"],
        "train_seconds": summary["train_seconds"],
        "train_images_per_second": summary["images_per_second"],
        "inference_images_per_second": speed["images_per_second"],
        "latency_ms": speed["latency_ms"],
    }


def read_curves(family: str) -> pd.DataFrame:
    """Per-epoch loss and accuracy of one family: columns family, split, epoch, loss, accuracy."""
    frames = []
    for folder, split in SPLITS.items():
        base = TRAIN_DIR / family / "plots" / "metrics" / folder
        if not (base / "loss.tsv").exists():
            continue  # the test curve is only there with train.test_curve
        curve = pd.read_csv(base / "loss.tsv", sep="\t").merge(pd.read_csv(base / "accuracy.tsv", sep="\t"), on="step")
        frames.append(curve.assign(family=family, split=split, epoch=curve["step"] + 1))
    if not frames:
        raise DataError(f"{TRAIN_DIR / family / 'plots'} has no curves; run 'dvc repro train@{family}'")
    return pd.concat(frames)[["family", "split", "epoch", "loss", "accuracy"]]


def best_family(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The most accurate family; on a tie, the smaller one."""
    best = max(rows, key=lambda r: (r["test_accuracy"], -r["params"]))
    return {"family": best["family"], "test_accuracy": best["test_accuracy"], "macro_f1": best["macro_f1"]}


def markdown_table(rows: list[dict[str, Any]], best: dict[str, Any]) -> str:
    """The families, then the seeds' reported accuracies, as one GitHub/terminal-friendly table."""
    ours = pd.DataFrame(
        {
            "model": [f"**{r['family']}**" if r["family"] == best["family"] else r["family"] for r in rows],
            "test accuracy": [f"{r['test_accuracy']:.2%}" for r in rows],
            "macro F1": [f"{r['macro_f1']:.4f}" for r in rows],
            "top-2": [f"{r['top2_accuracy']:.2%}" for r in rows],
            "parameters": [f"{r['params']:,}" for r in rows],
            "epochs": [str(r["epochs"]) for r in rows],
            "train time": [f"{r['train_seconds']:.0f} s" for r in rows],
            "train images/s": [f"{r['train_images_per_second']:,.0f}" for r in rows],
            "inference images/s": [f"{r['inference_images_per_second']:,.0f}" for r in rows],
            "latency": [f"{r['latency_ms']:.2f} ms" for r in rows],
        }
    )
    seeds = pd.DataFrame(
        {
            "model": [f"{ref['source']}: {ref['model']} (reported)" for ref in REFERENCES],
            "test accuracy": [f"{ref['test_accuracy']:.2%}" for ref in REFERENCES],
        }
    )
    table = pd.concat([ours, seeds]).fillna("")
    alignment = ["left"] + ["right"] * (len(table.columns) - 1)
    return table.to_markdown(index=False, colalign=alignment) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.compare", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    load_params()  # validate before touching anything, like every stage

    rows = [family_row(family) for family in FAMILIES]
    curves = pd.concat([read_curves(family) for family in FAMILIES])
    best = best_family(rows)
    comparison = {"best": best, "families": rows, "references": list(REFERENCES)}
    charts = {
        "accuracy.png": figures.accuracy_vs_cost(rows, REFERENCES),
        "learning_curves.png": figures.learning_curves(curves),
    }
    with atomic_dir(OUT_DIR) as out, atomic_dir(PLOTS_DIR) as plots:
        write_json(out / "metrics.json", comparison)
        (out / "comparison.md").write_text(markdown_table(rows, best))
        curves.to_csv(out / "curves.csv", index=False, lineterminator="\n")
        for name, fig in charts.items():
            figures.save_figure(fig, plots / name)
    print(markdown_table(rows, best), end="")


if __name__ == "__main__":
    sys.exit(run_stage(main))
