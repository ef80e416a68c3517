"""Run a trained model: check it is the family it claims to be, predict in batches, time it.

The evaluate stage predicts; only the benchmark times (a timing in an output DVC tracks would
change on every run).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fmnist.evaluation.views import VIEWS
from fmnist.utils.errors import DataError


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


@functools.lru_cache(maxsize=4)  # a few models at once: evaluate's, or the benchmark's
def forward(model: Any) -> Any:
    """The model's inference pass as one traced graph, reused across calls and batches of one shape."""
    return tf.function(lambda batch: model(batch, training=False))


def view(x: Any, down: int, right: int, mirrored: bool) -> Any:
    """``x`` (N, H, W, C) mirrored left-right if asked, then moved ``down`` rows and ``right`` columns,
    zeros shifted in: one of :data:`fmnist.evaluation.views.VIEWS`, for arrays and inside the served
    graph alike. Only moves values, so the view's bits are those of ``x``."""
    out = tf.reverse(x, [2]) if mirrored else tf.convert_to_tensor(x)
    if down or right:
        height, width = out.shape[1], out.shape[2]
        pad = max(abs(down), abs(right))
        padded = tf.pad(out, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        out = padded[:, pad - down : pad - down + height, pad - right : pad - right + width]
    return out


def view_probabilities(
    model: Any, x: np.ndarray, batch_size: int, views: tuple[tuple[int, int, bool], ...]
) -> dict[tuple[int, int, bool], np.ndarray]:
    """Class probabilities of ``x`` seen through each of ``views`` (see :mod:`fmnist.evaluation.views`),
    computed in batches of ``batch_size`` (the batch changes the bits)."""
    run = forward(model)
    out = {}
    for v in views:
        seen = view(x, *v)
        out[v] = np.concatenate([run(seen[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)])
    return out


def average(by_view: dict[tuple[int, int, bool], np.ndarray], name: str) -> np.ndarray:
    """The probabilities of the named set of views, averaged in its order (the order changes the bits)."""
    total = by_view[VIEWS[name][0]]
    for v in VIEWS[name][1:]:
        total = total + by_view[v]
    return total / np.float32(len(VIEWS[name]))


def predict(model: Any, x: np.ndarray, batch_size: int, views: str = "none") -> np.ndarray:
    """Class probabilities of ``x``, averaged over the named ``views`` (one of ``VIEWS``)."""
    return average(view_probabilities(model, x, batch_size, VIEWS[views]), views)


def views_accuracy(by_view: dict[tuple[int, int, bool], np.ndarray], y: np.ndarray) -> dict[str, float]:
    """Accuracy against ``y`` through every choice of views, from one set of forward passes
    (``view_probabilities`` through ``VIEWS[ALL_VIEWS]``)."""
    return {name: float(np.mean(average(by_view, name).argmax(axis=1) == y)) for name in VIEWS}


def images_per_second(model: Any, x: np.ndarray, batch_size: int) -> float:
    """Throughput of batched prediction over ``x``, after a warm-up batch that traces the graph."""
    run = forward(model)
    run(x[:batch_size])
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        run(x[i : i + batch_size]).numpy()
    return len(x) / (time.perf_counter() - start)


def median_latency_ms(model: Any, x: np.ndarray, runs: int) -> float:
    """Median wall time of one single-image prediction, as a served model would see it."""
    run = forward(model)
    run(x[:1])
    times = []
    for i in range(runs):
        image = x[i % len(x)][np.newaxis]
        start = time.perf_counter()
        run(image).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
