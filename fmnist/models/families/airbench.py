"""airbench: the layout of Keller Jordan's CIFAR-10 speed runs (cifar10-airbench), for 28x28 inputs.

A stem conv, then per block a conv, a 2x2 max-pool and a conv, batch norm and the activation after
each conv; a global max-pool and the classifier. No dense hidden layer and no dropout: the
augmentation, label smoothing and the schedule in its params.yaml block do the regularising.

Two of airbench's starts, each a key (the trials: benchmarks/README.md): ``whiten``, a stem whose
filters are set from the training images before training and never trained; ``dirac``, block convs
that start as the identity on their inputs.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from fmnist.config.schema import Param
from fmnist.models.blocks import Hidden, classifier, conv, image_input, layers
from fmnist.utils.errors import ParamsError

HELP = "Speed-run conv net after airbench (KellerJordan/cifar10-airbench), three pooled blocks."
KEYS = {
    "stem": Param("Filters of the first conv (2x2), at full size.", kind=int, ge=1),
    "filters": Param(
        "Filters of each block: 3x3 conv, 2x2 max-pool, 3x3 conv.", kind=list, item=int, min_items=1, ge=1
    ),
    "precision": Param(
        "Keras dtype policy of the convs and batch norms; mixed_bfloat16 computes in bfloat16 with "
        "float32 weights, faster only where the hardware has bfloat16 matrix units (Intel AMX, recent "
        "GPUs). The classifier stays float32.",
        choices=("float32", "mixed_bfloat16"),
    ),
    "whiten": Param(
        "The stem as airbench's: its 2x2 filters are the training images' patch whitening (the patch "
        "covariance's eigenvectors over the root of their eigenvalues, and their negatives, so stem "
        "must be 8), set before training and frozen, with no batch norm after them.",
        kind=bool,
    ),
    "dirac": Param(
        "Each block conv starts as the identity on its inputs (airbench's dirac init): its first "
        "filters, one per input channel, pass that channel through; the rest as initializer.",
        kind=bool,
    ),
}
# airbench's whitening: the patches of this many training images, and the eigenvalue floor.
WHITEN_IMAGES = 5000
WHITEN_EPS = 5e-4


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    if cfg["whiten"] and cfg["stem"] != 8:
        raise ParamsError(
            f"params.yaml: families.airbench.whiten needs stem: 8 (the 4 values of a 2x2 patch of one "
            f"channel, and their negatives); stem is {cfg['stem']}"
        )
    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    inputs = image_input()
    # Keras' dtype policy is process-wide: set for the layers built here, then put back.
    outer_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg["precision"])
    try:
        if cfg["whiten"]:
            # No padding, no bias and no batch norm: the filters are set from the data (prepare).
            x = layers.Conv2D(cfg["stem"], 2, use_bias=False, trainable=False, name="whiten")(inputs)
            x = layers.Activation(cfg["activation"])(x)
        else:
            x = conv(inputs, cfg["stem"], hidden, kernel=2)  # 2x2 patches, as airbench's first (whitening) layer
        for filters in cfg["filters"]:
            x = conv(x, filters, hidden, pool=True)
            x = conv(x, filters, hidden)
        x = layers.GlobalMaxPooling2D()(x)
    finally:
        keras.config.set_dtype_policy(outer_policy)
    return inputs, classifier(x, cfg["initializer"])  # float32: the softmax and the loss in full precision


def whitening_filters(images: np.ndarray) -> np.ndarray:
    """The whitening stem's kernel, (2, 2, 1, 8): for each eigenvector of the 2x2 patches' (uncentred)
    covariance over the first ``WHITEN_IMAGES`` images, the vector over the root of its eigenvalue,
    then the negatives of all four."""
    patches = np.lib.stride_tricks.sliding_window_view(images[:WHITEN_IMAGES, :, :, 0], (2, 2), axis=(1, 2))
    flat = patches.reshape(-1, 4).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(flat.T @ flat / len(flat))
    filters = (eigenvectors / np.sqrt(eigenvalues + WHITEN_EPS)).T.reshape(4, 2, 2)  # one 2x2 filter a row
    filters = np.concatenate([filters, -filters])
    return filters.transpose(1, 2, 0)[:, :, np.newaxis, :].astype(np.float32)


def dirac(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` (height, width, in, out) with its first ``in`` filters the identity: filter i has a
    1 at the centre of input channel i and 0 elsewhere."""
    height, width, channels, filters = kernel.shape
    n = min(channels, filters)
    out = kernel.copy()
    out[:, :, :, :n] = 0
    out[height // 2, width // 2, np.arange(n), np.arange(n)] = 1
    return out


def prepare(model: Any, cfg: dict[str, Any], images: np.ndarray) -> None:
    """Set the weights that start from the data or from the identity, before training."""
    for layer in model.layers:
        if not isinstance(layer, layers.Conv2D):
            continue
        if layer.name == "whiten":
            layer.kernel.assign(whitening_filters(images))
        elif cfg["dirac"] and layer.kernel.shape[0] == 3:
            layer.kernel.assign(dirac(keras.ops.convert_to_numpy(layer.kernel)))
