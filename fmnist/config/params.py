"""What a stage reads of ``params.yaml``: the parts its computation uses, checked before it touches
anything, and one family's settings merged from them.

The ``check`` stage checks the whole file first (:mod:`fmnist.all_params`); each stage then checks
again only what it reads, so that it depends on no family's module but its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmnist.config.schema import PARAMS_FILE, Param
from fmnist.config.validation import no_family, validate_evaluate, validate_family, validate_section, validate_top
from fmnist.config.yaml_reader import read_yaml

__all__ = ["PARAMS_FILE", "SHIPPED", "evaluate_config", "family_config", "load_family", "load_sections"]

# The values a fresh clone runs with: the reference's defaults, and the base of tests and studies.
SHIPPED = Path(__file__).resolve().parents[2] / "params.yaml"


def load_sections(*names: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The named sections of ``download``, ``preprocess`` and ``train``, checked, and ``families``'
    names (a stage that reads them, as compare does, needs no family's keys)."""
    raw = validate_top(read_yaml(path))
    return {**{name: validate_section(raw, name) for name in names}, "families": dict.fromkeys(raw["families"])}


def load_family(
    family: str,
    keys_of: Callable[[str], dict[str, Param]],
    views: tuple[str, ...] | None = None,
    path: Path = PARAMS_FILE,
) -> dict[str, Any]:
    """``train`` and ``family``'s block (its own keys, from ``keys_of(family)``, and overrides),
    checked; with ``views`` (the names of the test-time views) ``evaluate`` too."""
    raw = validate_top(read_yaml(path))
    if family not in raw["families"]:
        raise no_family(family, raw["families"])
    params = {"train": validate_section(raw, "train")}
    params["families"] = {family: validate_family(raw, family, keys_of(family))}
    if views is not None:
        params["evaluate"] = validate_evaluate(raw, views)
    return params


def family_config(params: dict[str, Any], family: str) -> dict[str, Any]:
    """The settings one family trains with: ``train``, then the family's own block over it."""
    if family not in params["families"]:
        raise no_family(family, params["families"])
    return {**params["train"], **params["families"][family]}


def evaluate_config(params: dict[str, Any], family: str) -> dict[str, Any]:
    """The settings one family is evaluated with: ``evaluate``, then the family's block in it over it."""
    shared = {key: value for key, value in params["evaluate"].items() if not isinstance(value, dict)}
    return {**shared, **params["evaluate"].get(family, {})}
