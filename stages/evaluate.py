"""Stage ``evaluate``: score one trained family on the test set, ``python -m stages.evaluate FAMILY``.

Writes, under ``metrics/evaluate/FAMILY/``: ``metrics.json`` (accuracy, loss, top-2 accuracy, the
classification report and the confusion matrix: identical bits on every rerun), ``speed.json``
(inference throughput and latency, parameters, file size: timings vary run to run) and
``predictions.csv`` (true and predicted class of every test image, for DVC's confusion plot); and,
under ``plots/evaluate/FAMILY/``, a confusion heatmap, a gallery of the most confident mistakes and
sample predictions with their probability bars.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from stages import evaluation, figures, runtime
from stages.atomic import atomic_dir, atomic_path, write_json
from stages.dataset import CLASS_NAMES, load_split
from stages.errors import DataError, run_stage
from stages.params import FAMILIES, family_config, load_params

PROCESSED_DIR = Path("data/processed")
MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics/evaluate")
PLOTS_DIR = Path("plots/evaluate")


def check_model(model: Any, expected: Any, path: Path, family: str) -> None:
    """Refuse a model whose layers or weight shapes differ from what ``family`` builds now."""

    def signature(m: Any) -> list[tuple[str, tuple[int, ...]]]:
        return [(type(layer).__name__, tuple(w.shape)) for layer in m.layers for w in layer.weights]

    if signature(model) != signature(expected):
        raise DataError(
            f"{path} does not match family '{family}' as params.yaml defines it "
            f"({model.count_params()} parameters, expected {expected.count_params()}); "
            f"retrain it with 'dvc repro train@{family}'"
        )


def timed_predictions(model: Any, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    """Class probabilities of ``x`` and the images per second of the (warmed-up) pass."""
    import tensorflow as tf

    predict = tf.function(lambda batch: model(batch, training=False))
    predict(x[:batch_size])  # trace and warm up outside the timing
    start = time.perf_counter()
    probs = np.concatenate([predict(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)])
    return probs, len(x) / (time.perf_counter() - start)


def median_latency_ms(model: Any, x: np.ndarray, runs: int) -> float:
    """Median wall time of one single-image prediction, as a served model would see it."""
    import tensorflow as tf

    predict = tf.function(lambda image: model(image, training=False))
    predict(x[:1])
    times = []
    for i in range(runs):
        image = x[i % len(x)][np.newaxis]
        start = time.perf_counter()
        predict(image).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def write_predictions_csv(path: Path, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """One row per test image with class names, the input of DVC's ``confusion`` template."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[t], CLASS_NAMES[p]) for t, p in zip(y_true, y_pred, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=list(FAMILIES), help="the model family to evaluate")
    args = parser.parse_args(argv)
    params = load_params()
    cfg, ecfg = family_config(params, args.family), params["evaluate"]

    runtime.configure(cfg)
    from stages import model_io, zoo  # after configure(): see stages.runtime

    model_path = MODELS_DIR / f"{args.family}.keras"
    if not model_path.is_file():
        raise DataError(f"{model_path} does not exist; train it first with 'dvc repro train@{args.family}'")
    model = model_io.load_model(model_path)
    check_model(model, zoo.build(args.family, cfg), model_path, args.family)
    x, y = load_split(PROCESSED_DIR, "test")

    probs, images_per_second = timed_predictions(model, x, ecfg["batch_size"])
    metrics = evaluation.summarize(probs, y, CLASS_NAMES)
    speed = {
        "params": model.count_params(),
        "model_bytes": model_path.stat().st_size,
        "images_per_second": round(images_per_second, 1),
        "latency_ms": round(median_latency_ms(model, x, ecfg["latency_runs"]), 3),
    }

    images = np.squeeze(x, axis=-1)
    mistakes = evaluation.confident_mistakes(probs, y, ecfg["mistakes"])
    samples = np.arange(ecfg["samples"]) % len(y)
    cm = np.array(metrics["confusion_matrix"]["counts"])
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
        write_json(metrics_dir / "metrics.json", metrics)
        write_json(metrics_dir / "speed.json", speed)
        write_predictions_csv(metrics_dir / "predictions.csv", y, probs.argmax(axis=1))
        for name, fig in charts.items():
            figures.save_figure(fig, plots_dir / name)
    print(
        f"{args.family}: test accuracy {metrics['test']['accuracy']:.2%}, macro F1 {metrics['macro']['f1']:.4f}, "
        f"{speed['images_per_second']:.0f} images/s, {speed['latency_ms']:.2f} ms per image"
    )


if __name__ == "__main__":
    sys.exit(run_stage(main))
