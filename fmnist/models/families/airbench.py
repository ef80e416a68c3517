"""airbench: the layout of Keller Jordan's CIFAR-10 speed runs (cifar10-airbench), for 28x28 inputs.

A stem conv, then per block a conv, a 2x2 max-pool and a conv, batch norm and the activation after
each conv; a global max-pool and the classifier. No dense hidden layer and no dropout: the
augmentation, label smoothing and the schedule in its params.yaml block do the regularising.
"""

from __future__ import annotations

from typing import Any

import keras

from fmnist.config.schema import Param
from fmnist.models.blocks import Hidden, classifier, conv, image_input, layers

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
}


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    inputs = image_input()
    # Keras' dtype policy is process-wide: set for the layers built here, then put back.
    outer_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg["precision"])
    try:
        x = conv(inputs, cfg["stem"], hidden, kernel=2)  # 2x2 patches, as airbench's first (whitening) layer
        for filters in cfg["filters"]:
            x = conv(x, filters, hidden, pool=True)
            x = conv(x, filters, hidden)
        x = layers.GlobalMaxPooling2D()(x)
    finally:
        keras.config.set_dtype_policy(outer_policy)
    return inputs, classifier(x, cfg["initializer"])  # float32: the softmax and the loss in full precision
