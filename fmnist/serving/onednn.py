"""oneDNN's switch as ``params.yaml`` sets it, for a process started by hand (``fmnist.predict``).

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, as it loads, and its default differs by CPU: on
where the CPU has AVX-512 features, off where it has not. dvc.yaml's commands set it for the stages from
``train.onednn``; a process of ours that users start themselves sets it the same way before its
first TensorFlow import, so it runs the kernels the model was evaluated with on every CPU. No
TensorFlow here: this must load before it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fmnist.config.params import PARAMS_FILE
from fmnist.config.yaml_reader import read_yaml
from fmnist.utils.errors import ParamsError


def switch(path: Path = PARAMS_FILE) -> str:
    """``train.onednn`` as TensorFlow reads it (``true`` or ``false``); the environment's own value
    where the file cannot say (a bad file is refused in one line later, by the check of all of it)."""
    try:
        onednn = read_yaml(path)["train"]["onednn"]
    except (ParamsError, KeyError, TypeError):  # unreadable, or no train.onednn in it
        onednn = None
    return str(onednn).lower() if isinstance(onednn, bool) else os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")
