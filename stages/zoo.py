"""The model families: one builder each, chosen by name.

A builder takes a family's resolved settings (``stages.params.family_config``) and returns an
uncompiled Keras model from (28, 28, 1) images to 10 softmax probabilities. Adding a family is one
builder here plus one block in ``stages/params.py`` and ``params.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from stages.dataset import CLASS_NAMES, IMAGE_SHAPE
from stages.errors import ParamsError
from stages.layers import FusedBatchNormalization
from stages.params import PARAMS_FILE

INPUT_SHAPE = (*IMAGE_SHAPE, 1)


def _regularizer(cfg: dict[str, Any]) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L1L2(l1=cfg["l1"], l2=cfg["l2"]) if cfg["l1"] or cfg["l2"] else None


def _activate(x: Any, cfg: dict[str, Any]) -> Any:
    """Batch norm (if on) then the activation: the order of the BN paper and of seeds 001 and 004."""
    if cfg["batch_norm"]:
        x = FusedBatchNormalization()(x)
    return layers.Activation(cfg["activation"])(x)


def _dense(x: Any, units: int, cfg: dict[str, Any]) -> Any:
    x = layers.Dense(
        units,
        use_bias=not cfg["batch_norm"],  # BN's shift makes a bias redundant
        kernel_initializer=cfg["initializer"],
        kernel_regularizer=_regularizer(cfg),
    )(x)
    return _activate(x, cfg)


def _conv(x: Any, filters: int, cfg: dict[str, Any]) -> Any:
    x = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=not cfg["batch_norm"],
        kernel_initializer=cfg["initializer"],
        kernel_regularizer=_regularizer(cfg),
    )(x)
    return _activate(x, cfg)


def _classifier(x: Any, cfg: dict[str, Any]) -> Any:
    # The output layer gets the initializer but no penalty: L1/L2 are for hidden layers.
    return layers.Dense(len(CLASS_NAMES), activation="softmax", kernel_initializer=cfg["initializer"])(x)


def mlp(cfg: dict[str, Any]) -> tuple[Any, Any]:
    activations = cfg["activations"] or [cfg["activation"]] * len(cfg["hidden"])
    if len(activations) != len(cfg["hidden"]):
        raise ParamsError(
            f"{PARAMS_FILE}: families.mlp.activations has {len(activations)} entries but hidden has "
            f"{len(cfg['hidden'])} layers; give one activation per hidden layer, or []"
        )
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Flatten()(inputs)
    for units, activation in zip(cfg["hidden"], activations, strict=True):
        x = _dense(x, units, {**cfg, "activation": activation})
    x = layers.Dropout(cfg["dropout"])(x)
    return inputs, _classifier(x, cfg)


def dnn(cfg: dict[str, Any]) -> tuple[Any, Any]:
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Flatten()(inputs)
    for units in cfg["hidden"]:
        x = layers.Dropout(cfg["dropout"])(_dense(x, units, cfg))
    return inputs, _classifier(x, cfg)


def cnn(cfg: dict[str, Any]) -> tuple[Any, Any]:
    inputs = keras.Input(INPUT_SHAPE)
    x = inputs
    for filters in cfg["filters"]:
        x = _conv(_conv(x, filters, cfg), filters, cfg)
        x = layers.Dropout(cfg["dropout"])(layers.MaxPooling2D()(x))
    x = _dense(layers.Flatten()(x), cfg["dense"], cfg)
    x = layers.Dropout(cfg["dropout"])(x)
    return inputs, _classifier(x, cfg)


def alexnet(cfg: dict[str, Any]) -> tuple[Any, Any]:
    first, second, *rest = cfg["filters"]
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.MaxPooling2D()(_conv(inputs, first, cfg))
    x = layers.MaxPooling2D()(_conv(x, second, cfg))
    for filters in rest:
        x = _conv(x, filters, cfg)
    x = layers.Flatten()(layers.MaxPooling2D()(x))
    for _ in range(2):
        x = layers.Dropout(cfg["dropout"])(_dense(x, cfg["dense"], cfg))
    return inputs, _classifier(x, cfg)


BUILDERS: dict[str, Callable[[dict[str, Any]], tuple[Any, Any]]] = {
    "mlp": mlp,
    "dnn": dnn,
    "cnn": cnn,
    "alexnet": alexnet,
}


def build(family: str, cfg: dict[str, Any]) -> keras.Model:
    """The named family's model, uncompiled."""
    inputs, outputs = BUILDERS[family](cfg)
    return keras.Model(inputs, outputs, name=family)
