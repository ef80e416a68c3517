"""What a model costs, counted rather than timed: the same model gives the same figures anywhere."""

from __future__ import annotations

from typing import Any

# A training step costs about three forward passes: the forward, then the backward pass's two
# products (the gradients of the inputs and of the weights).
TRAINING_PASSES = 3


def training_flops_per_image(model: Any) -> int:
    """Multiply-adds of the conv and dense layers, x2 for FLOPs, x3 for the forward and backward passes.

    Batch norm, activations, pooling and the optimizer are left out: they are a few percent of
    these layers' work.
    """
    flops = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            flops += 2 * h * w * kh * kw * cin * cout
        elif kind == "Dense":
            cin, cout = layer.kernel.shape
            flops += 2 * cin * cout
    return TRAINING_PASSES * flops
