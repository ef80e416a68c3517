"""Stage ``check``: all of ``params.yaml``, before any other stage removes its outputs.

DVC deletes a stage's outputs before it runs the stage's command, so a value the command then
refuses would cost the outputs of the last good run: ``dvc exp run -S train.batch_size=0`` left no
``models/mlp.keras``. Every stage is downstream of this one (``download`` depends on its output),
so DVC runs it first and a refused value stops ``dvc repro`` here, every output where it was.
Its output is always the same bytes, so a value it accepts reruns only the stages whose own
params or deps changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist.all_params import load_params
from fmnist.config.params import PARAMS_FILE
from fmnist.utils.atomic import atomic_path
from fmnist.utils.errors import run_stage

# persist: true in dvc.yaml: DVC leaves it in place while this stage runs, so a refusal keeps it.
OUT = Path("data/params.checked")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.check", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    load_params()
    with atomic_path(OUT) as tmp:
        tmp.write_text(
            f"{PARAMS_FILE} passed every check of fmnist/config/schema.py, the families' keys and the views\n"
        )


if __name__ == "__main__":
    sys.exit(run_stage(main))
