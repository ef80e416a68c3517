"""Classify your own pictures with a trained model: python -m fmnist.predict IMAGE_OR_FOLDER...

Each picture is prepared as Fashion-MNIST's were made (:mod:`fmnist.serving.images`), normalised
as the model was trained, and printed with its three likeliest classes. A picture in which nothing
stands out from the background is answered "no object found" instead: a classifier trained only
on garments would name one for an empty frame too. The family defaults to the best of the last
comparison (``metrics/compare/metrics.json``); the first line says which family answers. In a
folder, a file that is no image (a README beside the photos) is skipped and named on stderr; a file
named on the command line must be an image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fmnist.serving import onednn

# TensorFlow reads oneDNN's switch once, as it loads (the imports below): set as evaluate ran.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = onednn.switch()

import numpy as np

from fmnist.all_params import load_params
from fmnist.config.params import evaluate_config, family_config
from fmnist.data.idx import CLASS_NAMES
from fmnist.data.splits import PROCESSED_DIR, normalize, recorded_normalization
from fmnist.evaluation.inference import predict
from fmnist.models import model_path, saving
from fmnist.serving.images import NotAnImageError, image_files, prepare, read
from fmnist.utils import runtime
from fmnist.utils.errors import DataError, run_stage
from fmnist.utils.reading import read_json, reading

BEST = Path("metrics/compare/metrics.json")  # {"best": FAMILY}: DVC's metric of compare
TOP = 3
# Below it, the answer carries a note: the picture may be no garment. Chosen on the validation split
# as the top probability 2% of its images fall below, for airbench, the family predict uses by
# default; benchmarks/README.md has how often it fires on the test images and on noise.
LOW_CONFIDENCE = 0.45


def best_trained_family() -> str:
    if not BEST.is_file():
        raise DataError(f"{BEST} does not exist, so there is no best family yet; run 'make run' or name --family")
    comparison = read_json(BEST)
    with reading(BEST):
        return comparison["best"]


def classify(images: np.ndarray, family: str, params: dict[str, Any]) -> np.ndarray:
    """Class probabilities of prepared uint8 images (N, 28, 28) by ``family``'s trained model, over
    the test-time views its evaluation uses."""
    norm = recorded_normalization(PROCESSED_DIR)  # before TensorFlow starts: a missing file is one line
    runtime.configure(family_config(params, family))  # the threads and kernels evaluate used

    model = saving.load_model(model_path(family))
    ecfg = evaluate_config(params, family)  # the views evaluate scored it with
    return predict(model, normalize(images, norm), ecfg["batch_size"], ecfg["views"])


def answer(path: Path, frames: int, probs: np.ndarray | None) -> dict[str, Any]:
    """One picture's answer: its likeliest classes, or that no object was found in it."""
    top = [] if probs is None else np.argsort(-probs, kind="stable")[:TOP]
    return {
        "file": str(path),
        "frame": 1,  # of an animation, the first (read() decodes that one)
        "frames": frames,
        "object_found": probs is not None,
        "low_confidence": probs is not None and float(probs.max()) < LOW_CONFIDENCE,
        "top": [{"class": CLASS_NAMES[c], "probability": float(probs[c])} for c in top],
    }


def line(result: dict[str, Any]) -> str:
    where = result["file"] + (f" (frame 1 of {result['frames']})" if result["frames"] > 1 else "")
    if not result["object_found"]:
        return f"{where}: no object found (nothing in it stands out from the background)"
    classes = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
    if result["low_confidence"]:
        classes += f" (low confidence, below {LOW_CONFIDENCE:.0%}: it may be no garment the model knows)"
    return f"{where}: {classes}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.predict", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER", help="image files or folders of them")
    parser.add_argument("--family", help="the model to use (default: the best family of the comparison)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    args = parser.parse_args(argv)
    params = load_params()
    family = args.family or best_trained_family()
    family_config(params, family)  # an unknown family is one line before any file is read
    named = {path for path in args.paths if not path.is_dir()}
    files, pictures, skipped = [], [], []
    for path in image_files(args.paths):  # every file checked before the model loads
        try:
            pictures.append(read(path))
            files.append(path)
        except NotAnImageError:
            if path in named:
                raise
            skipped.append(path)
    if not files:
        raise DataError(f"no image among {', '.join(map(str, skipped))}; name image files or a folder that holds some")
    for path in skipped:
        print(f"skipped {path}: not an image Pillow can read", file=sys.stderr)
    prepared = [prepare(picture) for picture in pictures]
    found = [i for i, image in enumerate(prepared) if image is not None]
    probs = classify(np.stack([prepared[i] for i in found]), family, params) if found else []
    by_file = dict(zip(found, probs, strict=True))
    results = [answer(path, pictures[i].info["frames"], by_file.get(i)) for i, path in enumerate(files)]
    if args.json:
        print(json.dumps({"family": family, "predictions": results}, indent=2))
        return
    print(f"{family} ({'named by --family' if args.family else f'the best family of {BEST}'}):")
    for result in results:
        print(line(result))


if __name__ == "__main__":
    sys.exit(run_stage(main))
