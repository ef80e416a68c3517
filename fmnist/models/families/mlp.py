"""mlp: dense layers, dropout after the last one (seeds 000, 002 and 003)."""

from __future__ import annotations

from typing import Any

from fmnist.config.schema import ACTIVATIONS, Param
from fmnist.models.blocks import Hidden, classifier, dense, image_input, layers
from fmnist.utils.errors import ParamsError

HELP = "Fully connected net, dropout after the last hidden layer (seeds 000, 002, 003)."
KEYS = {
    "hidden": Param("Units of each hidden dense layer, input to output.", kind=list, item=int, min_items=1, ge=1),
    "activations": Param(
        "Activation per hidden layer, overriding train.activation (seed 003: [relu, sigmoid]); "
        "empty: train.activation everywhere.",
        kind=list,
        item=str,
        choices=ACTIVATIONS,
    ),
}


def build(cfg: dict[str, Any]) -> tuple[Any, Any]:
    activations = cfg["activations"] or [cfg["activation"]] * len(cfg["hidden"])
    if len(activations) != len(cfg["hidden"]):
        raise ParamsError(
            f"params.yaml: families.mlp.activations has {len(activations)} entries but hidden has "
            f"{len(cfg['hidden'])} layers; give one activation per hidden layer, or []"
        )
    inputs = image_input()
    x = layers.Flatten()(inputs)
    for units, activation in zip(cfg["hidden"], activations, strict=True):
        hidden = Hidden(activation, cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
        x = dense(x, units, hidden)
    x = layers.Dropout(cfg["dropout"])(x)
    return inputs, classifier(x, cfg["initializer"])
