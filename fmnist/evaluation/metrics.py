"""Classification metrics from predicted probabilities: plain NumPy, no model, no I/O.

The definitions follow scikit-learn's ``classification_report`` (seed 003 prints one): a class
that is never predicted has precision 0, and macro averages weigh every class equally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

EPSILON = 1e-7  # Keras' clip for the log in cross-entropy


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    return np.bincount(n_classes * y_true.astype(np.int64) + y_pred, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def classification_report(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and their macro averages.

    Per-class rows are a list, so that ``dvc metrics show`` keeps to the headline figures while
    the file still holds the whole report. (The test set is balanced, so support-weighted
    averages would equal the macro ones.)
    """
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _ratio(tp, cm.sum(axis=0))
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        ],
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
    }


def top_k_accuracy(probs: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the ``k`` most probable.

    A class tied with the true one's probability does not push it out (as Keras counts).
    """
    true_prob = probs[np.arange(len(y_true)), y_true]
    rank = (probs > true_prob[:, None]).sum(axis=1)
    return float(np.mean(rank < k))


def cross_entropy(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean categorical cross-entropy of the true classes, with Keras' clipping."""
    true_prob = np.clip(probs[np.arange(len(y_true)), y_true], EPSILON, 1.0)
    return float(-np.mean(np.log(true_prob.astype(np.float64))))


def confident_mistakes(probs: np.ndarray, y_true: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` wrong predictions, most confident first (ties: lower index first)."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = probs[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def summarize(probs: np.ndarray, y_true: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Every quality metric of ``probs`` against ``y_true``: the evaluate stage's ``scores.json``."""
    cm = confusion_matrix(y_true, probs.argmax(axis=1), len(class_names))
    return {
        "test": {
            "accuracy": float(np.trace(cm) / cm.sum()),
            "loss": cross_entropy(probs, y_true),
            "top2_accuracy": top_k_accuracy(probs, y_true, 2),
        },
        **classification_report(cm, class_names),
        "confusion_matrix": {"classes": list(class_names), "counts": cm.tolist()},
    }
