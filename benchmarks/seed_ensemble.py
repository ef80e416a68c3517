"""What averaging one family's models trained from other seeds gives, at k times its training cost.

    .venv/bin/python -m benchmarks.seed_ensemble airbench HEAD headline-seeds-d5d7bf76-r1 headline-seeds-d5d7bf76-r2

Each REV (a commit, or an experiment's name from ``dvc exp list``, such as a ``headline-seeds`` run
of another seed) names one trained model of FAMILY; its evaluate stage's class probabilities
(``metrics/evaluate/FAMILY/probabilities.npz``, through the family's test-time views) are read from
the DVC cache. Prints each model's accuracy, the test images all of them get wrong and, for every
number k of models, the equal-weight average of each k of them: validation and test accuracy, mean
over the subsets. Nothing is chosen, so the test column is a measurement, not a selection.
"""

from __future__ import annotations

import argparse
import io
import itertools

import dvc.api
import numpy as np

from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.evaluation.metrics import top_k_accuracy


def probabilities(family: str, rev: str) -> dict[str, np.ndarray]:
    path = f"metrics/evaluate/{family}/probabilities.npz"
    with dvc.api.open(path, rev=rev, mode="rb") as f, np.load(io.BytesIO(f.read())) as npz:
        return {"val": npz["val"], "test": npz["test"]}


def averaged(models: list[dict[str, np.ndarray]], labels: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """Per k = 1..len(models): the mean accuracy, per split, of the equal-weight average of each k models."""
    rows = []
    for k in range(1, len(models) + 1):
        subsets = list(itertools.combinations(models, k))
        row: dict[str, float] = {"models": k, "subsets": len(subsets)}
        for split, y in labels.items():
            scores = [top_k_accuracy(sum(m[split] for m in subset), y, 1) for subset in subsets]
            row[split] = float(np.mean(scores))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed_ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("revs", nargs="+", help="one trained model each: a commit or an experiment's name")
    args = parser.parse_args(argv)
    labels = {split: load_split(PROCESSED_DIR, split)[1] for split in ("val", "test")}
    models = [probabilities(args.family, rev) for rev in args.revs]
    for rev, model in zip(args.revs, models, strict=True):
        val, test = (top_k_accuracy(model[s], labels[s], 1) for s in ("val", "test"))
        print(f"{rev}: validation {val:.2%}, test {test:.2%}")
    wrong = [model["test"].argmax(axis=1) != labels["test"] for model in models]
    print(
        f"test images every model gets wrong: {int(np.logical_and.reduce(wrong).sum())} (each alone: "
        + ", ".join(str(int(w.sum())) for w in wrong)
        + ")"
    )
    print("| models averaged | subsets | validation (mean) | test (mean) |")
    print("| --: | --: | --: | --: |")
    for row in averaged(models, labels):
        print(f"| {row['models']} | {row['subsets']} | {row['val']:.2%} | {row['test']:.2%} |")


if __name__ == "__main__":
    main()
