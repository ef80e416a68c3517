"""Stage ``preprocess``: parse the raw IDX files into stratified train/val/test splits.

Writes ``data/processed/`` (``train.npz``, ``val.npz``, ``test.npz`` as uint8 images and labels,
and ``meta.json`` with shapes, class counts, the normalisation and the source checksums) and
``plots/samples.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist.config.params import load_sections
from fmnist.data.idx import CLASS_NAMES, RAW_DIR, SPLIT_FILES, check_pair, read_idx_gz
from fmnist.data.splits import (
    PROCESSED_DIR,
    class_counts,
    normalization,
    sample_rows,
    save_npz,
    split_indices,
    verify_sources,
)
from fmnist.utils import plotting
from fmnist.utils.atomic import atomic_dir, write_json
from fmnist.utils.errors import run_stage

SAMPLES_PNG = Path("plots/samples.png")
SAMPLES_PER_CLASS = 8


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m stages.preprocess", description=__doc__.splitlines()[0]).parse_args(argv)
    all_params = load_sections("download", "preprocess")
    params = all_params["preprocess"]

    arrays, sources = {}, {}
    for split, (images_file, labels_file) in SPLIT_FILES.items():
        images, sources[images_file] = read_idx_gz(RAW_DIR / f"{images_file}.gz")
        labels, sources[labels_file] = read_idx_gz(RAW_DIR / f"{labels_file}.gz")
        check_pair(images, labels, split)
        arrays[split] = (images, labels)
    verify_sources(sources, all_params["download"]["sha256"])

    full_x, full_y = arrays.pop("train")
    train, val = split_indices(full_y, params["val_fraction"], params["train_limit"], params["seed"])
    splits = {"train": (full_x[train], full_y[train]), "val": (full_x[val], full_y[val]), "test": arrays["test"]}

    meta = {
        "normalization": normalization(splits["train"][0], params["normalization"]),
        "splits": {name: {"shape": list(x.shape), "class_counts": class_counts(y)} for name, (x, y) in splits.items()},
        "sources_sha256": sources,
        "class_names": list(CLASS_NAMES),
    }
    with atomic_dir(PROCESSED_DIR) as tmp:
        for name, (x, y) in splits.items():
            save_npz(tmp / f"{name}.npz", images=x, labels=y)
        write_json(tmp / "meta.json", meta)

    x, y = splits["train"]
    fig = plotting.image_grid(sample_rows(x, y, SAMPLES_PER_CLASS), CLASS_NAMES, "Fashion-MNIST training samples")
    plotting.save_figure(fig, SAMPLES_PNG)
    for name, info in meta["splits"].items():
        print(f"{name:>5}: {info['shape'][0]:>6} images")


if __name__ == "__main__":
    sys.exit(run_stage(main))
