"""Which way of choosing the ensemble's members holds up on images it did not choose on, after ``make run``.

    .venv/bin/python -m benchmarks.ensemble_selection [REPEATS]

The validation split only (the test split chooses nothing): it is cut in random halves REPEATS
times (default 5); each way chooses on one half and is scored on the other, both ways round.
The ways: the shipped greedy selection by validation accuracy; the same by validation
cross-entropy (20 rounds); weights fitted to the cross-entropy (Nelder-Mead on a softmax); the
best k families by their own accuracy, equally weighted, k chosen likewise; airbench alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from fmnist.all_params import load_params
from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.evaluation import ensemble
from fmnist.evaluation.comparison import family_probabilities
from fmnist.evaluation.metrics import cross_entropy

Probs = dict[str, np.ndarray]


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == y))


def greedy_loss(probs: Probs, y: np.ndarray) -> dict[str, float]:
    return dict(ensemble.select(probs, y, rounds=20, score=lambda p, y: (-cross_entropy(p, y),)))


def fitted_loss(probs: Probs, y: np.ndarray) -> dict[str, float]:
    names = list(probs)
    stacked = np.stack([probs[n].astype(np.float64) for n in names])

    def loss(z: np.ndarray) -> float:
        w = np.exp(z) / np.exp(z).sum()
        return cross_entropy(np.tensordot(w, stacked, 1), y)

    z = minimize(loss, np.zeros(len(names)), method="Nelder-Mead", options={"maxiter": 2000}).x
    return dict(zip(names, np.exp(z) / np.exp(z).sum(), strict=True))


def best_k(probs: Probs, y: np.ndarray) -> dict[str, float]:
    ranked = sorted(probs, key=lambda n: -accuracy(probs[n], y))
    options = [dict.fromkeys(ranked[:k], 1.0) for k in range(1, len(ranked) + 1)]
    return max(options, key=lambda w: accuracy(ensemble.combine(probs, w), y))  # first of equals: fewest


WAYS: dict[str, Callable[[Probs, np.ndarray], dict[str, float]]] = {
    "greedy, validation accuracy (shipped)": lambda p, y: dict(ensemble.select(p, y)),
    "greedy, validation cross-entropy": greedy_loss,
    "weights fitted to validation cross-entropy": fitted_loss,
    "best k by own accuracy, equal weights": best_k,
    "airbench alone": lambda p, y: {"airbench": 1.0},
}


def main(argv: list[str]) -> None:
    repeats = int(argv[0]) if argv else 5
    families = list(load_params()["families"])
    val = {f: family_probabilities(f)["val"] for f in families}
    _, y = load_split(PROCESSED_DIR, "val")
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(repeats):
        order = rng.permutation(len(y))
        halves = order[: len(y) // 2], order[len(y) // 2 :]
        for choose, score in (halves, halves[::-1]):
            for way, pick in WAYS.items():
                weights = pick({f: p[choose] for f, p in val.items()}, y[choose])
                scores[way].append(accuracy(ensemble.combine({f: p[score] for f, p in val.items()}, weights), y[score]))
    header = f"accuracy on the other half (mean ± std of {2 * repeats})"
    print(f"| way of choosing | {header} | chosen on all of validation |")
    print("| --- | ---: | --- |")
    for way, pick in WAYS.items():
        chosen = pick(val, y)
        total = sum(chosen.values())
        shown = ", ".join(f"{f} {w / total:.2f}" for f, w in chosen.items() if w / total >= 0.005)
        print(f"| {way} | {np.mean(scores[way]):.2%} ± {np.std(scores[way]):.2%} | {shown} |")


if __name__ == "__main__":
    main(sys.argv[1:])
