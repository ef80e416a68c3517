"""The one definition of every key in ``params.yaml``: type, allowed values, default and meaning.

Every stage calls :func:`load_params`, which validates the whole file before the stage touches
anything, so a typo added by ``dvc exp run -S`` fails loudly instead of being ignored.
``python -m stages.params`` prints the reference table that the README carries.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.dataset import FILE_SHA256
from stages.errors import ParamsError

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Param:
    """One leaf of the schema."""

    default: Any
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

    def _bounds(self) -> str:
        ops = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {_fmt(v)}" for op, v in ops if v is not None)

    def allowed(self) -> str:
        """What this key accepts, in words, for error messages and the README."""
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


@dataclass(frozen=True)
class Family:
    """A model family's block: its own keys, plus optional overrides of any ``train`` key."""

    own: dict[str, Param]
    overrides: dict[str, Any]  # what params.yaml ships as this family's overrides
    help: str


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

SCHEMA: dict[str, Any] = {
    "download": {
        "sources": Param(
            [
                "/usr/share/datasets/fashion-mnist",
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
            ],
            "Where to fetch the four IDX .gz files, tried in order: a local directory or an http(s) base URL.",
            kind=list,
            item=str,
            min_items=1,
        ),
        "timeout": Param(
            30.0, "Seconds to wait for an HTTP connection or the next bytes of a body.", kind=float, gt=0, le=600
        ),
        "retries": Param(3, "HTTP retries per file and source, with exponential backoff.", kind=int, ge=0, le=10),
        "sha256": {
            name: Param(digest, f"SHA-256 of the decompressed {name}.", pattern=SHA256)
            for name, digest in FILE_SHA256.items()
        },
    },
    "preprocess": {
        "normalization": Param(
            "scale",
            "scale: pixels / 255 into [0, 1]; standardize: zero mean, unit variance from the training split.",
            choices=("scale", "standardize"),
        ),
        "val_fraction": Param(
            0.1, "Share of the 60000 training images held out, stratified, for validation.", kind=float, gt=0, lt=1
        ),
        "train_limit": Param(
            0, "Keep a stratified subset of this many training images (0 keeps all); for quick runs.", kind=int, ge=0
        ),
        "seed": Param(42, "Seed of the validation split and the training subset.", kind=int, ge=0),
    },
}


ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "leaky_relu")
INITIALIZERS = ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "lecun_normal")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "nadam")
LOSSES = ("crossentropy", "kl_divergence", "label_smoothing")
SCHEDULES = ("constant", "cosine", "step", "plateau")
DISTRIBUTE = ("none", "mirrored", "multi_worker")

# Shared by every family; a family block may override any of these for itself only.
TRAIN: dict[str, Param] = {
    "epochs": Param(10, "Passes over the training split (early stopping may end sooner).", kind=int, ge=1, le=1000),
    "batch_size": Param(
        128,
        "Images per gradient step on each replica; the global batch is this times the replicas.",
        kind=int,
        ge=1,
        le=8192,
    ),
    "optimizer": Param("adam", "sgd (with momentum and nesterov), adam, adamw, rmsprop or nadam.", choices=OPTIMIZERS),
    "learning_rate": Param(0.001, "Initial learning rate.", kind=float, gt=0, le=10),
    "momentum": Param(0.9, "Momentum of sgd and rmsprop.", kind=float, ge=0, lt=1),
    "nesterov": Param(False, "Nesterov momentum for sgd.", kind=bool),
    "weight_decay": Param(0.0001, "Decoupled weight decay of adamw.", kind=float, ge=0, lt=1),
    "lr_schedule": Param(
        "constant",
        "constant; cosine decay to 0; step: times lr_decay_factor every lr_decay_epochs; "
        "plateau: times lr_decay_factor after lr_decay_epochs epochs without a better val loss.",
        choices=SCHEDULES,
    ),
    "lr_decay_factor": Param(0.5, "Factor of the step and plateau schedules.", kind=float, gt=0, lt=1),
    "lr_decay_epochs": Param(5, "Period of the step schedule, patience of the plateau one.", kind=int, ge=1),
    "loss_function": Param(
        "crossentropy",
        "categorical crossentropy, KL divergence, or crossentropy on smoothed labels.",
        choices=LOSSES,
    ),
    "label_smoothing": Param(0.1, "Smoothing of loss_function: label_smoothing.", kind=float, gt=0, lt=1),
    "activation": Param("relu", "Activation of every hidden layer.", choices=ACTIVATIONS),
    "initializer": Param(
        "he_uniform", "Kernel initializer of every layer (he_uniform = Kaiming uniform).", choices=INITIALIZERS
    ),
    "l1": Param(0.0, "L1 penalty on hidden-layer kernels.", kind=float, ge=0, lt=1),
    "l2": Param(0.0, "L2 penalty on hidden-layer kernels.", kind=float, ge=0, lt=1),
    "dropout": Param(0.2, "Dropout rate (where a family places dropout).", kind=float, ge=0, lt=1),
    "batch_norm": Param(False, "Batch normalisation before each hidden activation.", kind=bool),
    "augment": Param(
        False, "Random shifts (up to augment_shift px) and horizontal flips of training images.", kind=bool
    ),
    "augment_shift": Param(
        2,
        "With augment: the largest random shift, in pixels each way; 0: horizontal flips only.",
        kind=int,
        ge=0,
        le=14,
    ),
    "early_stopping": Param(0, "Stop after this many epochs without a better val loss (0: never).", kind=int, ge=0),
    "restore_best_weights": Param(True, "With early stopping, keep the weights of the best epoch.", kind=bool),
    "test_curve": Param(False, "Also record test loss and accuracy after every epoch (as seed 001 plots).", kind=bool),
    "seed": Param(0, "Seed of weights, dropout, shuffling and augmentation.", kind=int, ge=0),
    "intra_op_threads": Param(
        2, "Threads inside one op; changes speed and the bits of results.", kind=int, ge=1, le=256
    ),
    "inter_op_threads": Param(2, "Ops run at once; changes speed.", kind=int, ge=1, le=256),
    "onednn": Param(True, "Use oneDNN kernels (faster on x86; different rounding).", kind=bool),
    "distribute": Param(
        "none",
        "none: one device; mirrored: tf.distribute.MirroredStrategy over train.devices; multi_worker: "
        "MultiWorkerMirroredStrategy over the hosts in TF_CONFIG, where only the chief writes outputs.",
        choices=DISTRIBUTE,
    ),
    "devices": Param(
        [],
        "Devices mirrored trains on; empty: every local GPU, or every logical CPU when there is none.",
        kind=list,
        item=str,
        pattern=DEVICE,
    ),
    "cpu_devices": Param(
        1,
        "Split the CPU into this many logical devices (to try mirrored on a machine without GPUs).",
        kind=int,
        ge=1,
        le=64,
    ),
}
SCHEMA["train"] = TRAIN

_HIDDEN = "Units of each hidden dense layer, input to output."
FAMILIES: dict[str, Family] = {
    "mlp": Family(
        own={
            "hidden": Param([1024, 512], _HIDDEN, kind=list, item=int, min_items=1, ge=1),
            "activations": Param(
                [],
                "Activation per hidden layer, overriding train.activation (seed 003: [relu, sigmoid]); "
                "empty: train.activation everywhere.",
                kind=list,
                item=str,
                choices=ACTIVATIONS,
            ),
        },
        overrides={"epochs": 30, "batch_size": 256, "dropout": 0.3, "lr_schedule": "cosine"},
        help="Fully connected net, dropout after the last hidden layer (seeds 000, 002, 003).",
    ),
    "dnn": Family(
        own={"hidden": Param([512, 256, 128], _HIDDEN, kind=list, item=int, min_items=1, ge=1)},
        overrides={"batch_norm": True},
        help="Deeper fully connected net, batch norm and dropout after every hidden layer (seeds 001, 004).",
    ),
    "cnn": Family(
        own={
            "filters": Param(
                [32, 64],
                "Filters of each VGG block (two 3x3 convs, 2x2 max-pool).",
                kind=list,
                item=int,
                min_items=1,
                ge=1,
            ),
            "dense": Param(256, "Units of the dense layer after the conv blocks.", kind=int, ge=1),
        },
        overrides={
            "epochs": 15,
            "batch_norm": True,
            "augment": True,
            "lr_schedule": "cosine",
            "loss_function": "label_smoothing",
        },
        help="VGG-style conv net with batch norm, dropout and augmentation (seed 004).",
    ),
    "alexnet": Family(
        own={
            "filters": Param(
                [48, 96, 192, 192, 96],
                "Filters of the 3x3 conv layers; 2x2 max-pool after the first, the second and the last.",
                kind=list,
                item=int,
                min_items=3,
                ge=1,
            ),
            "dense": Param(512, "Units of each of the two dense layers.", kind=int, ge=1),
        },
        overrides={
            "batch_size": 64,
            "batch_norm": True,
            "dropout": 0.4,
            "augment": True,
            "augment_shift": 0,
            "lr_schedule": "cosine",
            "loss_function": "label_smoothing",
        },
        help="AlexNet-style net for 28x28 inputs (seed 001: 93.14% in 10 epochs).",
    ),
}
SCHEMA["families"] = FAMILIES

SCHEMA["evaluate"] = {
    "batch_size": Param(
        1000,
        "Images per batch when predicting the test set; also the batch of the throughput figure.",
        kind=int,
        ge=1,
        le=10000,
    ),
    "latency_runs": Param(200, "Single-image predictions timed for the median latency.", kind=int, ge=1, le=100000),
    "mistakes": Param(24, "Most confident mistakes shown in the gallery.", kind=int, ge=1, le=200),
    "samples": Param(12, "Test images shown with their predicted-probability bars.", kind=int, ge=1, le=100),
}


def family_config(params: dict[str, Any], family: str) -> dict[str, Any]:
    """The settings one family trains with: ``train``, then the family's own block over it."""
    return {**params["train"], **params["families"][family]}


def defaults(schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    """The parameters a user gets when every key is left at its default."""
    out = {}
    for key, spec in schema.items():
        if isinstance(spec, Family):
            out[key] = {**defaults(spec.own), **spec.overrides}
        else:
            out[key] = defaults(spec) if isinstance(spec, dict) else spec.default
    return out


def _check(spec: Param, value: Any, name: str) -> Any:
    try:
        return spec.check(value)
    except (ValueError, TypeError):
        raise ParamsError(f"{PARAMS_FILE}: {name} = {value!r} is not allowed; expected {spec.allowed()}") from None


def validate(
    raw: Any, schema: dict[str, Any] = SCHEMA, where: str = "", optional: dict[str, Param] | None = None
) -> dict[str, Any]:
    """Check a parsed ``params.yaml`` against the schema; return it with defaults filled in.

    Keys of ``optional`` are accepted and checked, but not filled in when absent.
    """
    optional = optional or {}
    if not isinstance(raw, dict):
        what = f"'{where[:-1]}'" if where else "the file"
        raise ParamsError(f"{PARAMS_FILE}: {what} must be a mapping of keys to values, got {raw!r}")
    known = [*schema, *optional]
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            did_you_mean = f" (did you mean '{where}{hint[0]}'?)" if hint else ""
            allowed = ", ".join(schema) + (", or any train key" if optional else "")
            raise ParamsError(f"{PARAMS_FILE}: unknown key '{where}{key}'{did_you_mean}; allowed here: {allowed}")
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if isinstance(spec, Family):
            out[key] = validate(raw.get(key, {}), spec.own, f"{where}{key}.", optional=TRAIN)
        elif isinstance(spec, dict):
            out[key] = validate(raw.get(key, {}), spec, f"{where}{key}.")
        else:
            out[key] = _check(spec, raw[key], where + key) if key in raw else spec.default
    for key in raw:
        if key in optional and key not in schema:
            out[key] = _check(optional[key], raw[key], where + key)
    return out


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate the whole params file; raise :class:`ParamsError` on any problem."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ParamsError(f"cannot read {path}: {err.strerror}; run from the project root") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    if raw is None:
        raise ParamsError(f"{path} is empty; restore it with 'git checkout {path}'")
    return validate(raw)


def _row(name: str, spec: Param) -> str:
    default = spec.default
    if isinstance(default, str) and len(default) > 20:
        default = default[:12] + "…"
    if isinstance(default, list) and all(isinstance(v, str) for v in default):
        default = f"{len(default)} entries"
    return f"| `{name}` | `{_yaml(default)}` | {spec.allowed()} | {spec.help} |"


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def reference_markdown(schema: dict[str, Any] = SCHEMA, where: str = "") -> str:
    """The README's params table, generated so that it cannot drift from the schema."""
    rows = [] if where else ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for key, spec in schema.items():
        if isinstance(spec, Family):
            shipped = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in spec.overrides.items()) or "nothing"
            rows.append(f"| `{where}{key}` | | | {spec.help} Overrides by default: {shipped}. |")
            rows.append(reference_markdown(spec.own, f"{where}{key}."))
            rows.append(f"| `{where}{key}.<key>` | | as `train.<key>` | Any train key, for {key} only. |")
        elif isinstance(spec, dict):
            rows.append(reference_markdown(spec, f"{where}{key}."))
        else:
            rows.append(_row(where + key, spec))
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_markdown())
