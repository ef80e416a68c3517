"""Run the seeds' studies as DVC experiment sweeps, and report them with statistics.

    python -m stages.study list
    python -m stages.study run NAME [--repeats N] [--jobs J] [--epochs E] [--train-limit L]
    python -m stages.study report NAME [the same budget flags]

``run`` queues every configuration x repeat with ``dvc exp run --queue`` under a name derived from
its settings and budget, runs the queue with ``dvc queue start -j J`` and waits; run it again and
finished experiments are skipped. ``report`` collects them from ``dvc exp show --json`` and writes
``metrics/studies/NAME.json``, ``metrics/studies/NAME.md`` and ``plots/studies/NAME.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats
from tqdm import tqdm

from stages import figures
from stages.atomic import atomic_path, write_json
from stages.errors import ParamsError, UserError, run_stage
from stages.params import FAMILIES, defaults, validate

STUDIES_FILE = Path(__file__).with_name("studies.yaml")
OUT_DIR = Path("metrics/studies")
PLOTS_DIR = Path("plots/studies")
ALPHA = 0.05  # the significance level of every verdict
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

    def describe(self) -> str:
        parts = [
            f"epochs {self.epochs}" if self.epochs else "",
            f"train_limit {self.train_limit}" if self.train_limit else "",
        ]
        return ", ".join(p for p in parts if p) or "the study's own settings"


@dataclass
class Run:
    name: str
    config: Config
    repeat: int
    accuracy: float | None = None


def load_studies(path: Path = STUDIES_FILE) -> dict[str, dict[str, Any]]:
    """Read the studies file and check every study's shape and every key it sets."""
    studies = yaml.safe_load(Path(path).read_text()) or {}
    for name, study in studies.items():
        unknown = set(study) - STUDY_KEYS
        if unknown:
            raise StudyError(
                f"{path}: study '{name}' has unknown keys {sorted(unknown)}; allowed: {sorted(STUDY_KEYS)}"
            )
        if study.get("family") not in FAMILIES:
            raise StudyError(f"{path}: study '{name}' needs a family, one of {', '.join(FAMILIES)}")
        for config in configurations(study):
            check_settings(config, f"{path}: study '{name}', {config.label() or 'fixed settings'}")
    return studies


def check_settings(config: Config, where: str) -> None:
    """Validate a configuration's keys and values with the params schema, before anything is queued."""
    raw = defaults()
    raw["families"][config.family] = {**raw["families"][config.family], **config.settings}
    try:
        validate(raw)
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


def overrides(config: Config, budget: Budget, repeat: int) -> list[str]:
    """The ``-S`` arguments of one run. Keys go into the family's block, so no other family reruns."""
    settings = {**config.settings, "seed": repeat, **({"epochs": budget.epochs} if budget.epochs else {})}
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


def dvc(*args: str) -> str:
    result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if result.returncode:
        raise StudyError(f"'dvc {' '.join(args)}' failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result.stdout


def finished_names() -> set[str]:
    return set(dvc("exp", "list", "--all-commits", "--name-only").split())


def queue_states() -> dict[str, str]:
    """Experiment name -> Queued, Running, Success or Failed, from ``dvc queue status``."""
    states = {}
    for line in dvc("queue", "status").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[-1] in {"Queued", "Running", "Success", "Failed"}:
            states[parts[1]] = parts[-1]
    return states


def run(name: str, study: dict[str, Any], budget: Budget, repeats: int, jobs: int) -> None:
    runs = planned_runs(name, study, budget, repeats)
    baseline = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    done = finished_names()
    pending = {n for n, state in queue_states().items() if state in {"Queued", "Running"}}
    todo = [r for r in runs if r.name not in done and r.name not in pending]
    n_configs = len(runs) // repeats
    print(f"{name}: {len(runs)} runs ({n_configs} configurations x {repeats}), {len(runs) - len(todo)} done or queued")
    start = time.perf_counter()
    for r in todo:
        dvc(
            "exp",
            "run",
            "--queue",
            "--name",
            r.name,
            *[a for o in overrides(r.config, budget, r.repeat) for a in ("-S", o)],
            f"evaluate@{r.config.family}",
        )
    if any(r.name not in done for r in runs):
        # The workers it starts outlive it and would hold captured pipes open: no pipes, no waiting.
        subprocess.Popen(
            ["dvc", "queue", "start", "--jobs", str(jobs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        names = {r.name for r in runs}
        with tqdm(total=len(runs), initial=len(done & names), unit="run", disable=None) as bar:
            while True:
                states = queue_states()
                finished = len(finished_names() & names)
                bar.update(finished - bar.n)
                if not any(states.get(n) in {"Queued", "Running"} for n in names):
                    break
                time.sleep(5)
        states, finished_now = queue_states(), finished_names()  # once, not two dvc calls per run
        failed = sorted(n for n in names if states.get(n) == "Failed" and n not in finished_now)
        if failed:
            raise StudyError(
                f"{len(failed)} runs failed, e.g. {failed[0]}; see 'dvc queue logs {failed[0]}', then run again"
            )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    record = OUT_DIR / f"{name}.run.json"
    # A resumed or extended study (more repeats) adds to the time already spent at this budget.
    earlier = json.loads(record.read_text()) if record.exists() else {}
    spent = earlier.get("wall_seconds", 0.0) if earlier.get("budget") == budget.__dict__ else 0.0
    write_json(
        record,
        {
            "budget": budget.__dict__,
            "repeats": repeats,
            "jobs": jobs,
            "runs": len(runs),
            "baseline": baseline,
            "wall_seconds": round(spent + time.perf_counter() - start, 1),
        },
    )


def _find_experiments(node: Any, out: dict[str, dict[str, Any]]) -> None:
    """Walk ``dvc exp show --json`` and collect every named revision's data."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and isinstance(node.get("data"), dict):
            out[node["name"]] = node["data"]
        for value in node.values():
            _find_experiments(value, out)
    elif isinstance(node, list):
        for value in node:
            _find_experiments(value, out)


def collect(runs: list[Run]) -> list[Run]:
    """Fill each run's test accuracy from ``dvc exp show --json``; leave out runs not found."""
    found: dict[str, dict[str, Any]] = {}
    _find_experiments(json.loads(dvc("exp", "show", "--all-commits", "--json")), found)
    out = []
    for r in runs:
        data = found.get(r.name)
        if data is None:
            continue
        metrics = data.get("metrics", {}).get(f"metrics/evaluate/{r.config.family}/metrics.json", {}).get("data", {})
        if "test" in metrics:
            r.accuracy = metrics["test"]["accuracy"]
            out.append(r)
    return out


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Welch's t-test of mean(a) against mean(b), two-sided."""
    result = {"mean_a": float(np.mean(a)), "mean_b": float(np.mean(b)), "n_a": len(a), "n_b": len(b)}
    if len(a) < 2 or len(b) < 2:
        return {**result, "p": None}
    if np.std(a) == 0 and np.std(b) == 0:  # identical repeats: no spread to test against
        return {**result, "p": 1.0 if result["mean_a"] == result["mean_b"] else 0.0}
    return {**result, "p": float(stats.ttest_ind(a, b, equal_var=False).pvalue)}


def _pair_verdict(test: dict[str, Any]) -> str:
    if test["p"] is None:
        return "untestable"
    if test["p"] >= ALPHA:
        return "tie"
    return "supported" if test["mean_a"] > test["mean_b"] else "contradicted"


def judge(claim: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
    """The verdict on one claim: each ordered pair tested with Welch's t-test, pooled over other factors."""
    factor = claim["factor"]

    def accuracies(levels: list[str]) -> list[float]:
        return [r.accuracy for r in runs if r.config.labels.get(factor) in levels]

    if "groups" in claim:
        (high, high_levels), (low, low_levels) = claim["groups"].items()
        order = [(high, high_levels), (low, low_levels)]
    else:
        order = [(level, [level]) for level in claim["order"]]
    tests = []
    for (a, a_levels), (b, b_levels) in itertools.pairwise(order):
        test = welch(accuracies(a_levels), accuracies(b_levels))
        tests.append({"a": a, "b": b, **test, "verdict": _pair_verdict(test)})
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


VERDICT_TEXT = {
    "supported": "supported",
    "contradicted": "contradicted",
    "tie": f"not shown: p >= {ALPHA}, the difference may be run-to-run noise",
    "untestable": "untestable: fewer than 2 runs per side",
}


def summarize(name: str, study: dict[str, Any], runs: list[Run], budget: Budget, repeats: int) -> dict[str, Any]:
    rows = []
    for config in configurations(study):
        accs = [r.accuracy for r in runs if r.config == config]
        if accs:
            rows.append(
                {
                    "config": config.label(),
                    "family": config.family,
                    "settings": config.settings,
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
        "budget": {**budget.__dict__, "repeats": repeats, "described": budget.describe()},
        "configurations": rows,
        "sampled": sorted(study["random"]["space"]) if "random" in study else [],
        "best": rows[0]["config"] if rows else None,
        "claims": [judge(claim, runs) for claim in study.get("claims", [])],
        "runs_found": len(runs),
    }


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown(summary: dict[str, Any], wall: dict[str, Any] | None) -> str:
    lines = [
        f"# Study {summary['study']} (seed {summary['seed']})",
        "",
        summary["description"],
        "",
        f"Budget: {summary['budget']['described']}; {summary['budget']['repeats']} repeats (train.seed 0..).",
    ]
    if wall:
        lines.append(
            f"Wall time on this machine: {wall['wall_seconds']:.0f} s with {wall['jobs']} queue workers"
            f" (code at commit {wall.get('baseline', 'unknown')})."
        )
    sampled = summary["sampled"]  # a random search: show what each configuration drew
    lines += [
        "",
        "| configuration |" + (" sampled settings |" if sampled else "") + " test accuracy (mean ± std) | n |",
        "| --- |" + (" --- |" if sampled else "") + " ---: | ---: |",
    ]
    for row in summary["configurations"]:
        best = "**" if row["config"] == summary["best"] else ""
        drawn = ", ".join(f"{key} {_shown(row['settings'][key])}" for key in sampled)
        lines.append(
            f"| {best}{row['config']}{best} |"
            + (f" {drawn} |" if sampled else "")
            + f" {row['mean']:.2%} ± {row['std']:.2%} | {row['n']} |"
        )
    if summary["claims"]:
        lines += [
            "",
            f"| the seed's claim | verdict (Welch's t-test, alpha {ALPHA}) | evidence |",
            "| --- | --- | --- |",
        ]
        for c in summary["claims"]:
            evidence = "; ".join(
                f"{t['a']} {t['mean_a']:.2%} vs {t['b']} {t['mean_b']:.2%}"
                + (f", p = {t['p']:.3g}" if t["p"] is not None else "")
                for t in c["tests"]
            )
            if "effect" in c:
                evidence += (
                    f"; effect {c['effect']:+.2%}, largest gap between {c['versus']} levels {c['versus_gap']:.2%}"
                    + (f" (p = {c['versus_p']:.3g})" if c.get("versus_p") is not None else "")
                )
            lines.append(f"| {c['claim']} | {VERDICT_TEXT[c['verdict']]} | {evidence} |")
    return "\n".join(lines) + "\n"


def report(name: str, study: dict[str, Any], budget: Budget, repeats: int) -> dict[str, Any]:
    runs = collect(planned_runs(name, study, budget, repeats))
    if not runs:
        raise StudyError(f"no finished runs of {name} at this budget; run 'python -m stages.study run {name}' first")
    summary = summarize(name, study, runs, budget, repeats)
    wall_file = OUT_DIR / f"{name}.run.json"
    wall = json.loads(wall_file.read_text()) if wall_file.exists() else None
    write_json(OUT_DIR / f"{name}.json", {**summary, "run": wall})
    with atomic_path(OUT_DIR / f"{name}.md") as tmp:
        tmp.write_text(markdown(summary, wall))
    figures.save_figure(figures.study_bars(summary), PLOTS_DIR / f"{name}.png")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.study", description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=STUDIES_FILE, help="the studies file")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the studies and their sizes")
    for command in ("run", "report"):
        p = sub.add_parser(command)
        p.add_argument("name")
        p.add_argument("--repeats", type=int, help="runs per configuration (default: the study's)")
        p.add_argument("--epochs", type=int, default=0, help="cut every run to this many epochs")
        p.add_argument("--train-limit", type=int, default=0, help="train on this many images")
        if command == "run":
            p.add_argument("--jobs", type=int, default=1, help="queue workers running at once")
    args = parser.parse_args(argv)
    studies = load_studies(args.studies)
    if args.command == "list":
        for name, study in studies.items():
            n = len(configurations(study))
            print(f"{name:28} seed {study['seed']}  {n:3} configurations x {study['repeats']} repeats")
        return
    if args.name not in studies:
        raise StudyError(f"unknown study '{args.name}'; known: {', '.join(studies)}")
    study = studies[args.name]
    budget = Budget(args.epochs, args.train_limit)
    repeats = args.repeats or study["repeats"]
    if args.command == "run":
        run(args.name, study, budget, repeats, args.jobs)
    summary = report(args.name, study, budget, repeats)
    print(markdown(summary, None), end="")


if __name__ == "__main__":
    sys.exit(run_stage(main))
