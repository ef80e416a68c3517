"""Stage ``train``: train one model family, ``python -m stages.train FAMILY``.

Writes ``models/FAMILY.keras`` (byte-stable for the same params, seed and machine) and, under
``metrics/train/FAMILY/``, dvclive's per-epoch curves and final metrics plus ``summary.json``
(parameter count, epochs, best epoch, wall time, images/s, thread settings).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stages import runtime
from stages.atomic import atomic_dir, write_json
from stages.dataset import load_split
from stages.errors import DataError, run_stage
from stages.params import FAMILIES, family_config, load_params

PROCESSED_DIR = Path("data/processed")
MODELS_DIR = Path("models")
TRAIN_METRICS_DIR = Path("metrics/train")


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """Where a non-chief host's curves go: nowhere that lasts."""
    with tempfile.TemporaryDirectory(prefix="worker-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=list(FAMILIES), help="the model family to train")
    args = parser.parse_args(argv)
    cfg = family_config(load_params(), args.family)

    settings = runtime.configure(cfg)
    # Imported after configure(): importing TensorFlow fixes the oneDNN setting.
    from stages import distribute, model_io, training, zoo

    strategy = distribute.strategy(cfg)
    splits = {name: load_split(PROCESSED_DIR, name) for name in ("train", "val", "test")}
    replicas = strategy.num_replicas_in_sync
    if len(splits["train"][0]) < cfg["batch_size"] * replicas:
        per = f" x {replicas} replicas" if replicas > 1 else ""
        raise DataError(
            f"{args.family}: batch_size {cfg['batch_size']}{per} is larger than the {len(splits['train'][0])} "
            "training images; lower train.batch_size or raise preprocess.train_limit"
        )
    with strategy.scope():
        model = zoo.build(args.family, cfg)
    chief = distribute.is_chief(strategy)
    with atomic_dir(TRAIN_METRICS_DIR / args.family) if chief else scratch_dir() as live_dir:
        summary = training.train(model, cfg, splits, live_dir, strategy)
        summary["distribute"] = distribute.describe(strategy, cfg)
        if not chief:
            print(f"{args.family}: trained as a worker; the chief writes the model and metrics")
            return
        write_json(live_dir / "summary.json", {"family": args.family, **summary, "runtime": settings})
        model_io.save_model(model, MODELS_DIR / f"{args.family}.keras")
    print(
        f"{args.family}: {summary['params']} params, {summary['epochs_run']} epochs in "
        f"{summary['train_seconds']:.0f} s ({summary['images_per_second']:.0f} images/s)"
    )


if __name__ == "__main__":
    sys.exit(run_stage(main))
