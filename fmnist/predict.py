"""Classify your own pictures with a trained model: ``python -m fmnist.predict IMAGE_OR_FOLDER...``.

Each picture is prepared as Fashion-MNIST's were made (:mod:`fmnist.serving.images`), normalised
as the model was trained, and printed with its three likeliest classes. The family defaults to the
best of the last comparison (``metrics/compare/metrics.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.config.params import evaluate_config, family_config, load_params
from fmnist.data.idx import CLASS_NAMES
from fmnist.data.splits import normalize
from fmnist.serving.images import image_files, prepare, read
from fmnist.training import runtime
from fmnist.utils.errors import DataError, run_stage

COMPARISON = Path("metrics/compare/metrics.json")
META = Path("data/processed/meta.json")
MODELS_DIR = Path("models")
TOP = 3


def best_family() -> str:
    if not COMPARISON.is_file():
        raise DataError(f"{COMPARISON} does not exist, so there is no best family yet; run 'make run' or name --family")
    return json.loads(COMPARISON.read_text())["best"]["family"]


def classify(images: np.ndarray, family: str, params: dict[str, Any]) -> np.ndarray:
    """Class probabilities of prepared uint8 images (N, 28, 28) by ``family``'s trained model, over
    the test-time views its evaluation uses."""
    model_path = MODELS_DIR / f"{family}.keras"
    if not model_path.is_file():
        raise DataError(
            f"{model_path} does not exist; make it with 'dvc repro train@{family}', or fetch it with "
            f"'dvc pull {model_path}' from a DVC remote"
        )
    if not META.is_file():
        raise DataError(f"{META} does not exist; make it with 'dvc repro preprocess', or fetch it with 'dvc pull'")
    runtime.configure(family_config(params, family))  # the threads and kernels evaluate used
    # Imported after configure(): importing TensorFlow fixes the oneDNN setting.
    from fmnist.evaluation.inference import predict
    from fmnist.models import saving

    model = saving.load_model(model_path)
    norm = json.loads(META.read_text())["normalization"]
    ecfg = evaluate_config(params, family)  # the views evaluate scored it with
    return predict(model, normalize(images, norm), ecfg["batch_size"], ecfg["views"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.predict", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER", help="image files or folders of them")
    parser.add_argument("--family", help="the model to use (default: the best family of the comparison)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    args = parser.parse_args(argv)
    params = load_params()
    family = args.family or best_family()
    family_config(params, family)  # an unknown family is one line before any file is read
    files = image_files(args.paths)
    images = np.stack([prepare(read(path)) for path in files])  # every file checked before the model loads

    probs = classify(images, family, params)
    results = [
        {
            "file": str(path),
            "top": [{"class": CLASS_NAMES[c], "probability": float(p[c])} for c in np.argsort(-p, kind="stable")[:TOP]],
        }
        for path, p in zip(files, probs, strict=True)
    ]
    if args.json:
        print(json.dumps({"family": family, "predictions": results}, indent=2))
        return
    for result in results:
        top = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
        print(f"{result['file']}: {top}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
