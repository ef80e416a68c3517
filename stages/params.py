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
    non_empty: bool = False  # for lists

    def allowed(self) -> str:
        """What this key accepts, in words, for error messages and the README."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is list:
            noun = {str: "strings", int: "integers"}[self.item]
            return f"a non-empty list of {noun}" if self.non_empty else f"a list of {noun}"
        if self.pattern == SHA256:
            return "64 lowercase hex digits"
        noun = {int: "an integer", float: "a number", str: "a string"}[self.kind]
        bounds = [
            f"{op} {_fmt(v)}"
            for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if v is not None
        ]
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any) -> Any:
        """Return ``value`` (ints widened to float where a number is asked) or raise ``ValueError``."""
        if self.kind is list:
            if not isinstance(value, list) or (self.non_empty and not value):
                raise ValueError
            return [_check_scalar(self.item, v) for v in value]
        value = _check_scalar(self.kind, value)
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
            non_empty=True,
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


def defaults(schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    """The parameters a user gets when every key is left at its default."""
    return {k: defaults(v) if isinstance(v, dict) else v.default for k, v in schema.items()}


def validate(raw: Any, schema: dict[str, Any] = SCHEMA, where: str = "") -> dict[str, Any]:
    """Check a parsed ``params.yaml`` against the schema; return it with defaults filled in."""
    if not isinstance(raw, dict):
        what = f"'{where[:-1]}'" if where else "the file"
        raise ParamsError(f"{PARAMS_FILE}: {what} must be a mapping of keys to values, got {raw!r}")
    for key in raw:
        if key not in schema:
            hint = difflib.get_close_matches(str(key), list(schema), n=1)
            did_you_mean = f" (did you mean '{where}{hint[0]}'?)" if hint else ""
            raise ParamsError(
                f"{PARAMS_FILE}: unknown key '{where}{key}'{did_you_mean}; allowed here: {', '.join(schema)}"
            )
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out[key] = validate(raw.get(key, {}), spec, f"{where}{key}.")
        elif key not in raw:
            out[key] = spec.default
        else:
            try:
                out[key] = spec.check(raw[key])
            except (ValueError, TypeError):
                raise ParamsError(
                    f"{PARAMS_FILE}: {where}{key} = {raw[key]!r} is not allowed; expected {spec.allowed()}"
                ) from None
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


def reference_markdown(schema: dict[str, Any] = SCHEMA, where: str = "") -> str:
    """The README's params table, generated so that it cannot drift from the schema."""
    rows = [] if where else ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for key, spec in schema.items():
        if isinstance(spec, dict):
            rows.append(reference_markdown(spec, f"{where}{key}."))
        else:
            default = (
                spec.default if not isinstance(spec.default, str) or len(spec.default) < 20 else spec.default[:12] + "…"
            )
            if isinstance(default, list):
                default = f"{len(default)} entries"
            rows.append(f"| `{where}{key}` | `{default}` | {spec.allowed()} | {spec.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_markdown())
