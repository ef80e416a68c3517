"""The model families: one module each, found here by name.

A family module holds three things: ``HELP`` (one sentence for the parameter reference), ``KEYS``
(its own keys in ``params.yaml``, as :class:`fmnist.config.schema.Param`) and ``build(cfg)``,
which returns the inputs and outputs of an uncompiled Keras model from (28, 28, 1) images to 10
softmax probabilities. Adding a family is one module here plus its block under ``families:`` in
``params.yaml`` (docs/extending.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

FAMILIES: dict[str, ModuleType] = {
    info.name: importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
}


def build(family: str, cfg: dict[str, Any]) -> Any:
    """The named family's model, uncompiled."""
    import keras

    inputs, outputs = FAMILIES[family].build(cfg)
    return keras.Model(inputs, outputs, name=family)
