"""The train/validation split and the stored form of every split.

Images are stored as uint8 (lossless and 4x smaller than float32); the normalisation is computed
on the training split only, recorded in ``meta.json``, and applied by :func:`load_split`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.data.idx import CLASS_NAMES
from fmnist.utils.atomic import atomic_path
from fmnist.utils.errors import DataError
from fmnist.utils.reading import read_json, reading

# Where preprocess writes the splits and meta.json, and every later stage reads them.
PROCESSED_DIR = Path("data/processed")


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
                f"data/raw/{name}.gz is not the file download verified: its content has SHA-256 "
                f"{digest[:12]}..., download.sha256 expects {expected[name][:12]}...; restore it with "
                "'dvc checkout data/raw' or 'dvc repro --force download'"
            )


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so equal arrays give equal bytes."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


def recorded_normalization(processed_dir: Path) -> dict[str, float]:
    """The normalisation ``preprocess`` recorded in ``meta.json``: the training pixels' mean and std."""
    path = Path(processed_dir) / "meta.json"
    meta = read_json(path)
    with reading(path):
        return {key: float(meta["normalization"][key]) for key in ("mean", "std")}


def load_split(processed_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A preprocessed split as normalised float32 images (N, 28, 28, 1) and uint8 labels."""
    norm = recorded_normalization(processed_dir)
    path = Path(processed_dir) / f"{split}.npz"
    with reading(path), np.load(path, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    return normalize(images, norm), labels


def normalize(images: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """uint8 images (N, 28, 28) as the models take them: float32 (N, 28, 28, 1), normalised by ``norm``."""
    scale = np.float32(1.0 / (255.0 * norm["std"]))
    x = images.astype(np.float32) * scale - np.float32(norm["mean"] / norm["std"])
    return x[..., np.newaxis]
