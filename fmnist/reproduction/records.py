"""This workspace's results beside a revision of record's, family by family, and the tables of them.

What ``python -m fmnist.reproduction`` prints and docs/reproducibility.md shows: the model's bytes
(against ``dvc.lock``), the test accuracy (against ``metrics/compare/comparison.json``), the
platform each was trained on (``metrics/compare/platform.json``) and the settings it ran with; the
rule and its tolerances are :mod:`fmnist.reproduction.verdict`'s.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from fmnist.models import model_path
from fmnist.reproduction.verdict import Result, Spread, judge, tolerance
from fmnist.studies.spec import REPORTS
from fmnist.utils.errors import DataError, UserError
from fmnist.utils.reading import read_json

LOCK = "dvc.lock"
COMPARISON = "metrics/compare/comparison.json"
PLATFORM = "metrics/compare/platform.json"
SEEDS = f"{REPORTS}/headline-seeds.json"  # the headline study: each family's spread over seeds


class NotReproducedError(UserError):
    """A family's accuracy is further from the record's than its tolerance."""


def git_show(rev: str, path: str) -> str | None:
    """A file's text at a revision, or None if the revision lacks it."""
    out = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def recorded_comparison(rev: str) -> str:
    """The comparison committed at ``rev``, or a one-line error if that commit has none."""
    recorded = git_show(rev, COMPARISON)
    if recorded is None or "families" not in json.loads(recorded):
        raise UserError(f"--against {rev}: that commit has no {COMPARISON}, so no results of record")
    return recorded


def check_revision(rev: str) -> str:
    """The short commit of ``rev``, or a one-line error naming it."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "--verify", f"{rev}^{{commit}}"], capture_output=True, text=True
        )
    except FileNotFoundError:
        raise UserError("git is not installed; the record is read from git") from None
    if out.returncode != 0:
        raise UserError(f"--against {rev}: not a commit of this git repository; give a branch, tag or commit")
    return out.stdout.strip()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``: one key per setting, for a readable difference."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings(lock: dict[str, Any], family: str) -> dict[str, Any]:
    """The params that made a family's result: its preprocessing, training and evaluation."""
    stages = lock.get("stages", {})
    ran: dict[str, Any] = {}
    for stage in ("preprocess", f"train@{family}", f"evaluate@{family}"):
        ran |= flatten(stages.get(stage, {}).get("params", {}).get("params.yaml", {}))
    return ran


def model_md5(lock: dict[str, Any], family: str) -> str | None:
    """The md5 ``dvc.lock`` gives the family's model file."""
    outs = lock.get("stages", {}).get(f"train@{family}", {}).get("outs", [])
    return next((out["md5"] for out in outs if out["path"] == model_path(family).as_posix()), None)


def results(lock: dict[str, Any], comparison: dict[str, Any], platform: dict[str, Any], md5) -> dict[str, Result]:
    """Every family's result in one place (the record or the workspace), by family."""
    return {
        row["family"]: Result(
            accuracy=row["test_accuracy"],
            test_images=row["test_images"],
            model_md5=md5(row["family"]),
            platform=platform.get(row["family"], {}),
            settings=settings(lock, row["family"]),
        )
        for row in comparison["families"]
    }


def spreads(text: str | None, record_lock: dict[str, Any]) -> dict[str, Spread]:
    """Each family's spread over seeds, from ``headline-seeds``, where the study ran the record's
    configuration: the family's settings in ``dvc.lock`` at the study's baseline commit (its seed 0)
    are the record's. The platform may differ: another CPU's rounding is one more source of the
    run-to-run spread the seeds measure, not another configuration."""
    if text is None:
        return {}
    study = json.loads(text)
    baseline = study.get("run", {}).get("baseline")
    baseline_lock = read_lock(git_show(baseline, LOCK), f"{LOCK} at {baseline}") if baseline else {}
    return {
        c["family"]: Spread(std=c["std"], runs=tuple(c["runs"]))
        for c in study["configurations"]
        if not c.get("settings")
        and c.get("n", 0) >= 2
        and settings(baseline_lock, c["family"]) == settings(record_lock, c["family"])
    }


def file_md5(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path} is missing, so its bytes cannot be judged; run 'make run' (or 'dvc pull')")
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_lock(text: str | None, where: str) -> dict[str, Any]:
    try:
        return yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        raise DataError(f"{where} is not valid YAML; put it back with 'git checkout -- {LOCK}'") from None


def verdicts(rev: str) -> list[dict[str, Any]]:
    """The verdict on every family of the workspace's comparison, against the record at ``rev``."""
    recorded = recorded_comparison(rev)
    record_lock = read_lock(git_show(rev, LOCK), f"{LOCK} at {rev}")
    record_platform = git_show(rev, PLATFORM)
    if record_platform is None:
        raise UserError(f"--against {rev}: that commit has no {PLATFORM}, so no platform to judge against")
    record = results(
        record_lock, json.loads(recorded), json.loads(record_platform), lambda family: model_md5(record_lock, family)
    )
    if not Path(COMPARISON).is_file():
        raise DataError(f"{COMPARISON} is missing: there is no run to judge yet; run 'make run'")
    lock = read_lock(Path(LOCK).read_text() if Path(LOCK).is_file() else None, LOCK)
    here = results(
        lock, read_json(Path(COMPARISON)), read_json(Path(PLATFORM)), lambda family: file_md5(model_path(family))
    )
    seeds = spreads(git_show(rev, SEEDS), record_lock)
    return [judge(family, record.get(family), result, seeds.get(family)) for family, result in here.items()]


def percent(value: float | None, signed: bool = False) -> str:
    return "" if value is None else f"{value:+.2%}" if signed else f"{value:.2%}"


def table(rows: list[dict[str, Any]], commit: str) -> str:
    """The verdicts as a terminal table, then what differs from the record's platform and settings."""
    head = ["family", "verdict", "record", "here", "difference", "tolerance", "model bytes"]
    cells = [
        [
            r["family"],
            r["verdict"],
            percent(r.get("record_accuracy")),
            percent(r["accuracy"]),
            percent(r.get("difference"), signed=True),
            f"±{r['tolerance']:.2%}" if "tolerance" in r else "",
            ("the record's" if r["same_bytes"] else "other") if "same_bytes" in r else "",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *cells]) for i in range(len(head))]
    lines = [f"reproduction of the results of record at {commit}:"]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [head, *cells]
    ]
    notes: dict[str, list[str]] = {}
    for r in rows:
        for key, (was, now) in r.get("platform_differences", {}).items():
            notes.setdefault(f"platform: {key}: {was} (record) -> {now} (here)", []).append(r["family"])
        for key, (was, now) in r.get("settings_differences", {}).items():
            notes.setdefault(f"settings: {key}: {was} (record) -> {now} (here)", []).append(r["family"])
    families = [r["family"] for r in rows]
    for note, who in notes.items():
        lines.append(f"{note}{'' if who == families else ' [' + ', '.join(who) + ']'}")
    return "\n".join(lines) + "\n"


def tolerance_table(comparison: str, seeds: str | None, lock: str | None) -> str:
    """Each family's tolerance at a record, as the markdown table docs/reproducibility.md shows."""
    spread = spreads(seeds, read_lock(lock, LOCK))
    lines = ["| family | record | seed spread (s) | tolerance |", "| --- | ---: | ---: | ---: |"]
    for row in json.loads(comparison)["families"]:
        family, accuracy = row["family"], row["test_accuracy"]
        s = spread.get(family)
        tol = tolerance(s, accuracy, row["test_images"])
        lines.append(f"| {family} | {accuracy:.2%} | {f'{s.std:.2%}' if s else 'none'} | ±{tol:.2%} |")
    return "\n".join(lines) + "\n"
