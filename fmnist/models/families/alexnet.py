"""alexnet: AlexNet's shape for 28x28 inputs, five 3x3 convs and two dense layers (seed 001)."""

from __future__ import annotations

from typing import Any

from fmnist.config.schema import Param
from fmnist.models.blocks import Hidden, classifier, conv, dense, image_input, layers

HELP = "AlexNet-style net for 28x28 inputs (seed 001: 93.14% in 10 epochs)."
KEYS = {
    "filters": Param(
        "Filters of the 3x3 conv layers; 2x2 max-pool after the first, the second and the last.",
        kind=list,
        item=int,
        min_items=3,
        ge=1,
    ),
    "dense": Param("Units of each of the two dense layers.", kind=int, ge=1),
}


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    first, second, *rest = cfg["filters"]
    inputs = image_input()
    x = conv(inputs, first, hidden)
    x = layers.MaxPooling2D()(x)
    x = conv(x, second, hidden)
    x = layers.MaxPooling2D()(x)
    for filters in rest:
        x = conv(x, filters, hidden)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        # Made before the layer it follows, as the results of record were: layers draw their seeds in
        # the order they are made, so another order trains other weights.
        dropout = layers.Dropout(cfg["dropout"])
        x = dense(x, cfg["dense"], hidden)
        x = dropout(x)
    return inputs, classifier(x, cfg["initializer"])
