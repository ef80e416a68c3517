"""The model families: one module each, found here by name and imported only when asked for.

A family module holds three things: ``HELP`` (one sentence for the parameter reference), ``KEYS``
(its own keys in ``params.yaml``, as :class:`fmnist.config.schema.Param`) and ``build(cfg)``,
which returns the inputs and outputs of an uncompiled Keras model from (28, 28, 1) images to 10
softmax probabilities; and may hold ``prepare(model, cfg, images)``, which sets weights from the
training images before training (airbench's whitening). Adding a family is one module here plus
its block under ``families:`` in ``params.yaml`` (docs/extending.md). A stage imports its own
family's module and no other, so editing one family's file reruns that family's stages alone.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

import keras
import numpy as np

from fmnist.utils.errors import ParamsError

NAMES: tuple[str, ...] = tuple(info.name for info in pkgutil.iter_modules(__path__))


def module(family: str) -> ModuleType:
    """The named family's module."""
    if family not in NAMES:
        raise ParamsError(f"no family '{family}' in fmnist/models/families/; there are {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{family}")


def keys(family: str) -> dict[str, Any]:
    """The named family's own keys in ``params.yaml``."""
    return module(family).KEYS


def prepare(family: str, model: Any, cfg: dict[str, Any], images: np.ndarray) -> None:
    """Let the family set weights from the training ``images`` before training, if its module has a
    ``prepare(model, cfg, images)`` (airbench's whitening); other families start as built."""
    hook = getattr(module(family), "prepare", None)
    if hook is not None:
        hook(model, cfg, images)


def build(family: str, cfg: dict[str, Any]) -> Any:
    """The named family's model, uncompiled."""
    inputs, outputs = module(family).build(cfg)
    return keras.Model(inputs, outputs, name=family)
