"""All of ``params.yaml`` checked at once, against every family's keys and the test-time views.

Above :mod:`fmnist.config`, which imports no family and no evaluation code: this module puts the
parts together for the ``check`` stage, which checks the whole file before any stage runs, and for
what reads more than one family (the studies, ``predict``, the benchmark, the docs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmnist.config import validation
from fmnist.config.params import PARAMS_FILE, SHIPPED
from fmnist.config.schema import Param, evaluate_keys
from fmnist.config.yaml_reader import read_yaml
from fmnist.evaluation.views import VIEWS
from fmnist.models import families


def family_keys() -> dict[str, dict[str, Param]]:
    """Every family's own keys, by name."""
    return {name: families.module(name).KEYS for name in families.NAMES}


def validate_all(raw: Any) -> dict[str, Any]:
    """Check a whole parsed ``params.yaml``; return it with numbers widened to float where asked."""
    return validation.validate_with(raw, family_keys(), VIEWS)


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and check the whole params file; raise :class:`~fmnist.utils.errors.ParamsError` on any problem."""
    return validate_all(read_yaml(path))


def shipped_params() -> dict[str, Any]:
    """The committed ``params.yaml`` of this project, checked."""
    return load_params(SHIPPED)


def sections() -> dict[str, dict[str, Any]]:
    """Every section's schema in the file's order, each family's own keys under ``families.NAME``."""
    return {
        **validation.SECTIONS,
        **{f"families.{name}": keys for name, keys in family_keys().items()},
        "evaluate": evaluate_keys(VIEWS),
    }


def leaves(schema: dict[str, Any] | None = None, where: str = "") -> Iterator[tuple[str, Param]]:
    """Every key of the schema as (dotted name, spec), each family's own keys included."""
    if schema is None:
        for name, section in sections().items():
            yield from leaves(section, f"{name}.")
        return
    for key, spec in schema.items():
        if isinstance(spec, dict):
            yield from leaves(spec, f"{where}{key}.")
        else:
            yield where + key, spec
