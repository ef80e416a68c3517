"""Batch norm for conv feature maps through TensorFlow's fused kernel."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="fashion_mnist")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch norm, trained on image batches with TensorFlow's one fused kernel.

    Keras 3 builds batch norm from separate moment, normalise and scale ops, which cost the conv
    families a large share of their training step on a CPU (benchmarks/README.md). The fused kernel
    (oneDNN's) computes the same function, so only the rounding differs. Inference, dense (2-D)
    inputs, masks, renorm and synchronized moments keep Keras' own path.
    """

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype == tf.float32
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        # The kernel returns the unbiased batch variance; Keras' moving variance averages the biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
