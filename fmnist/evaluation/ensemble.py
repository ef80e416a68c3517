"""The ensemble row: the families' class probabilities averaged, members and weights chosen on validation.

Greedy forward selection with replacement (Caruana et al., "Ensemble selection from libraries of
models", ICML 2004): start with no member; each round, add the family (one already in may come
again) whose addition gives the highest validation accuracy, ties to the lower validation
cross-entropy, then to the earlier family in ``params.yaml``; after ``ROUNDS`` rounds, keep the
first round's ensemble whose validation accuracy no later one beats. A family chosen k times out
of n weighs k / n.
Plain NumPy on the probabilities evaluate wrote: no model, no training, the test split unseen
until the members are fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fmnist.evaluation.metrics import cross_entropy

# Weights in steps of a tenth at the finest; more rounds than that would fit the 6000 validation
# images rather than the task.
ROUNDS = 10


def combine(probs: dict[str, np.ndarray], counts: dict[str, float]) -> np.ndarray:
    """The members' probabilities weighted by ``counts`` (times chosen, or any weights), summed in
    ``probs``' order (the order changes the bits), in float64."""
    total = sum(counts.values())
    mixed = sum(counts[name] * probs[name].astype(np.float64) for name in probs if counts.get(name))
    return mixed / total


Score = Callable[[np.ndarray, np.ndarray], tuple[float, ...]]


def accuracy_then_loss(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Higher is better: validation accuracy, then the lower cross-entropy."""
    return float(np.mean(probs.argmax(axis=1) == y)), -cross_entropy(probs, y)


def select(
    val: dict[str, np.ndarray], y_val: np.ndarray, rounds: int = ROUNDS, score: Score = accuracy_then_loss
) -> dict[str, int]:
    """How many times each family is chosen (families never chosen left out), by their
    validation probabilities ``val`` (family -> (N, classes)) against ``y_val``: each round adds
    the family with the highest ``score``; the round kept is the first best by its first part."""
    counts: dict[str, int] = {}
    best: tuple[float, dict[str, int]] | None = None
    for _ in range(rounds):
        # max() keeps the first of equal scores: the earlier family in params.yaml.
        added = max(val, key=lambda name: score(combine(val, {**counts, name: counts.get(name, 0) + 1}), y_val))
        counts = {**counts, added: counts.get(added, 0) + 1}
        kept_by = score(combine(val, counts), y_val)[0]
        if best is None or kept_by > best[0]:  # on a tie, the fewer members: the cheaper
            best = (kept_by, counts)
    assert best is not None, "at least one round"
    return {name: best[1][name] for name in val if name in best[1]}
