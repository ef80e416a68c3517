"""The fused batch norm computes what Keras' own does, and is the kernel that actually runs."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fmnist.models.fused_batch_norm import FusedBatchNormalization
from fmnist.models.saving import load_model, save_model


def pair(shape):
    """Keras' batch norm and ours, built alike with the same non-trivial scale and shift."""
    rng = np.random.default_rng(0)
    ours, theirs = FusedBatchNormalization(), keras.layers.BatchNormalization()
    for layer in (ours, theirs):
        layer.build(shape)
    gamma, beta = rng.uniform(0.5, 2, shape[-1]), rng.normal(size=shape[-1])
    for layer in (ours, theirs):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    x = tf.constant(rng.normal(3, 2, shape), tf.float32)
    return ours, theirs, x


def step(layer, x):
    """Training-mode output, and gradients of a non-uniform loss with respect to x, scale and shift."""
    weights = tf.reshape(tf.range(tf.size(x), dtype=tf.float32) % 7, x.shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * weights)
    return y, tape.gradient(loss, [x, layer.gamma, layer.beta])


def test_training_step_matches_keras_batch_norm_on_images():
    ours, theirs, x = pair((16, 5, 5, 3))
    y_ours, grads_ours = step(ours, x)
    y_theirs, grads_theirs = step(theirs, x)
    np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    # The moving statistics: the biased variance, as Keras keeps it, not the kernel's unbiased one.
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5)


def test_the_fused_kernel_runs_on_images_and_keras_path_on_dense_inputs():
    def ops(shape):
        layer, _, x = pair(shape)
        graph = tf.function(lambda t: layer(t, training=True)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in ops((8, 4, 4, 2))
    assert "FusedBatchNormV3" not in ops((8, 2))


def test_dense_inputs_give_exactly_keras_results():
    ours, theirs, x = pair((32, 6))
    y_ours, grads_ours = step(ours, x)
    y_theirs, grads_theirs = step(theirs, x)
    np.testing.assert_array_equal(y_ours, y_theirs)
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_saved_model_loads_back_with_the_layer(tmp_path):
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, FusedBatchNormalization()(inputs))
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[-1], FusedBatchNormalization)
    x = np.random.default_rng(1).normal(size=(3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
