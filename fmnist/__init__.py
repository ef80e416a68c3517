"""Fashion-MNIST studies: the library the stages call.

Its modules import TensorFlow and Keras at the top, as Python expects: TensorFlow's one setting that
must precede its import, oneDNN on or off, is settled before the interpreter starts (the stage's
command in dvc.yaml sets ``TF_ENABLE_ONEDNN_OPTS`` from ``train.onednn``; :func:`fmnist.utils.runtime.configure`
refuses a process where it differs). Whichever module imports TensorFlow first, its start-up banner
is held back here (:mod:`fmnist.utils.banner`), and its C++ logs below warnings stay quiet.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

from fmnist.utils.banner import banner_filtered


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python would, and runs its import with the banner filtered; once."""

    def find_spec(
        self, name: str, path: Any, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                with banner_filtered():
                    run(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own C++ logs: warnings and worse
    sys.meta_path.insert(0, _QuietTensorFlow())
