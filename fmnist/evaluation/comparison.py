"""Every family side by side, and against the seeds' reported accuracies.

Only figures that the same run reproduces bit for bit: accuracy, parameters, epochs, and the
training compute counted from the model. Wall-clock speed is the benchmark's
(``metrics/benchmark.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmnist.data.idx import CLASS_NAMES
from fmnist.evaluation import ensemble
from fmnist.evaluation.metrics import summarize
from fmnist.models.cost import TRAINING_PASSES
from fmnist.utils.errors import DataError
from fmnist.utils.reading import read_json, reading

TRAIN_DIR = Path("metrics/train")
EVALUATE_DIR = Path("metrics/evaluate")

# What the seed projects report for their best runs, on the same test set.
REFERENCES = (
    {"source": "seed 001", "model": "AlexNet, 10 epochs", "test_accuracy": 0.9314},
    {"source": "seed 004", "model": "CNN", "test_accuracy": 0.92},
    {"source": "seed 001", "model": "FCN", "test_accuracy": 0.8846},
    {"source": "seed 003", "model": "MLP (about)", "test_accuracy": 0.88},
    {"source": "seed 004", "model": "ANN", "test_accuracy": 0.8615},
)
# dvclive's folder of each curve, and the name the comparison gives it.
SPLITS = {"train": "train", "eval": "val", "test": "test"}


def family_row(family: str) -> dict[str, Any]:
    """One family's headline figures from its training summary and its evaluation."""
    summary_path, metrics_path = TRAIN_DIR / family / "summary.json", EVALUATE_DIR / family / "scores.json"
    summary, metrics = read_json(summary_path), read_json(metrics_path)
    with reading(metrics_path):
        scores = {
            "test_accuracy": metrics["test"]["accuracy"],
            "macro_f1": metrics["macro"]["f1"],
            "top2_accuracy": metrics["test"]["top2_accuracy"],
            "views": metrics["views"]["name"],
            "forward_passes": metrics["views"]["forward_passes"],
            "test_images": sum(map(sum, metrics["confusion_matrix"]["counts"])),
        }
    with reading(summary_path):
        costs = {
            "params": summary["params"],
            "epochs": summary["epochs_run"],
            "training_flops_per_image": summary["training_flops_per_image"],
            "training_flops": summary["training_flops_per_image"] * summary["train_images"] * summary["epochs_run"],
            "inference_flops_per_image": summary["training_flops_per_image"]
            // TRAINING_PASSES
            * scores["forward_passes"],
        }
    return {"family": family, **scores, **costs}


def family_probabilities(family: str) -> dict[str, np.ndarray]:
    """The class probabilities evaluate wrote for the validation and test images: {"val", "test"}."""
    path = EVALUATE_DIR / family / "probabilities.npz"
    with reading(path), np.load(path, allow_pickle=False) as npz:
        return {split: npz[split] for split in ("val", "test")}


def ensemble_row(
    rows: list[dict[str, Any]], probs: dict[str, dict[str, np.ndarray]], y_val: np.ndarray, y_test: np.ndarray
) -> dict[str, Any]:
    """The ensemble of :mod:`fmnist.evaluation.ensemble`: members chosen on ``y_val``, then scored on
    ``y_test``; its cost is its members' forward passes (it trains nothing of its own)."""
    for family, p in probs.items():
        for split, y in (("val", y_val), ("test", y_test)):
            if p[split].shape != (len(y), len(CLASS_NAMES)):
                raise DataError(
                    f"{EVALUATE_DIR / family / 'probabilities.npz'} has {split} probabilities of shape "
                    f"{p[split].shape}, not ({len(y)}, {len(CLASS_NAMES)}) as data/processed has; "
                    f"rerun 'dvc repro evaluate@{family}'"
                )
    members = ensemble.select({f: p["val"] for f, p in probs.items()}, y_val)
    val = ensemble.combine({f: p["val"] for f, p in probs.items()}, members)
    test = summarize(ensemble.combine({f: p["test"] for f, p in probs.items()}, members), y_test, CLASS_NAMES)
    chosen = [r for r in rows if r["family"] in members]
    return {
        "members": members,
        "val_accuracy": float(np.mean(val.argmax(axis=1) == y_val)),
        "test_accuracy": test["test"]["accuracy"],
        "macro_f1": test["macro"]["f1"],
        "top2_accuracy": test["test"]["top2_accuracy"],
        "forward_passes": sum(r["forward_passes"] for r in chosen),
        "params": sum(r["params"] for r in chosen),
        "inference_flops_per_image": sum(r["inference_flops_per_image"] for r in chosen),
    }


def family_platform(family: str) -> dict[str, Any]:
    """What the family was trained on, as far as it changes the bits (:mod:`fmnist.reproduction.machine`)."""
    path = TRAIN_DIR / family / "summary.json"
    summary = read_json(path)
    with reading(path):
        return summary["runtime"]


def _curve(path: Path, column: str, epochs: int) -> pd.DataFrame:
    """One of dvclive's per-epoch curves: a row per epoch the summary says ran, steps 0 to epochs - 1."""
    with reading(path):
        curve = pd.read_csv(path, sep="\t")[["step", column]]
        if curve["step"].tolist() != list(range(epochs)) or curve[column].isna().any():
            raise ValueError(f"{len(curve)} rows, not one for each of the {epochs} epochs run")
    return curve


def read_curves(family: str) -> pd.DataFrame:
    """Per-epoch loss and accuracy of one family: columns family, split, epoch, loss, accuracy."""
    summary_path = TRAIN_DIR / family / "summary.json"
    summary = read_json(summary_path)
    with reading(summary_path):
        epochs = int(summary["epochs_run"])
    frames = []
    for folder, split in SPLITS.items():
        base = TRAIN_DIR / family / "plots" / "metrics" / folder
        if not (base / "loss.tsv").exists():
            continue  # the test curve is only there with train.test_curve
        loss, accuracy = _curve(base / "loss.tsv", "loss", epochs), _curve(base / "accuracy.tsv", "accuracy", epochs)
        curve = loss.merge(accuracy, on="step")
        frames.append(curve.assign(family=family, split=split, epoch=curve["step"] + 1))
    if not frames:
        raise DataError(f"{TRAIN_DIR / family / 'plots'} has no curves; run 'dvc repro train@{family}'")
    return pd.concat(frames)[["family", "split", "epoch", "loss", "accuracy"]]


def best_family(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The most accurate family; on a tie, the smaller one."""
    best = max(rows, key=lambda r: (r["test_accuracy"], -r["params"]))
    return {"family": best["family"], "test_accuracy": best["test_accuracy"], "macro_f1": best["macro_f1"]}


def ensemble_name(members: dict[str, int]) -> str:
    """The ensemble's members and weights in a word, heaviest first: "ensemble: 3/5 airbench + 2/5 alexnet"."""
    total = sum(members.values())
    heaviest = sorted(members.items(), key=lambda item: -item[1])  # stable: params.yaml's order on ties
    return "ensemble: " + " + ".join(f"{count}/{total} {family}" for family, count in heaviest)


def markdown_table(rows: list[dict[str, Any]], best: dict[str, Any], ensemble_row: dict[str, Any]) -> str:
    """The families, the ensemble of them, then the seeds' reported accuracies, as one
    GitHub/terminal-friendly table."""
    ours = pd.DataFrame(
        {
            "model": [f"**{r['family']}**" if r["family"] == best["family"] else r["family"] for r in rows],
            "test accuracy": [f"{r['test_accuracy']:.2%}" for r in rows],
            "macro F1": [f"{r['macro_f1']:.4f}" for r in rows],
            "top-2": [f"{r['top2_accuracy']:.2%}" for r in rows],
            "test views": [f"{r['views']} ({r['forward_passes']})" for r in rows],
            "parameters": [f"{r['params']:,}" for r in rows],
            "epochs": [str(r["epochs"]) for r in rows],
            "training MFLOP/image": [f"{r['training_flops_per_image'] / 1e6:,.1f}" for r in rows],
            "training TFLOP": [f"{r['training_flops'] / 1e12:,.1f}" for r in rows],
            "test MFLOP/image": [f"{r['inference_flops_per_image'] / 1e6:,.1f}" for r in rows],
        }
    )
    mixed = pd.DataFrame(
        {
            "model": [ensemble_name(ensemble_row["members"])],
            "test accuracy": [f"{ensemble_row['test_accuracy']:.2%}"],
            "macro F1": [f"{ensemble_row['macro_f1']:.4f}"],
            "top-2": [f"{ensemble_row['top2_accuracy']:.2%}"],
            "test views": [f"members' ({ensemble_row['forward_passes']})"],
            "parameters": [f"{ensemble_row['params']:,}"],
            "test MFLOP/image": [f"{ensemble_row['inference_flops_per_image'] / 1e6:,.1f}"],
        }
    )
    seeds = pd.DataFrame(
        {
            "model": [f"{ref['source']}: {ref['model']} (reported)" for ref in REFERENCES],
            "test accuracy": [f"{ref['test_accuracy']:.2%}" for ref in REFERENCES],
        }
    )
    table = pd.concat([ours, mixed, seeds]).fillna("")
    alignment = ["left"] + ["right"] * (len(table.columns) - 1)
    # Cells are formatted here; tabulate would re-read "8.0" as 8 and drop the decimals.
    return table.to_markdown(index=False, colalign=alignment, disable_numparse=True) + "\n"
