"""A study's report: ``metrics/studies/NAME.json``, ``NAME.md`` and ``plots/studies/NAME.png``."""

from __future__ import annotations

import json
from typing import Any

from fmnist.evaluation import figures
from fmnist.studies.runner import collect
from fmnist.studies.spec import CHARTS, REPORTS, Budget, StudyError, planned_runs
from fmnist.studies.statistics import ALPHA, summarize
from fmnist.utils import plotting
from fmnist.utils.atomic import atomic_path, write_json

VERDICT_TEXT = {
    "supported": "supported",
    "contradicted": "contradicted",
    "tie": f"not shown: p >= {ALPHA}, the difference may be run-to-run noise",
    "untestable": "untestable: fewer than 2 runs per side",
}


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown(summary: dict[str, Any], wall: dict[str, Any] | None) -> str:
    budget = summary["budget"]
    cut = f", CUT to {budget['described']}" if budget.get("cut") else ""
    lines = [f"# Study {summary['study']} (seed {summary['seed']}){cut}", "", summary["description"], ""]
    if cut:
        lines += [
            f"**A cut run: {budget['described']}, not the settings the description names.** Its figures are not "
            "the study's and rank nothing; run it without --epochs and --train-limit for those.",
            "",
        ]
    lines.append(f"Budget: {budget['described']}; {budget['repeats']} repeats (train.seed 0..).")
    if summary.get("missing"):
        lines += ["", f"**Incomplete: {len(summary['missing'])} of {summary['planned']} runs missing** (see n)."]
    if wall:
        # Records before the machine was named say so rather than guess it.
        lines.append(
            f"Wall time on {wall.get('machine', 'a machine the record does not name')}: {wall['wall_seconds']:.0f} s"
            f" with {wall['jobs']} queue workers (code at commit {wall.get('baseline', 'not recorded')})."
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
        tests = dict.fromkeys(t["test"] for c in summary["claims"] for t in c["tests"])
        lines += [
            "",
            f"| the seed's claim | verdict ({' or '.join(tests)}, alpha {ALPHA}) | evidence |",
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
    planned = planned_runs(name, study, budget, repeats)
    runs = collect(planned)
    if not runs:
        raise StudyError(f"no finished runs of {name} at this budget; run 'python -m fmnist.studies run {name}' first")
    summary = summarize(name, study, runs, budget, repeats)
    have = {r.name for r in runs}
    missing = [(index, r.name) for index, r in enumerate(planned) if r.name not in have]
    if missing:  # (its index in the plan: what names the shard, and so the task, that runs it)
        summary.update(planned=len(planned), missing=missing)
    stem = budget.report_name(name)
    wall_file = REPORTS / f"{stem}.run.json"
    wall = json.loads(wall_file.read_text()) if wall_file.exists() else None
    write_json(REPORTS / f"{stem}.json", {**summary, "run": wall})
    with atomic_path(REPORTS / f"{stem}.md") as tmp:
        tmp.write_text(markdown(summary, wall))
    chart = figures.study_bars(summary)
    if budget.cut:  # the chart says so too, wherever it is shown without the report
        chart.axes[0].set_title(f"CUT: {chart.axes[0].get_title()}")
    plotting.save_figure(chart, CHARTS / f"{stem}.png")
    return summary
