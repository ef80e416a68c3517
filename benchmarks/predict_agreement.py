"""How ``python -m fmnist.predict`` treats real test images, after ``make run``.

    .venv/bin/python -m benchmarks.predict_agreement [N] [FAMILY]

For the first N test images (default 10000) of FAMILY (default alexnet): how many come through the
picture preparation unchanged when written as PNG, and how often the class predict gives equals
evaluate's, for that PNG and for the image negated, upscaled 3x (bicubic) and saved as RGB JPEG.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist.all_params import load_params
from fmnist.data.idx import CLASS_NAMES
from fmnist.predict import classify
from fmnist.serving.images import prepare, read


def main(n: int = 10000, family: str = "alexnet") -> None:
    with np.load("data/processed/test.npz") as npz:
        images = npz["images"][:n]
    with open(f"metrics/evaluate/{family}/predictions.csv") as f:
        evaluated = np.array([CLASS_NAMES.index(row["predicted"]) for row in csv.DictReader(f)][:n])
    png, jpg, unchanged = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for image in images:
            Image.fromarray(image).save(Path(tmp) / "a.png")
            png.append(prepare(read(Path(tmp) / "a.png")))
            unchanged += np.array_equal(png[-1], image)
            photo = Image.fromarray(255 - image).resize((84, 84), Image.Resampling.BICUBIC).convert("RGB")
            photo.save(Path(tmp) / "b.jpg", quality=95)
            jpg.append(prepare(read(Path(tmp) / "b.jpg")))
    params = load_params()
    classes = [classify(np.stack(x), family, params).argmax(1) for x in (png, jpg)]  # predict's own path
    print(
        f"{family}, first {n} test images: PNG prepared unchanged {unchanged}/{n}; PNG class = evaluate's "
        f"{np.mean(classes[0] == evaluated):.2%}; negated 3x RGB JPEG class = evaluate's "
        f"{np.mean(classes[1] == evaluated):.2%}"
    )


if __name__ == "__main__":
    main(*(int(a) if a.isdigit() else a for a in sys.argv[1:]))
