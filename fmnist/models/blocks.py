"""The layers every family is built from: a dense or conv layer with its batch norm and activation,
and the classifier head.

Imported only inside a family's ``build``: Keras imports TensorFlow, which must not load before
:func:`fmnist.utils.runtime.configure` has fixed its settings.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from fmnist.data.idx import CLASS_NAMES, IMAGE_SHAPE
from fmnist.models.fused_batch_norm import FusedBatchNormalization

__all__ = ["classifier", "conv", "dense", "image_input", "layers"]


def image_input() -> Any:
    """A batch of (28, 28, 1) images."""
    return keras.Input((*IMAGE_SHAPE, 1))


def _regularizer(cfg: dict[str, Any]) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L1L2(l1=cfg["l1"], l2=cfg["l2"]) if cfg["l1"] or cfg["l2"] else None


def _activate(x: Any, cfg: dict[str, Any]) -> Any:
    """Batch norm (if on) then the activation: the order of the BN paper and of seeds 001 and 004."""
    if cfg["batch_norm"]:
        x = FusedBatchNormalization()(x)
    return layers.Activation(cfg["activation"])(x)


def dense(x: Any, units: int, cfg: dict[str, Any]) -> Any:
    """Dense, batch norm if on, activation."""
    x = layers.Dense(
        units,
        use_bias=not cfg["batch_norm"],  # BN's shift makes a bias redundant
        kernel_initializer=cfg["initializer"],
        kernel_regularizer=_regularizer(cfg),
    )(x)
    return _activate(x, cfg)


def conv(x: Any, filters: int, cfg: dict[str, Any], pool: bool = False, kernel: int = 3) -> Any:
    """Convolution (3x3 unless ``kernel``) keeping the size, then a 2x2 max-pool if ``pool``, batch
    norm if on, activation.

    Pooling before the batch norm and activation, as airbench does, normalises a quarter of the values.
    """
    x = layers.Conv2D(
        filters,
        kernel,
        padding="same",
        use_bias=not cfg["batch_norm"],
        kernel_initializer=cfg["initializer"],
        kernel_regularizer=_regularizer(cfg),
    )(x)
    if pool:
        x = layers.MaxPooling2D()(x)
    return _activate(x, cfg)


def classifier(x: Any, cfg: dict[str, Any]) -> Any:
    """Softmax over the 10 classes."""
    # The output layer gets the initializer but no penalty: L1/L2 are for hidden layers.
    return layers.Dense(len(CLASS_NAMES), activation="softmax", kernel_initializer=cfg["initializer"])(x)
