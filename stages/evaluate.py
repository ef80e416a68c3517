"""Stage ``evaluate``: score one trained family on the test set, ``python -m stages.evaluate FAMILY``.

Writes, under ``metrics/evaluate/FAMILY/``: ``metrics.json`` (the test accuracy under the family's
name: DVC's metric, one short column a family in ``dvc exp show``), ``scores.json`` (accuracy, loss,
top-2 accuracy, the classification report, the confusion matrix, and the test-time views with each
choice's validation accuracy), ``probabilities.npz`` (the class probabilities of every validation
and test image through the chosen views, which compare's ensemble averages) and ``predictions.csv``
(true and predicted class of every test image, for DVC's confusion plot); and, under
``plots/evaluate/FAMILY/``, a confusion heatmap, a gallery of the most confident mistakes and
sample predictions with their probability bars. Every file is identical, bit for bit,
on every rerun.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from fmnist.config.params import evaluate_config, family_config, load_family
from fmnist.data.idx import CLASS_NAMES
from fmnist.data.splits import PROCESSED_DIR, load_split, save_npz
from fmnist.evaluation import figures, metrics
from fmnist.evaluation.inference import average, check_model, view_probabilities, views_accuracy
from fmnist.evaluation.views import ALL_VIEWS, VIEWS
from fmnist.models import families, model_path, saving
from fmnist.utils import plotting, runtime
from fmnist.utils.atomic import atomic_dir, atomic_path, write_json
from fmnist.utils.errors import run_stage

METRICS_DIR = Path("metrics/evaluate")
PLOTS_DIR = Path("plots/evaluate")


def write_predictions_csv(path: Path, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """One row per test image with class names, the input of DVC's ``confusion`` template."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[t], CLASS_NAMES[p]) for t, p in zip(y_true, y_pred, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("family", help="the model family to evaluate (a block under families: in params.yaml)")
    args = parser.parse_args(argv)
    params = load_family(args.family, families.keys, tuple(VIEWS))
    cfg, ecfg = family_config(params, args.family), evaluate_config(params, args.family)

    runtime.configure(cfg)

    path = model_path(args.family)
    model = saving.load_model(path)
    check_model(model, families.build(args.family, cfg), path, args.family)
    x, y = load_split(PROCESSED_DIR, "test")

    test_views = view_probabilities(model, x, ecfg["batch_size"], VIEWS[ecfg["views"]])
    probs = average(test_views, ecfg["views"])
    scores = metrics.summarize(probs, y, CLASS_NAMES)
    # Every choice of views is scored on the validation split, where it is chosen; the test split sees
    # only the one chosen, and as one view, to show the gain beside its cost in forward passes.
    x_val, y_val = load_split(PROCESSED_DIR, "val")
    val_views = view_probabilities(model, x_val, ecfg["batch_size"], VIEWS[ALL_VIEWS])
    scores["views"] = {
        "name": ecfg["views"],
        "forward_passes": len(VIEWS[ecfg["views"]]),
        "test_accuracy_one_view": float(np.mean(test_views[VIEWS["none"][0]].argmax(axis=1) == y)),
        "val_accuracy": views_accuracy(val_views, y_val),
    }

    images = np.squeeze(x, axis=-1)
    mistakes = metrics.confident_mistakes(probs, y, ecfg["mistakes"])
    samples = np.arange(ecfg["samples"]) % len(y)
    cm = np.array(scores["confusion_matrix"]["counts"])
    charts = {
        "confusion.png": figures.confusion_heatmap(cm, CLASS_NAMES, f"{args.family}: test confusion matrix"),
        "mistakes.png": figures.mistakes_gallery(
            images[mistakes], y[mistakes], probs[mistakes], CLASS_NAMES, f"{args.family}: most confident mistakes"
        ),
        "predictions.png": figures.prediction_bars(
            images[samples], y[samples], probs[samples], CLASS_NAMES, f"{args.family}: sample test predictions"
        ),
    }
    # Both directories appear whole or not at all.
    with atomic_dir(METRICS_DIR / args.family) as metrics_dir, atomic_dir(PLOTS_DIR / args.family) as plots_dir:
        write_json(metrics_dir / "metrics.json", {args.family: scores["test"]["accuracy"]})
        write_json(metrics_dir / "scores.json", scores)
        save_npz(metrics_dir / "probabilities.npz", val=average(val_views, ecfg["views"]), test=probs)
        write_predictions_csv(metrics_dir / "predictions.csv", y, probs.argmax(axis=1))
        for name, fig in charts.items():
            plotting.save_figure(fig, plots_dir / name)
    print(f"{args.family}: test accuracy {scores['test']['accuracy']:.2%}, macro F1 {scores['macro']['f1']:.4f}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
