"""Stage ``train``: train one model family, ``python -m stages.train FAMILY``.

Writes ``models/FAMILY.keras`` (byte-stable for the same params, seed and machine) and, under
``metrics/train/FAMILY/``, dvclive's per-epoch curves (as each epoch ends) and final metrics, then
``summary.json``
(parameters, training FLOPs per image, epochs, best epoch, and the platform: thread settings, versions,
CPU and oneDNN's instruction set, :mod:`fmnist.reproduction.machine`). Wall time is printed,
not written: an output DVC tracks holds only what the same run reproduces.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fmnist.config.params import family_config, load_family
from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.models import families, model_path, saving
from fmnist.models.cost import training_flops_per_image
from fmnist.reproduction import machine
from fmnist.training import distribute, loop
from fmnist.utils import runtime
from fmnist.utils.atomic import live_dir, write_json
from fmnist.utils.errors import DataError, run_stage

TRAIN_METRICS_DIR = Path("metrics/train")


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """Where a non-chief host's curves go: nowhere that lasts."""
    with tempfile.TemporaryDirectory(prefix="worker-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description=__doc__.splitlines()[0])
    parser.add_argument("family", help="the model family to train (a block under families: in params.yaml)")
    args = parser.parse_args(argv)
    cfg = family_config(load_family(args.family, families.keys), args.family)

    probe = machine.start_probe()
    settings = runtime.configure(cfg)

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
        model = families.build(args.family, cfg)
        families.prepare(args.family, model, cfg, splits["train"][0])
    chief = distribute.is_chief(strategy)
    start = time.perf_counter()
    # The curves are written where DVC reads them, epoch by epoch; summary.json, written last, marks a
    # finished run. A failed or stopped one puts back what was there (nothing, under DVC).
    with live_dir(TRAIN_METRICS_DIR / args.family) if chief else scratch_dir() as curves_dir:
        summary = loop.train(model, cfg, splits, curves_dir, strategy)
        seconds = time.perf_counter() - start
        summary["training_flops_per_image"] = training_flops_per_image(model)
        summary["distribute"] = distribute.describe(strategy, cfg)
        if not chief:
            print(f"{args.family}: trained as a worker; the chief writes the model and metrics")
            return
        platform = machine.record(settings, probe)
        saving.save_model(model, model_path(args.family))
        write_json(curves_dir / "summary.json", {"family": args.family, **summary, "runtime": platform})
    images = summary["train_images"] * summary["epochs_run"]
    print(
        f"{args.family}: {summary['params']} params, {summary['epochs_run']} epochs in "
        f"{seconds:.0f} s ({images / seconds:.0f} images/s)"
    )


if __name__ == "__main__":
    sys.exit(run_stage(main))
