"""Check parsed ``params.yaml`` against the schema: every key present and allowed, nothing unknown.

A typo added by ``dvc exp run -S`` fails loudly with a did-you-mean instead of being ignored, and a
missing key is named instead of being filled in silently. A family's keys and the views' names come
from the caller: this package imports nothing above it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fmnist.config.schema import DOWNLOAD, PARAMS_FILE, PREPROCESS, TRAIN, Param, evaluate_keys
from fmnist.utils.errors import ParamsError

SECTIONS: dict[str, dict[str, Any]] = {"download": DOWNLOAD, "preprocess": PREPROCESS, "train": TRAIN}
TOP = (*SECTIONS, "families", "evaluate")


def _check(spec: Param, value: Any, name: str) -> Any:
    try:
        return spec.check(value)
    except (ValueError, TypeError):
        raise ParamsError(f"{PARAMS_FILE}: {name} = {value!r} is not allowed; expected {spec.allowed()}") from None


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        what = f"'{where[:-1]}'" if where else "the file"
        raise ParamsError(f"{PARAMS_FILE}: {what} must be a mapping of keys to values, got {raw!r}")
    return raw


def _refuse_unknown(raw: dict[str, Any], known: Sequence[str], where: str, allowed: str) -> None:
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            did_you_mean = f" (did you mean '{where}{hint[0]}'?)" if hint else ""
            raise ParamsError(f"{PARAMS_FILE}: unknown key '{where}{key}'{did_you_mean}; allowed here: {allowed}")


def validate(
    raw: Any, schema: dict[str, Any], where: str = "", optional: dict[str, Param] | None = None
) -> dict[str, Any]:
    """Check one mapping against ``schema``: every key present and allowed, nothing unknown.

    Keys of ``optional`` (a family's overrides of ``train`` or ``evaluate`` keys) are checked when present.
    """
    optional = optional or {}
    raw = _mapping(raw, where)
    # A block of overrides only (an evaluate block of a family) lists the keys it may override.
    allowed = ", ".join(schema) + (", or any train key" if optional else "") if schema else ", ".join(optional)
    _refuse_unknown(raw, [*schema, *optional], where, allowed)
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if key not in raw:
            what = "a mapping" if isinstance(spec, dict) else spec.allowed()
            raise ParamsError(
                f"{PARAMS_FILE}: missing key '{where}{key}' ({what}); add it, or restore the shipped file "
                f"with 'git checkout {PARAMS_FILE}'"
            )
        if isinstance(spec, dict):
            out[key] = validate(raw[key], spec, f"{where}{key}.")
        else:
            out[key] = _check(spec, raw[key], where + key)
    for key in raw:
        if key in optional and key not in schema:
            out[key] = _check(optional[key], raw[key], where + key)
    return out


def validate_top(raw: Any) -> dict[str, Any]:
    """The file is a mapping of the known sections, each present; ``families`` names some family."""
    raw = _mapping(raw, "")
    _refuse_unknown(raw, TOP, "", ", ".join(TOP))
    for key in TOP:
        if key not in raw:
            raise ParamsError(
                f"{PARAMS_FILE}: missing section '{key}'; add it, or restore the shipped file with "
                f"'git checkout {PARAMS_FILE}'"
            )
    if not _mapping(raw["families"], "families."):
        raise ParamsError(f"{PARAMS_FILE}: 'families' names no family; add a block such as 'mlp:' under it")
    return raw


def validate_section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """One of ``download``, ``preprocess`` and ``train``, checked whole."""
    return validate(raw[name], SECTIONS[name], f"{name}.")


def no_family(family: str, families: Iterable[str]) -> ParamsError:
    return ParamsError(f"{PARAMS_FILE}: no family '{family}' under 'families'; it has {', '.join(families)}")


def validate_family(raw: dict[str, Any], family: str, keys: dict[str, Param]) -> dict[str, Any]:
    """The block of ``family`` under ``families``: its own ``keys``, and any ``train`` key to override."""
    if family not in raw["families"]:
        raise no_family(family, raw["families"])
    block = _mapping(raw["families"][family], f"families.{family}.")
    for key in block:
        if key in TRAIN and not TRAIN[key].per_family:
            raise ParamsError(
                f"{PARAMS_FILE}: families.{family}.{key} cannot be set per family, as TensorFlow reads it once "
                f"per process; set train.{key}"
            )
    return validate(block, keys, f"families.{family}.", optional=TRAIN)


def validate_evaluate(raw: dict[str, Any], views: Sequence[str]) -> dict[str, Any]:
    """``evaluate``: its keys, and a block named after a family, which sets them for that family only."""
    keys = evaluate_keys(views)
    evaluate = _mapping(raw["evaluate"], "evaluate.")
    own = {name: block for name, block in evaluate.items() if name in raw["families"]}
    shared = {key: value for key, value in evaluate.items() if key not in own}
    _refuse_unknown(shared, [*keys, *raw["families"]], "evaluate.", f"{', '.join(keys)}, or a family's block of these")
    out = validate(shared, keys, "evaluate.")
    for name, block in own.items():
        out[name] = validate(block, {}, f"evaluate.{name}.", optional=keys)
    return out


def validate_with(raw: Any, families: Mapping[str, dict[str, Param]], views: Iterable[str]) -> dict[str, Any]:
    """Check a whole parsed ``params.yaml`` against the sections, ``families`` (each family's own keys,
    by name) and the names of the ``views``; return it with numbers widened to float where asked."""
    raw = validate_top(raw)
    out = {name: validate_section(raw, name) for name in SECTIONS}
    known = ", ".join(families)
    _refuse_unknown(
        raw["families"], list(families), "families.", f"{known} (one module each in fmnist/models/families/)"
    )
    out["families"] = {name: validate_family(raw, name, families[name]) for name in raw["families"]}
    out["evaluate"] = validate_evaluate(raw, tuple(views))
    return out
