"""One tuning trial on the real data: train a family with some keys changed, score it on validation.

    .venv/bin/python -m benchmarks.trial airbench '{"optimizer": "sgd", "learning_rate": 0.05}'

Trains as ``train@FAMILY`` would, with the family's settings from ``params.yaml`` and the given keys
over them, in memory: nothing is written and the test split is not read. Prints one JSON line: the
validation accuracy after every epoch and, at the end, through each choice of test-time views, and
the training time. The trials behind the shipped settings, with these lines, are in
benchmarks/README.md. (``dvc exp run -S`` gives the same figures in ``metrics/evaluate``, plus a test
score; this is the quicker loop while choosing.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from fmnist.all_params import load_params
from fmnist.config.params import family_config
from fmnist.config.yaml_reader import parse_yaml
from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.evaluation.inference import view_probabilities, views_accuracy
from fmnist.evaluation.views import ALL_VIEWS, VIEWS
from fmnist.models import families
from fmnist.training import loop
from fmnist.utils import runtime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trial", description=__doc__.splitlines()[0])
    parser.add_argument("family", help="a block under families: in params.yaml")
    parser.add_argument("changes", nargs="?", default="{}", help="keys to change, as a JSON or YAML mapping")
    args = parser.parse_args(argv)
    changes = parse_yaml(args.changes)
    cfg = {**family_config(load_params(), args.family), **changes, "test_curve": False}  # test chooses nothing
    runtime.configure(cfg)
    splits = {name: load_split(PROCESSED_DIR, name) for name in ("train", "val")}
    model = families.build(args.family, cfg)
    families.prepare(args.family, model, cfg, splits["train"][0])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = loop.train(model, cfg, splits, Path(tmp) / "live")
        curve = pd.read_csv(Path(tmp) / "live/plots/metrics/eval/accuracy.tsv", sep="\t")["accuracy"]
    seconds = time.perf_counter() - start
    x_val, y_val = splits["val"]
    by_view = view_probabilities(model, x_val, 1000, VIEWS[ALL_VIEWS])
    views = {name: round(accuracy, 4) for name, accuracy in views_accuracy(by_view, y_val).items()}
    record = {
        "family": args.family,
        "changes": changes,
        "params": summary["params"],
        "train_seconds": round(seconds),
        "val_accuracy_per_epoch": [round(float(a), 4) for a in curve],
        "val_accuracy_by_views": views,
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
