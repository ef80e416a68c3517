"""cnn: VGG-style blocks of two 3x3 convs and a max-pool, then a dense head (seed 004's CNN)."""

from __future__ import annotations

from typing import Any

from fmnist.config.schema import Param
from fmnist.models.blocks import Hidden, classifier, conv, dense, image_input, layers

HELP = "VGG-style conv net with batch norm, dropout and augmentation (seed 004)."
KEYS = {
    "filters": Param(
        "Filters of each VGG block (two 3x3 convs, 2x2 max-pool).", kind=list, item=int, min_items=1, ge=1
    ),
    "dense": Param("Units of the dense layer after the conv blocks.", kind=int, ge=1),
}


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    inputs = image_input()
    x = inputs
    for filters in cfg["filters"]:
        x = conv(x, filters, hidden)
        x = conv(x, filters, hidden)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(cfg["dropout"])(x)
    x = layers.Flatten()(x)
    x = dense(x, cfg["dense"], hidden)
    x = layers.Dropout(cfg["dropout"])(x)
    return inputs, classifier(x, cfg["initializer"])
