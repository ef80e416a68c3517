"""The statistics of a study: mean and spread per configuration, and a verdict on each claim."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import stats

from fmnist.studies.spec import Budget, Run, configurations, reported

ALPHA = 0.05  # the significance level of every verdict


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Welch's t-test of mean(a) against mean(b), two-sided."""
    result = {"mean_a": float(np.mean(a)), "mean_b": float(np.mean(b)), "n_a": len(a), "n_b": len(b)}
    if len(a) < 2 or len(b) < 2:
        return {**result, "p": None}
    if np.std(a) == 0 and np.std(b) == 0:  # identical repeats: no spread to test against
        return {**result, "p": 1.0 if result["mean_a"] == result["mean_b"] else 0.0}
    return {**result, "p": float(stats.ttest_ind(a, b, equal_var=False).pvalue)}


def one_sample(a: list[float], value: float) -> dict[str, Any]:
    """A one-sample t-test of mean(a) against a figure reported without spread, two-sided."""
    result = {"mean_a": float(np.mean(a)), "mean_b": value, "n_a": len(a), "n_b": 1}
    if len(a) < 2:
        return {**result, "p": None}
    if np.std(a) == 0:
        return {**result, "p": 1.0 if result["mean_a"] == value else 0.0}
    return {**result, "p": float(stats.ttest_1samp(a, value).pvalue)}


def _pair_verdict(test: dict[str, Any]) -> str:
    if test["p"] is None:
        return "untestable"
    if test["p"] >= ALPHA:
        return "tie"
    return "supported" if test["mean_a"] > test["mean_b"] else "contradicted"


def judge(claim: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
    """The verdict on one claim: each ordered pair tested with Welch's t-test, pooled over other factors;
    or, for a claim that a level ``beats`` a seed's reported figure, a one-sample t-test against it."""
    factor = claim["factor"]

    def accuracies(levels: list[str]) -> list[float]:
        return [r.accuracy for r in runs if r.config.labels.get(factor) in levels]

    if "beats" in claim:  # one level against a seed's reported figure
        test = {"test": "one-sample t-test", **one_sample(accuracies([claim["level"]]), reported(claim["beats"]))}
        test.update(a=claim["level"], b=claim["beats"], verdict=_pair_verdict(test))
        return {"claim": claim["text"], "verdict": test["verdict"], "tests": [test]}
    if "groups" in claim:
        (high, high_levels), (low, low_levels) = claim["groups"].items()
        order = [(high, high_levels), (low, low_levels)]
    else:
        order = [(level, [level]) for level in claim["order"]]
    tests = []
    for (a, a_levels), (b, b_levels) in itertools.pairwise(order):
        test = welch(accuracies(a_levels), accuracies(b_levels))
        tests.append({"test": "Welch's t-test", "a": a, "b": b, **test, "verdict": _pair_verdict(test)})
    verdicts = {t["verdict"] for t in tests}
    verdict = next(v for v in ("contradicted", "untestable", "tie", "supported") if v in verdicts)
    out = {"claim": claim["text"], "verdict": verdict, "tests": tests}
    if "versus" in claim:  # is this factor's effect larger than the largest gap between the other's levels?
        by_level: dict[str, list[float]] = {}
        for r in runs:
            by_level.setdefault(r.config.labels[claim["versus"]], []).append(r.accuracy)
        best, worst = max(by_level.values(), key=np.mean), min(by_level.values(), key=np.mean)
        gap = float(np.mean(best) - np.mean(worst))
        effect = tests[0]["mean_a"] - tests[0]["mean_b"]
        gap_test = welch(best, worst)
        out.update(effect=float(effect), versus=claim["versus"], versus_gap=gap, versus_p=gap_test["p"])
        if verdict == "supported" and effect <= gap:
            out["verdict"] = "contradicted"
        elif verdict == "tie" and _pair_verdict(gap_test) == "supported" and gap > abs(effect):
            out["verdict"] = "contradicted"  # no effect shown here, a real one there
    return out


def summarize(name: str, study: dict[str, Any], runs: list[Run], budget: Budget, repeats: int) -> dict[str, Any]:
    rows = []
    for config in configurations(study):
        accs = [r.accuracy for r in runs if r.config == config]
        if accs:
            rows.append(
                {
                    "config": config.label(),
                    "family": config.family,
                    # what ran: a cut budget's epochs replace the study's own
                    "settings": {**config.settings, **({"epochs": budget.epochs} if budget.epochs else {})},
                    "n": len(accs),
                    "mean": float(np.mean(accs)),
                    "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                    "runs": sorted(accs),
                }
            )
    rows.sort(key=lambda row: -row["mean"])
    return {
        "study": name,
        "seed": study.get("seed"),
        "description": study.get("description", ""),
        "budget": {**budget.__dict__, "repeats": repeats, "described": budget.describe(), "cut": budget.cut},
        "configurations": rows,
        "sampled": sorted(study["random"]["space"]) if "random" in study else [],
        # a cut budget's ranking says nothing of the study's: no configuration is called best
        "best": rows[0]["config"] if rows and not budget.cut else None,
        "claims": [judge(claim, runs) for claim in study.get("claims", [])],
        "runs_found": len(runs),
    }
