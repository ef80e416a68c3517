"""Training under ``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` cannot run.

Keras 3.15's ``fit``, ``evaluate`` and ``train_on_batch`` fail under this strategy: they reduce
per-replica batches and scalar logs with ``strategy.reduce(..., axis=0)``
(keras-team/keras#20585). This is the same epochs-batches-callbacks loop with a train step of our
own, written as TensorFlow's multi-worker custom-loop tutorial does it: each replica averages its
loss over the global batch, and Keras' optimizer sums the gradients across replicas.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

# Summed over replicas: per-example loss, correct predictions, examples.
Sums = tuple[tf.Tensor, tf.Tensor, tf.Tensor]


def _forward(model: keras.Model, x: tf.Tensor, y: tf.Tensor, training: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-example loss, regularisation penalty and per-example correctness of one replica's batch."""
    probs = model(x, training=training)
    per_example = model.loss.call(y, probs)  # Loss.call: per-example, before any reduction
    penalty = tf.add_n(model.losses) if model.losses else tf.constant(0.0)
    correct = tf.cast(tf.equal(tf.argmax(probs, -1), tf.argmax(y, -1)), tf.float32)
    return per_example, penalty, correct


class Loop:
    """``fit`` and ``evaluate`` for a compiled, built ``model`` under this strategy, with compiled
    distributed train and test steps."""

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy, global_batch: int) -> None:
        self.model, self.strategy, self.global_batch = model, strategy, global_batch
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)  # slots must exist before replica context
        self.train = tf.function(self._train)
        self.test = tf.function(self._test)

    def _reduce(self, per_replica: tuple[tf.Tensor, ...]) -> Sums:
        return tuple(self.strategy.reduce("SUM", v, axis=None) for v in per_replica)

    def _train(self, batch: Any) -> Sums:
        def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
            with tf.GradientTape() as tape:
                per_example, penalty, correct = _forward(self.model, x, y, training=True)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
                loss += tf.nn.scale_regularization_loss(penalty)
            variables = self.model.trainable_variables
            self.model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            n = tf.cast(tf.shape(x)[0], tf.float32)
            return tf.reduce_sum(per_example) + penalty * n, tf.reduce_sum(correct), n

        return self._reduce(self.strategy.run(step, args=batch))

    def _test(self, batch: Any) -> Sums:
        def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
            per_example, penalty, correct = _forward(self.model, x, y, training=False)
            n = tf.cast(tf.shape(x)[0], tf.float32)
            return tf.reduce_sum(per_example) + penalty * n, tf.reduce_sum(correct), n

        return self._reduce(self.strategy.run(step, args=batch))

    def evaluate(self, ds: tf.data.Dataset) -> tuple[float, float]:
        """Loss and accuracy over every example of ``ds``, all hosts together."""
        totals = np.zeros(3)
        for batch in self.strategy.experimental_distribute_dataset(ds):
            totals += [float(v) for v in self.test(batch)]
        return totals[0] / totals[2], totals[1] / totals[2]

    def fit(
        self,
        train_ds: tf.data.Dataset,
        val_ds: tf.data.Dataset,
        epochs: int,
        callbacks: list[keras.callbacks.Callback],
        verbose: int,
    ) -> dict[str, list[float]]:
        """``model.fit`` for this strategy: the same callbacks and logs; return the history."""
        model = self.model
        batches = self.strategy.experimental_distribute_dataset(train_ds)
        callback_list = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=int(train_ds.cardinality()),
            model=model,
        )
        model.stop_training = False
        callback_list.on_train_begin()
        for epoch in range(epochs):
            callback_list.on_epoch_begin(epoch)
            totals = np.zeros(3)
            logs: dict[str, float] = {}
            for step, batch in enumerate(batches):
                callback_list.on_train_batch_begin(step)
                totals += [float(v) for v in self.train(batch)]
                logs = {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}  # running, as fit logs
                callback_list.on_train_batch_end(step, logs)
            val_loss, val_accuracy = self.evaluate(val_ds)
            callback_list.on_epoch_end(epoch, {**logs, "val_loss": val_loss, "val_accuracy": val_accuracy})
            if model.stop_training:
                break
        model.optimizer.finalize_variable_values(model.trainable_weights)  # train.ema, as fit does
        callback_list.on_train_end()
        return model.history.history
