"""How often predict's low-confidence note fires: ``python -m benchmarks.confidence [--family F]``.

A classifier trained on garments names a garment for anything, and is often sure of it. The note
fires when the top probability is below a threshold, chosen on the validation split (the test set
chooses nothing) as the level below which a given share of validation images fall. Printed: that
threshold, and the share of test images and of noise pictures below it. The noise is what a user
might bring that is no garment: random RGB pictures, pixel by pixel and smooth (random 8x8 colours
blown up), each saved as a JPEG and read back through predict's own preparation.
"""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np
from PIL import Image

from fmnist.all_params import load_params
from fmnist.data.splits import PROCESSED_DIR
from fmnist.predict import best_trained_family, classify
from fmnist.serving.images import prepare, read

SHARES = (0.01, 0.02, 0.05)  # of validation images below the threshold
NOISE = 1000  # pictures of each kind


def noise(kind: str, rng: np.random.Generator) -> np.ndarray | None:
    """One noise picture, as predict prepares it (None: nothing stands out in it)."""
    if kind == "pixels":
        pixels = rng.integers(0, 256, (200, 200, 3), np.uint8)
    else:
        pixels = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).resize((200, 200)))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    buffer.seek(0)
    return prepare(read(buffer))


def top(probs: np.ndarray) -> np.ndarray:
    return probs.max(axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.confidence", description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="default: the best family of the comparison")
    args = parser.parse_args(argv)
    params = load_params()
    family = args.family or best_trained_family()
    split = {}
    for name in ("val", "test"):
        with np.load(PROCESSED_DIR / f"{name}.npz") as npz:
            split[name] = top(classify(npz["images"], family, params))
    rng = np.random.default_rng(0)
    noisy = {}
    for kind in ("pixels", "smooth"):
        prepared = [noise(kind, rng) for _ in range(NOISE)]
        found = np.stack([p for p in prepared if p is not None])
        noisy[kind] = top(classify(found, family, params))
    print(f"| threshold ({family}) | validation below | test below | pixel noise below | smooth noise below |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for share in SHARES:
        level = float(np.quantile(split["val"], share))
        shares = [np.mean(values < level) for values in (split["val"], split["test"], *noisy.values())]
        print(f"| {level:.3f} | " + " | ".join(f"{s:.1%}" for s in shares) + " |")


if __name__ == "__main__":
    sys.exit(main())
