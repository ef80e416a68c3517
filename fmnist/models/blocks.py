"""The layers every family is built from: a dense or conv layer with its batch norm and activation,
and the classifier head.

A block takes what it uses, no more: the units or filters, and :class:`Hidden`, how every hidden
layer of the family is made. Layers draw their seeds in the order they are made, so each block makes
its layers in the order it applies them (the weights of record depend on it: docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from fmnist.data.idx import CLASS_NAMES, IMAGE_SHAPE
from fmnist.models.fused_batch_norm import FusedBatchNormalization

__all__ = ["Hidden", "classifier", "conv", "dense", "image_input", "layers"]


@dataclass(frozen=True)
class Hidden:
    """How a hidden layer is made: its activation, batch norm or not, kernel initializer and penalties."""

    activation: str
    batch_norm: bool
    initializer: str
    l1: float = 0.0
    l2: float = 0.0

    def penalty(self) -> keras.regularizers.Regularizer | None:
        """A new L1/L2 penalty for one layer's kernel, or none."""
        return keras.regularizers.L1L2(l1=self.l1, l2=self.l2) if self.l1 or self.l2 else None


def image_input() -> Any:
    """A batch of (28, 28, 1) images."""
    return keras.Input((*IMAGE_SHAPE, 1))


def _activate(x: Any, hidden: Hidden) -> Any:
    """Batch norm (if on) then the activation: the order of the BN paper and of seeds 001 and 004."""
    if hidden.batch_norm:
        x = FusedBatchNormalization()(x)
    return layers.Activation(hidden.activation)(x)


def dense(x: Any, units: int, hidden: Hidden) -> Any:
    """Dense, batch norm if on, activation."""
    x = layers.Dense(
        units,
        use_bias=not hidden.batch_norm,  # BN's shift makes a bias redundant
        kernel_initializer=hidden.initializer,
        kernel_regularizer=hidden.penalty(),
    )(x)
    return _activate(x, hidden)


def conv(x: Any, filters: int, hidden: Hidden, pool: bool = False, kernel: int = 3) -> Any:
    """Convolution (3x3 unless ``kernel``) keeping the size, then a 2x2 max-pool if ``pool``, batch
    norm if on, activation.

    Pooling before the batch norm and activation, as airbench does, normalises a quarter of the values.
    """
    x = layers.Conv2D(
        filters,
        kernel,
        padding="same",
        use_bias=not hidden.batch_norm,
        kernel_initializer=hidden.initializer,
        kernel_regularizer=hidden.penalty(),
    )(x)
    if pool:
        x = layers.MaxPooling2D()(x)
    return _activate(x, hidden)


def classifier(x: Any, initializer: str) -> Any:
    """Softmax over the 10 classes; the initializer but no penalty (L1/L2 are for hidden layers)."""
    return layers.Dense(len(CLASS_NAMES), activation="softmax", kernel_initializer=initializer)(x)
