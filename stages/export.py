"""Stage ``export``: one trained family as a SavedModel for serving, ``python -m stages.export FAMILY``.

Writes ``models/serving/FAMILY/``: ``1/`` (the SavedModel, TensorFlow Serving's version layout),
whose ``serving_default`` signature takes uint8 images ``[N, 28, 28]`` and returns
``probabilities`` ``[N, 10]``, averaged over the test-time views evaluate uses for the family, and
``class_names.json`` (the class of each output, in order).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist.config.params import evaluate_config, family_config, load_family
from fmnist.data.idx import CLASS_NAMES
from fmnist.data.splits import PROCESSED_DIR, recorded_normalization
from fmnist.evaluation.views import VIEWS
from fmnist.models import families, model_path, saving
from fmnist.serving.export import export
from fmnist.utils import runtime
from fmnist.utils.atomic import atomic_dir, write_json
from fmnist.utils.errors import run_stage

SERVING_DIR = Path("models/serving")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.export", description=__doc__.splitlines()[0])
    parser.add_argument("family", help="the model family to export (a block under families: in params.yaml)")
    args = parser.parse_args(argv)
    params = load_family(args.family, families.keys, tuple(VIEWS))
    cfg, views = family_config(params, args.family), evaluate_config(params, args.family)["views"]

    runtime.configure(cfg)

    model = saving.load_model(model_path(args.family))
    normalization = recorded_normalization(PROCESSED_DIR)
    with atomic_dir(SERVING_DIR / args.family) as out:
        export(model, normalization, VIEWS[views], out)
        write_json(out / "class_names.json", list(CLASS_NAMES))
    print(f"{args.family}: SavedModel in {SERVING_DIR / args.family}, test-time views: {views}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
