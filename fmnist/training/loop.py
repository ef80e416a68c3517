"""The training loop, whole: the data, compile from the settings, ``fit`` with dvclive curves.

Everything a run does between a built model and a trained one is in this file; the input pipeline
is in :mod:`fmnist.training.inputs`, and the loop for multi-worker training, where Keras' ``fit``
cannot run, in :mod:`fmnist.training.multi_worker` (the same ``fit`` and ``evaluate``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from fmnist.training import multi_worker
from fmnist.training.inputs import dataset, training_batches
from fmnist.utils.errors import UserError, check_interrupt, deferred_interrupts

# Train steps per call into the graph: one Python round trip and callback sync per 32 steps instead
# of per step, which the small dense nets feel (benchmarks/README.md); the weights are bit-identical
# (tested). Batch callbacks then see every 32nd step.
STEPS_PER_EXECUTION = 32


class DivergedError(UserError):
    """The loss stopped being a finite number."""


def learning_rate(cfg: dict[str, Any], steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    lr = cfg["learning_rate"]
    if cfg["lr_schedule"] == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=cfg["epochs"] * steps_per_epoch)
    if cfg["lr_schedule"] == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, cfg["lr_decay_epochs"] * steps_per_epoch, cfg["lr_decay_factor"], staircase=True
        )
    return lr  # constant, and plateau (a callback lowers it)


def optimizer(cfg: dict[str, Any], steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch)
    # Keras' own moving average of the weights: it replaces them when fit ends, and every
    # ema_overwrite_frequency steps if set.
    ema = {"use_ema": True, "ema_momentum": cfg["ema"], "ema_overwrite_frequency": cfg["ema_every"] or None}
    average = ema if cfg["ema"] else {}
    name = cfg["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"], **average)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr, momentum=cfg["momentum"], **average)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg["weight_decay"], **average)
    return {"adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam}[name](lr, **average)


def loss(cfg: dict[str, Any]) -> keras.losses.Loss:
    if cfg["loss_function"] == "kl_divergence":
        return keras.losses.KLDivergence()
    smoothing = cfg["label_smoothing"] if cfg["loss_function"] == "label_smoothing" else 0.0
    return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)


def compile_model(
    model: keras.Model, cfg: dict[str, Any], steps_per_epoch: int, steps_per_execution: int | None = None
) -> None:
    """Compile with the settings' optimizer and loss; ``steps_per_execution`` defaults to ``STEPS_PER_EXECUTION``."""
    model.compile(
        optimizer=optimizer(cfg, steps_per_epoch),
        loss=loss(cfg),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=False,  # XLA is slower on CPUs like this one (benchmarks/README.md)
        steps_per_execution=steps_per_execution or STEPS_PER_EXECUTION,
    )


# Keras' batch-norm momentum (0.99) leaves 0.99^n of the moving statistics' starting values
# (mean 0, variance 1) after n steps. A run of the quick profile (86 steps) kept 42% of them: the
# stem's moving variance read 0.43 against a true 0.023, and airbench predicted one class (10.00%
# test accuracy, 82% on validation with the statistics recomputed; benchmarks/README.md). The
# moving averages must forget their start within the first tenth of the run; at the full budget
# (4,000 steps or more) that is Keras' 0.99 itself (train.batch_norm_momentum), so the results of
# record keep their bits.
BATCH_NORM_WINDOW_FRACTION = 0.1  # the moving averages' window, 1 / (1 - momentum) steps, as a share of the run


def batch_norm_momentum(total_steps: int, momentum: float = 0.99) -> float:
    """Batch norm's moving-average momentum for a run of ``total_steps``: ``momentum``, or less for short runs."""
    return min(momentum, 1.0 - 1.0 / max(1.0, BATCH_NORM_WINDOW_FRACTION * total_steps))


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> None:
    """Every batch norm of ``model``, in nested models too."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
        elif isinstance(layer, keras.Model):
            set_batch_norm_momentum(layer, momentum)


# Keras clips probabilities, so a cross-entropy or KL loss stays below -ln(1e-7) = 16.1 per image,
# plus modest penalties: a batch loss beyond this means the weights have blown up, even while
# still finite (seen with SGD at learning rate 10: 3e16, then a network stuck at chance).
LOSS_CEILING = 1000.0


class StopOnDivergence(keras.callbacks.Callback):
    """Abort at the first non-finite or exploded loss, naming the batches, instead of training on garbage.

    Keras hands callbacks the epoch's running mean loss once per execution (``STEPS_PER_EXECUTION``
    steps), so the check names the batches since the last one: the loss went bad in one of them.
    """

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # Keras numbers the end of the last execution as if it were full; an epoch may be shorter.
        last = min(batch + 1, self.params.get("steps") or batch + 1)
        first, self.checked = self.checked + 1, last
        value = (logs or {}).get("loss")
        if value is None:
            return
        value = float(value)
        if not math.isfinite(value) or value > LOSS_CEILING:
            what = f"{value:.3g}" + ("" if not math.isfinite(value) else f" (above {LOSS_CEILING:g})")
            where = f"batch {last}" if first == last else f"in batches {first}-{last}"
            raise DivergedError(
                f"training diverged: loss is {what} at epoch {self.epoch + 1}, {where}; "
                "lower train.learning_rate or pick another train.optimizer"
            )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.checked = epoch, 0


class StopOnSignal(keras.callbacks.Callback):
    """Turn a held Ctrl-C or SIGTERM into ``KeyboardInterrupt`` between batches (see ``deferred_interrupts``)."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        check_interrupt()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        check_interrupt()


class TestCurve(keras.callbacks.Callback):
    """Log test loss and accuracy after every epoch (seed 001's third curve); never used to select."""

    def __init__(
        self, live: Live, data: tf.data.Dataset, evaluate: Callable[[tf.data.Dataset], tuple[float, float]]
    ) -> None:
        super().__init__()
        self.live, self.data, self.evaluate = live, data, evaluate

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        test_loss, test_acc = self.evaluate(self.data)
        self.live.log_metric("test/loss", test_loss)
        self.live.log_metric("test/accuracy", test_acc)


class LearningRateCurve(keras.callbacks.Callback):
    """Log the learning rate at the end of every epoch: the schedules (cosine by default) made visible."""

    def __init__(self, live: Live, optimizer: keras.optimizers.Optimizer) -> None:
        super().__init__()
        self.live, self.optimizer = live, optimizer

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.live.log_metric("learning_rate", float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)))


def callbacks(cfg: dict[str, Any]) -> list[keras.callbacks.Callback]:
    """The callbacks the settings ask for, besides logging."""
    out: list[keras.callbacks.Callback] = [StopOnSignal(), StopOnDivergence()]
    if cfg["lr_schedule"] == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau(factor=cfg["lr_decay_factor"], patience=cfg["lr_decay_epochs"]))
    if cfg["early_stopping"]:
        out.append(
            keras.callbacks.EarlyStopping(
                patience=cfg["early_stopping"], restore_best_weights=cfg["restore_best_weights"]
            )
        )
    return out


class KerasLoop:
    """Keras' own ``fit`` and ``evaluate``: every strategy but multi-worker (:mod:`.multi_worker`)."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model

    def fit(
        self,
        train_ds: tf.data.Dataset,
        val_ds: tf.data.Dataset,
        epochs: int,
        callbacks: list[keras.callbacks.Callback],
        verbose: int,
    ) -> dict[str, list[float]]:
        return self.model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, seeded
            verbose=verbose,
        ).history

    def evaluate(self, ds: tf.data.Dataset) -> tuple[float, float]:
        loss, accuracy = self.model.evaluate(ds, verbose=0)
        return loss, accuracy


def train(
    model: keras.Model,
    cfg: dict[str, Any],
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    curves_dir: Path,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[str, Any]:
    """Compile and fit ``model`` (built under ``strategy``, default: one device) on ``splits``; write
    per-epoch curves to ``curves_dir``; return a summary with no wall-clock figure in it, so that the
    same run gives the same bytes. ``train.batch_size`` is per replica."""
    strategy = strategy or tf.distribute.get_strategy()
    multi_host = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    global_batch = cfg["batch_size"] * strategy.num_replicas_in_sync
    x, y = splits["train"]
    # Every host must run the same number of steps: multi-worker training drops the last partial batch.
    steps_per_epoch = len(x) // global_batch if multi_host else math.ceil(len(x) / global_batch)

    # The data.
    train_ds = training_batches(x, y, cfg, global_batch, drop_remainder=multi_host)
    val_ds = dataset(*splits["val"], 1024, shuffle=False, augment=False, seed=0)
    test_ds = dataset(*splits["test"], 1024, shuffle=False, augment=False, seed=0) if cfg["test_curve"] else None

    # Compile. Keras 3.15's multi-step loop fails under MirroredStrategy ("You must feed a value for
    # placeholder tensor"), and the multi-worker loop is our own: one step per execution there.
    one_step = multi_host or isinstance(strategy, tf.distribute.MirroredStrategy)
    with strategy.scope():
        compile_model(model, cfg, steps_per_epoch, 1 if one_step else None)
    set_batch_norm_momentum(model, batch_norm_momentum(cfg["epochs"] * steps_per_epoch, cfg["batch_norm_momentum"]))

    # Fit, logging curves as it goes.
    run = multi_worker.Loop(model, strategy, global_batch) if multi_host else KerasLoop(model)
    verbose = 1 if sys.stdout.isatty() else 2  # one line per epoch in logs
    with Live(str(curves_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live, deferred_interrupts():
        # The curves log before DVCLiveCallback moves dvclive on to the next step.
        curves = [LearningRateCurve(live, model.optimizer)]
        curves += [TestCurve(live, test_ds, run.evaluate)] if test_ds is not None else []
        history = run.fit(
            train_ds, val_ds, cfg["epochs"], [*callbacks(cfg), *curves, DVCLiveCallback(live=live)], verbose
        )
    val_loss = history["val_loss"]
    return {
        "params": model.count_params(),
        "epochs_run": len(val_loss),
        "best_epoch": int(np.argmin(val_loss)) + 1,
        "train_images": steps_per_epoch * global_batch if multi_host else len(x),  # multi-worker drops a partial batch
    }
