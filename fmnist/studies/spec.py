"""A study: its definition in ``studies.yaml``, checked, and the runs it plans.

A study trains one family. ``fixed`` sets its keys for every run; ``grid`` crosses factors, each
level setting one or more keys; ``random`` samples configurations instead. Every configuration
runs ``repeats`` times with ``train.seed`` 0, 1, ...
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.all_params import validate_all
from fmnist.config.params import PARAMS_FILE, family_config
from fmnist.config.yaml_reader import read_yaml
from fmnist.evaluation.comparison import REFERENCES
from fmnist.models import families as family_modules
from fmnist.utils.errors import ParamsError, UserError

STUDIES_FILE = Path(__file__).with_name("studies.yaml")
REPORTS = Path("metrics/studies")  # each study's NAME.json, NAME.md and NAME.run.json (its wall time), git-tracked
CHARTS = Path("plots/studies")  # each study's NAME.png
STUDY_KEYS = {"seed", "description", "family", "fixed", "grid", "random", "repeats", "claims"}


class StudyError(UserError):
    """A study definition or a study run that cannot go on."""


@dataclass(frozen=True)
class Config:
    """One point of a study: the level of each factor, the family and the keys it sets."""

    labels: dict[str, str]
    family: str
    settings: dict[str, Any]

    def label(self) -> str:
        return ", ".join(f"{factor}={level}" for factor, level in self.labels.items())


@dataclass(frozen=True)
class Budget:
    """What a quick run may cut: epochs and training images (0: the study's own)."""

    epochs: int = 0
    train_limit: int = 0

    @property
    def cut(self) -> bool:
        """Whether this budget cuts the study's own (its figures are then not the study's)."""
        return bool(self.epochs or self.train_limit)

    def describe(self) -> str:
        parts = [
            f"epochs {self.epochs}" if self.epochs else "",
            f"train_limit {self.train_limit}" if self.train_limit else "",
        ]
        return ", ".join(p for p in parts if p) or "the study's own settings"

    def report_name(self, study: str) -> str:
        """The stem of this budget's report files: a cut budget never writes over the study's own."""
        cuts = [f"epochs{self.epochs}" if self.epochs else "", f"limit{self.train_limit}" if self.train_limit else ""]
        return ".".join([study, *[c for c in cuts if c]])


@dataclass
class Run:
    name: str
    config: Config
    repeat: int
    accuracy: float | None = None


def load_studies(path: Path = STUDIES_FILE) -> dict[str, dict[str, Any]]:
    """Read the studies file and check every study's shape and every key it sets."""
    studies = read_yaml(path)
    params = read_yaml(PARAMS_FILE)  # once: every configuration is checked against the same file
    for name, study in studies.items():
        unknown = set(study) - STUDY_KEYS
        if unknown:
            raise StudyError(
                f"{path}: study '{name}' has unknown keys {sorted(unknown)}; allowed: {sorted(STUDY_KEYS)}"
            )
        if study.get("family") not in family_modules.NAMES:
            raise StudyError(f"{path}: study '{name}' needs a family, one of {', '.join(family_modules.NAMES)}")
        for config in configurations(study):
            check_settings(config, params, f"{path}: study '{name}', {config.label() or 'fixed settings'}")
        for claim in study.get("claims", []):
            if "beats" in claim:
                levels = study.get("grid", {}).get(claim["factor"], {})
                if claim["level"] not in levels:
                    raise StudyError(
                        f"{path}: study '{name}': claim level '{claim['level']}' is not a level of {claim['factor']}"
                    )
                reported(claim["beats"])
    return studies


def reported(name: str) -> float:
    """A seed's reported test accuracy, by its name in the comparison ("seed 001: AlexNet, 10 epochs")."""
    figures = {f"{ref['source']}: {ref['model']}": ref["test_accuracy"] for ref in REFERENCES}
    if name not in figures:
        raise StudyError(f"no reported figure '{name}'; known: {', '.join(figures)}")
    return figures[name]


def check_settings(config: Config, params: dict[str, Any], where: str) -> None:
    """Validate a configuration's keys and values against the project's parsed params.yaml, before
    anything is queued."""
    families = {**params["families"], config.family: {**params["families"].get(config.family, {}), **config.settings}}
    try:
        validate_all({**params, "families": families})
    except ParamsError as err:
        raise StudyError(f"{where}: {err}") from None


def _sample(spec: Any, rng: np.random.Generator) -> Any:
    if isinstance(spec, dict) and "log_uniform" in spec:
        low, high = spec["log_uniform"]
        return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.2g}")
    return spec[int(rng.integers(len(spec)))]


def configurations(study: dict[str, Any]) -> list[Config]:
    """Every configuration of a study: the grid's cross product, or the random search's samples."""
    fixed = study.get("fixed", {})
    if "random" in study:
        search = study["random"]
        rng = np.random.default_rng(search["seed"])
        out = []
        for i in range(search["samples"]):
            drawn = {key: _sample(spec, rng) for key, spec in search["space"].items()}
            out.append(Config({"config": f"{i + 1:02d}"}, study["family"], {**fixed, **drawn}))
        return out
    grid = study.get("grid", {})
    out = []
    for combo in itertools.product(*(levels.items() for levels in grid.values())):
        labels = {factor: str(level) for factor, (level, _) in zip(grid, combo, strict=True)}
        settings = dict(fixed)
        for _, keys in combo:
            settings.update(keys)
        out.append(Config(labels, labels.get("family", study["family"]), settings))
    return out


def _hydra(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_hydra(v) for v in value) + "]"
    return str(value)


def overrides(config: Config, budget: Budget, repeat: int, params: dict[str, Any] | None = None) -> list[str]:
    """The ``-S`` arguments of one run. Keys go into the family's block, so no other family reruns.

    With ``params`` (the parsed params.yaml), a key already at the value the family has there is left
    out: a run of the shipped settings is then the shipped pipeline, which DVC restores from its cache
    instead of training it again.
    """
    settings = {**config.settings, "seed": repeat, **({"epochs": budget.epochs} if budget.epochs else {})}
    if params is not None:
        shipped = family_config(params, config.family)
        settings = {key: value for key, value in settings.items() if key not in shipped or shipped[key] != value}
    out = [f"++families.{config.family}.{key}={_hydra(value)}" for key, value in sorted(settings.items())]
    if budget.train_limit:
        out.append(f"preprocess.train_limit={budget.train_limit}")
    return out


def experiment_name(study: str, config: Config, budget: Budget, repeat: int) -> str:
    """Deterministic: the same configuration, budget and repeat always get the same name."""
    key = json.dumps([config.family, config.settings, budget.epochs, budget.train_limit], sort_keys=True)
    return f"{study}-{hashlib.sha256(key.encode()).hexdigest()[:8]}-r{repeat}"


def planned_runs(name: str, study: dict[str, Any], budget: Budget, repeats: int) -> list[Run]:
    return [
        Run(experiment_name(name, config, budget, r), config, r)
        for config in configurations(study)
        for r in range(repeats)
    ]
