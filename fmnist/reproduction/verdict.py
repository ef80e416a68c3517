"""Did a run reproduce the record? The rule, family by family.

- **bit-identical**: the model file has the record's bytes and scores the record's test accuracy.
- **reproduced within noise**: other bytes (or another score), but the test accuracy is within the
  family's tolerance of the record's.
- **differs**: further away than that.

A family trained with other settings than the record's is not a reproduction of it and gets no
verdict ("other settings"), unless its model has the record's bytes and score: a setting the record
predates, added at the value that reproduces the old computation, changes nothing, and the bytes
prove it (the differences are still listed). One the record lacks gets "no record".

The tolerance is the largest difference two runs of one configuration show by chance, at 95%:
two independent runs differ by ``d = a1 - a2``, whose variance is twice one run's. One run's
variance is the spread between seeds that ``headline-seeds`` recorded (``s``), plus the sampling
error of the ``n`` test images at accuracy ``p``, ``p (1 - p) / n``, which keeps the tolerance honest
where three seeds happen to agree closely. The spread counts only where the seeds ran the record's
configuration (its settings in ``dvc.lock``, on any platform: another CPU's rounding is one more
source of the run-to-run spread); elsewhere ``s`` is 0 and the sampling error alone sets the
tolerance::

    tolerance = 1.96 * sqrt(2 * (s**2 + p * (1 - p) / n))

Bit-identity across CPU kinds is not on offer from TensorFlow (another instruction set rounds
differently, and training amplifies the difference into another run), so on another machine a
family reproduces within noise or differs; on the record's kind of machine it is bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

BIT_IDENTICAL = "bit-identical"
WITHIN_NOISE = "reproduced within noise"
DIFFERS = "differs"
OTHER_SETTINGS = "other settings"
NO_RECORD = "no record"

Z = 1.96  # two-sided 95%


@dataclass(frozen=True)
class Result:
    """One family's result, in the record or in the workspace."""

    accuracy: float
    test_images: int
    model_md5: str | None
    platform: dict[str, Any] = field(default_factory=dict)  # platform.json's facts of the family
    settings: dict[str, Any] = field(default_factory=dict)  # the params it ran with, flattened


@dataclass(frozen=True)
class Spread:
    """The run-to-run spread of a family's accuracy: ``headline-seeds``' runs of it."""

    std: float
    runs: tuple[float, ...]


def tolerance(spread: Spread | None, accuracy: float, test_images: int) -> float:
    """The largest accuracy difference two runs of one configuration show by chance (95%)."""
    seed_variance = spread.std**2 if spread else 0.0
    return Z * math.sqrt(2 * (seed_variance + accuracy * (1 - accuracy) / test_images))


def differences(record: dict[str, Any], here: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ between two flat dicts: ``{key: (record's, here's)}``."""
    return {
        k: (record.get(k), here.get(k)) for k in sorted(record.keys() | here.keys()) if record.get(k) != here.get(k)
    }


def judge(family: str, record: Result | None, here: Result, spread: Spread | None) -> dict[str, Any]:
    """The verdict on one family, with the figures behind it; ``spread``: the seeds' of the record's
    configuration, or None."""
    verdict: dict[str, Any] = {"family": family, "accuracy": here.accuracy, "model_md5": here.model_md5}
    if record is None:
        return {**verdict, "verdict": NO_RECORD}
    tol = tolerance(spread, record.accuracy, record.test_images)
    verdict |= {
        "record_accuracy": record.accuracy,
        "difference": here.accuracy - record.accuracy,
        "tolerance": tol,
        "record_model_md5": record.model_md5,
        "same_bytes": here.model_md5 is not None and here.model_md5 == record.model_md5,
        "seed_std": spread.std if spread else None,
        "seed_runs": len(spread.runs) if spread else 0,
        "platform_differences": differences(record.platform, here.platform),
        "settings_differences": differences(record.settings, here.settings),
    }
    verdict["same_platform"] = not verdict["platform_differences"]  # every key of both, equal
    if verdict["same_bytes"] and here.accuracy == record.accuracy:
        verdict["verdict"] = BIT_IDENTICAL
    elif verdict["settings_differences"]:
        verdict["verdict"] = OTHER_SETTINGS
    elif abs(verdict["difference"]) <= tol:
        verdict["verdict"] = WITHIN_NOISE
    else:
        verdict["verdict"] = DIFFERS
    return verdict
