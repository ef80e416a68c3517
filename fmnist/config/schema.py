"""What every key of ``params.yaml`` may hold: its type, its allowed values and its meaning.

The values themselves live in ``params.yaml`` only: DVC tracks that file, so a value written in
code as well could drift from the one that was run. A family's own keys are declared in its
module (``fmnist/models/families/``) and the test-time views' names in
:mod:`fmnist.evaluation.views`; this package imports neither (a stage depends on what its
computation uses), so whoever checks those parts passes them in (:mod:`fmnist.all_params`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist.data.idx import FILE_NAMES

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Param:
    """One leaf of the schema."""

    help: str
    kind: type = str
    item: type | None = None  # element type when kind is list
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None  # a regular expression the whole string must match
    min_items: int = 0  # for lists
    per_family: bool = True  # for train keys: a family block may set it for itself

    def _bounds(self) -> str:
        ops = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {_fmt(v)}" for op, v in ops if v is not None)

    def allowed(self) -> str:
        """What this key accepts, in words, for error messages and the reference."""
        if self.choices:
            one_of = "one of " + ", ".join(self.choices)
            return f"a list, each {one_of}" if self.kind is list else one_of
        if self.kind is bool:
            return "true or false"
        if self.pattern == SHA256:
            return "64 lowercase hex digits"
        if self.pattern == DEVICE:
            return "a list of device names such as /gpu:0 or /cpu:1"
        if self.kind is list:
            noun = {str: "strings", int: "integers"}[self.item]
            text = f"a list of at least {self.min_items} {noun}" if self.min_items else f"a list of {noun}"
        else:
            text = {int: "an integer", float: "a number", str: "a string"}[self.kind]
        return f"{text} {self._bounds()}".rstrip()

    def check(self, value: Any) -> Any:
        """Return ``value`` (ints widened to float where a number is asked) or raise ``ValueError``.

        For lists, the bounds apply to every item.
        """
        if self.kind is list:
            if not isinstance(value, list) or len(value) < self.min_items:
                raise ValueError
            return [self._check_one(self.item, v) for v in value]
        return self._check_one(self.kind, value)

    def _check_one(self, kind: type, value: Any) -> Any:
        value = _check_scalar(kind, value)
        if self.choices and value not in self.choices:
            raise ValueError
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ValueError
        for bound, ok in (
            (self.ge, value.__ge__),
            (self.gt, value.__gt__),
            (self.le, value.__le__),
            (self.lt, value.__lt__),
        ):
            if bound is not None and not ok(bound):
                raise ValueError
        return value


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _check_scalar(kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # bool is an int subclass; True must not pass as 1.
    if type(value) is not kind or (kind is float and not math.isfinite(value)):
        raise ValueError
    return value


SHA256 = r"[0-9a-f]{64}"
DEVICE = r"(/job:\w+(/replica:\d+)?(/task:\d+)?)?/(device:)?(cpu|gpu|CPU|GPU):\d+"

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "leaky_relu")
INITIALIZERS = ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "lecun_normal")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "nadam")
LOSSES = ("crossentropy", "kl_divergence", "label_smoothing")
SCHEDULES = ("constant", "cosine", "step", "plateau")
DISTRIBUTE = ("none", "mirrored", "multi_worker")

DOWNLOAD = {
    "sources": Param(
        "Where to fetch the four IDX .gz files, tried in order: a local directory or an http(s) base URL.",
        kind=list,
        item=str,
        min_items=1,
    ),
    "timeout": Param("Seconds to wait for an HTTP connection or the next bytes of a body.", kind=float, gt=0, le=600),
    "retries": Param("HTTP retries per file and source, with exponential backoff.", kind=int, ge=0, le=10),
    "sha256": {name: Param(f"SHA-256 of the decompressed {name}.", pattern=SHA256) for name in FILE_NAMES},
}

PREPROCESS = {
    "normalization": Param(
        "scale: pixels / 255 into [0, 1]; standardize: zero mean, unit variance from the training split.",
        choices=("scale", "standardize"),
    ),
    "val_fraction": Param(
        "Share of the 60000 training images held out, stratified, for validation.", kind=float, gt=0, lt=1
    ),
    "train_limit": Param(
        "Keep a stratified subset of this many training images (0 keeps all); for quick runs.", kind=int, ge=0
    ),
    "seed": Param("Seed of the validation split and the training subset.", kind=int, ge=0),
}

# Shared by every family; a family block may override any of these for itself only.
TRAIN: dict[str, Param] = {
    "epochs": Param("Passes over the training split (early stopping may end sooner).", kind=int, ge=1, le=1000),
    "batch_size": Param(
        "Images per gradient step on each replica; the global batch is this times the replicas.",
        kind=int,
        ge=1,
        le=8192,
    ),
    "optimizer": Param("sgd (with momentum and nesterov), adam, adamw, rmsprop or nadam.", choices=OPTIMIZERS),
    "learning_rate": Param("Initial learning rate.", kind=float, gt=0, le=10),
    "momentum": Param("Momentum of sgd and rmsprop.", kind=float, ge=0, lt=1),
    "nesterov": Param("Nesterov momentum for sgd.", kind=bool),
    "weight_decay": Param("Decoupled weight decay of adamw.", kind=float, ge=0, lt=1),
    "lr_schedule": Param(
        "constant; cosine decay to 0; step: times lr_decay_factor every lr_decay_epochs; "
        "plateau: times lr_decay_factor after lr_decay_epochs epochs without a better val loss.",
        choices=SCHEDULES,
    ),
    "lr_decay_factor": Param("Factor of the step and plateau schedules.", kind=float, gt=0, lt=1),
    "ema": Param(
        "Momentum of a moving average of the weights, updated every step, which replaces the weights at "
        "the end of training (and every ema_every steps); 0: none.",
        kind=float,
        ge=0,
        lt=1,
    ),
    "ema_every": Param(
        "With ema: every this many steps the weights become their moving average (lookahead, as "
        "airbench); 0: only at the end.",
        kind=int,
        ge=0,
    ),
    "batch_norm_momentum": Param(
        "Momentum of batch norm's moving statistics (Keras' 0.99; lower forgets faster, as lookahead "
        "needs); a short run lowers it so the statistics forget their start within a tenth of the run.",
        kind=float,
        gt=0,
        lt=1,
    ),
    "lr_decay_epochs": Param("Period of the step schedule, patience of the plateau one.", kind=int, ge=1),
    "loss_function": Param(
        "categorical crossentropy, KL divergence, or crossentropy on smoothed labels.",
        choices=LOSSES,
    ),
    "label_smoothing": Param("Smoothing of loss_function: label_smoothing.", kind=float, gt=0, lt=1),
    "activation": Param("Activation of every hidden layer.", choices=ACTIVATIONS),
    "initializer": Param("Kernel initializer of every layer (he_uniform = Kaiming uniform).", choices=INITIALIZERS),
    "l1": Param("L1 penalty on hidden-layer kernels.", kind=float, ge=0, lt=1),
    "l2": Param("L2 penalty on hidden-layer kernels.", kind=float, ge=0, lt=1),
    "dropout": Param("Dropout rate (where a family places dropout).", kind=float, ge=0, lt=1),
    "batch_norm": Param("Batch normalisation before each hidden activation.", kind=bool),
    "augment": Param("Random shifts (up to augment_shift px) and horizontal flips of training images.", kind=bool),
    "augment_shift": Param(
        "With augment: the largest random shift, in pixels each way; 0: horizontal flips only.",
        kind=int,
        ge=0,
        le=14,
    ),
    "augment_whole_pixels": Param(
        "With augment: shift by whole pixels only (sharp, like the test images), not by any fraction.",
        kind=bool,
    ),
    "early_stopping": Param("Stop after this many epochs without a better val loss (0: never).", kind=int, ge=0),
    "restore_best_weights": Param("With early stopping, keep the weights of the best epoch.", kind=bool),
    "test_curve": Param("Also record test loss and accuracy after every epoch (as seed 001 plots).", kind=bool),
    "seed": Param("Seed of weights, dropout, shuffling and augmentation.", kind=int, ge=0),
    "intra_op_threads": Param(
        "Threads inside one op; changes speed and the bits of results. 0: every core this process may "
        "use, resolved when the stage starts and recorded in summary.json.",
        kind=int,
        ge=0,
        le=256,
    ),
    "inter_op_threads": Param("Ops run at once; changes speed. 0: every core, as above.", kind=int, ge=0, le=256),
    "onednn": Param(
        "Use oneDNN kernels (faster on x86; different rounding). For every family: TensorFlow reads it "
        "once, as it loads (the stages' commands in dvc.yaml set TF_ENABLE_ONEDNN_OPTS from it).",
        kind=bool,
        per_family=False,
    ),
    "distribute": Param(
        "none: one device; mirrored: tf.distribute.MirroredStrategy over train.devices; multi_worker: "
        "MultiWorkerMirroredStrategy over the hosts in TF_CONFIG, where only the chief writes outputs.",
        choices=DISTRIBUTE,
    ),
    "devices": Param(
        "Devices mirrored trains on; empty: every local GPU, or every logical CPU when there is none.",
        kind=list,
        item=str,
        pattern=DEVICE,
    ),
    "cpu_devices": Param(
        "Split the CPU into this many logical devices (to try mirrored on a machine without GPUs).",
        kind=int,
        ge=1,
        le=64,
    ),
}


def evaluate_keys(views: Sequence[str]) -> dict[str, Param]:
    """The keys of ``evaluate``, with ``views`` the names of the test-time views there are."""
    return {
        "batch_size": Param("Images per batch when predicting the test set.", kind=int, ge=1, le=10000),
        "mistakes": Param("Most confident mistakes shown in the gallery.", kind=int, ge=1, le=200),
        "samples": Param("Test images shown with their predicted-probability bars.", kind=int, ge=1, le=100),
        "views": Param(
            "Test-time augmentation: the probabilities averaged over each image as it is (none), also "
            "mirrored (flip: 2 forward passes), or both of those also moved 1 px up, down, left and right "
            "(flip_shifts: 10 passes). metrics/evaluate/FAMILY/scores.json holds each choice's validation "
            "accuracy, to choose by.",
            choices=tuple(views),
        ),
    }
