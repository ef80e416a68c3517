"""Stage ``preprocess``: parse the raw IDX files into stratified train/val/test splits.

Images are stored as uint8 (lossless and 4x smaller than float32); the normalisation chosen in
``preprocess.normalization`` is computed on the training split only and recorded in
``meta.json``, and :func:`stages.dataset.load_split` applies it when a split is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from stages import atomic, figures
from stages.dataset import CLASS_NAMES, SPLIT_FILES, check_pair, read_idx_gz, save_npz
from stages.errors import DataError, run_stage
from stages.params import load_params

RAW_DIR = Path("data/raw")
OUT_DIR = Path("data/processed")
SAMPLES_PNG = Path("plots/samples.png")
SAMPLES_PER_CLASS = 8


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` examples drawn so that each class keeps its share (largest remainder)."""
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * n / len(labels)
    take = np.floor(quotas).astype(int)
    # Hand the rounding leftovers to the classes with the largest remainders (ties: lower class).
    leftovers = np.argsort(-(quotas - take), kind="stable")[: n - take.sum()]
    take[leftovers] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def split_indices(
    labels: np.ndarray, val_fraction: float, train_limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, val) indices; ``train_limit`` > 0 keeps a stratified subset of train."""
    rng = np.random.default_rng(seed)
    n_val = round(len(labels) * val_fraction)
    if not 0 < n_val < len(labels):
        raise DataError(
            f"preprocess.val_fraction = {val_fraction} leaves {n_val} of {len(labels)} images for validation"
        )
    val = stratified_sample(labels, n_val, rng)
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    if train_limit:
        if train_limit < len(CLASS_NAMES):
            raise DataError(
                f"preprocess.train_limit = {train_limit} is below one image per class; use 0 or >= {len(CLASS_NAMES)}"
            )
        if train_limit < len(train):
            train = train[stratified_sample(labels[train], train_limit, rng)]
    return train, val


def normalization(images: np.ndarray, method: str) -> dict[str, float | str]:
    """Affine normalisation ``(x / 255 - mean) / std`` as statistics of ``images`` (the training split)."""
    if method == "scale":
        return {"method": method, "mean": 0.0, "std": 1.0}
    scaled = images.astype(np.float64) / 255.0
    return {"method": method, "mean": float(scaled.mean()), "std": float(scaled.std())}


def class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    return {name: int(n) for name, n in zip(CLASS_NAMES, counts, strict=True)}


def sample_rows(images: np.ndarray, labels: np.ndarray, per_class: int) -> list[np.ndarray]:
    """The first ``per_class`` images of each class, one array per class."""
    return [images[labels == c][:per_class] for c in range(len(CLASS_NAMES))]


def verify_sources(found: dict[str, str], expected: dict[str, str]) -> None:
    """Refuse raw files whose content is not what ``download`` verified (edited since, or swapped)."""
    for name, digest in found.items():
        if digest != expected[name]:
            raise DataError(
                f"{RAW_DIR / name}.gz is not the file download verified: its content has SHA-256 "
                f"{digest[:12]}..., download.sha256 expects {expected[name][:12]}...; restore it with "
                "'dvc checkout data/raw' or 'dvc repro --force download'"
            )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m stages.preprocess", description=__doc__.splitlines()[0]).parse_args(argv)
    all_params = load_params()
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
    with atomic.atomic_dir(OUT_DIR) as tmp:
        for name, (x, y) in splits.items():
            save_npz(tmp / f"{name}.npz", images=x, labels=y)
        atomic.write_json(tmp / "meta.json", meta)

    x, y = splits["train"]
    fig = figures.image_grid(sample_rows(x, y, SAMPLES_PER_CLASS), CLASS_NAMES, "Fashion-MNIST training samples")
    figures.save_figure(fig, SAMPLES_PNG)
    for name, info in meta["splits"].items():
        print(f"{name:>5}: {info['shape'][0]:>6} images")


if __name__ == "__main__":
    sys.exit(run_stage(main))
