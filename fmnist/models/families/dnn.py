"""dnn: a deeper dense net, batch norm and dropout after every layer (seed 001's FCN, seed 004's ANN)."""

from __future__ import annotations

from typing import Any

from fmnist.config.schema import Param
from fmnist.models.blocks import Hidden, classifier, dense, image_input, layers

HELP = "Deeper fully connected net, batch norm and dropout after every hidden layer (seeds 001, 004)."
KEYS = {
    "hidden": Param("Units of each hidden dense layer, input to output.", kind=list, item=int, min_items=1, ge=1),
}


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    inputs = image_input()
    x = layers.Flatten()(inputs)
    for units in cfg["hidden"]:
        # Made before the layer it follows, as the results of record were: layers draw their seeds in
        # the order they are made, so another order trains other weights.
        dropout = layers.Dropout(cfg["dropout"])
        x = dense(x, units, hidden)
        x = dropout(x)
    return inputs, classifier(x, cfg["initializer"])
