"""Run the seeds' studies as DVC experiment sweeps, and report them with statistics.

    python -m fmnist.studies list
    python -m fmnist.studies run NAME [--repeats N] [--jobs J] [--epochs E] [--train-limit L]
    python -m fmnist.studies run NAME --shard I/N --push REMOTE [...]   # one machine's share
    python -m fmnist.studies run NAME --only RUN [...]                  # one run again
    python -m fmnist.studies report NAME [--pull REMOTE [--shards N]] [the same budget flags]
    python -m fmnist.studies slurm NAME --tasks N --push REMOTE [...]   # an array job, then its report

``run`` queues every configuration x repeat and waits for DVC's queue; run it again and finished
experiments are skipped. ``report`` writes ``metrics/studies/NAME.{json,md}`` and
``plots/studies/NAME.png``. Spread over machines that share a git remote and a DVC remote, each
runs ``--shard I/N`` (every Nth run from the Ith) and pushes its experiments; any of them then
pulls them all and reports (``report --pull``). On a Slurm cluster ``slurm`` submits the shards as
an array job (``--shard task/N`` reads the task's index) and the report after it: docs/studies.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ruamel.yaml.error import YAMLError

from fmnist.config.schema import Param
from fmnist.config.yaml_reader import parse_yaml
from fmnist.studies.cluster import script_path, submit, task_index
from fmnist.studies.report import markdown, report
from fmnist.studies.runner import pull, run
from fmnist.studies.spec import STUDIES_FILE, Budget, StudyError, configurations, load_studies
from fmnist.utils.errors import ParamsError, run_stage

FLAGS = {
    "--repeats": Param("", kind=int, ge=1, le=100),
    "--epochs": Param("", kind=int, ge=1, le=1000),
    "--train-limit": Param("", kind=int, ge=10, le=60000),  # at least one image per class
    "--jobs": Param("", kind=int, ge=1, le=64),
    "--tasks": Param("", kind=int, ge=1, le=1000),
    "--shards": Param("", kind=int, ge=1, le=1000),
}


def check_flag(flag: str, text: str, spec: Param) -> int:
    """The flag's value, or a one-line error (exit 2) naming it and what is allowed."""
    try:
        return spec.check(parse_yaml(text))
    except (ValueError, TypeError, YAMLError):  # parse_yaml is ruamel's: its errors, not PyYAML's
        raise ParamsError(f"{flag} {text} is not allowed; expected {spec.allowed()}") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` as (I, N), or a one-line error (exit 2) naming the flag and what is allowed. ``task/N``
    takes I from the scheduler's task index (a Slurm array job's or a Kubernetes Indexed Job's)."""
    index, _, count = text.partition("/")
    if index == "task" and count.isdigit():
        index = str(task_index(os.environ))
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ParamsError(f"--shard {text} is not allowed; expected I/N with 1 <= I <= N (e.g. 1/4), or task/N")
    return int(index), int(count)


def missing_runs(name: str, summary: dict, shards: int | None, budget: Budget) -> str | None:
    """A line naming the runs the report lacks and what runs them, or None when it has them all."""
    missing = summary.get("missing") or []
    if not missing:
        return None
    listed = ", ".join(run for _, run in missing[:4]) + (", ..." if len(missing) > 4 else "")
    head = f"{name}: {len(missing)} of {summary['planned']} runs missing ({listed})"
    if shards is None:
        return f"{head}; run them: python -m fmnist.studies run {name} (the same budget flags)"
    tasks = sorted({index % shards + 1 for index, _ in missing})
    listing = ",".join(map(str, tasks))
    return (
        f"{head}; they are task{'s' if len(tasks) > 1 else ''} {listing} of {shards}: resubmit alone with "
        f"sbatch --array={listing} {script_path(name, budget)}, then report again"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.studies", description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=STUDIES_FILE, help="the studies file")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the studies and their sizes")
    for command in ("run", "report", "slurm"):
        p = sub.add_parser(command)
        p.add_argument("name")
        # Read as text and checked below like a params key, so a bad value is one line, exit 2.
        p.add_argument("--repeats", help="runs per configuration (default: the study's)")
        p.add_argument("--epochs", help="cut every run to this many epochs (default: the study's own)")
        p.add_argument("--train-limit", help="train on this many images (default: all)")
        if command in ("run", "slurm"):
            p.add_argument("--jobs", default="1", help="queue workers running at once (on a cluster: in each task)")
            p.add_argument("--push", metavar="REMOTE", help="then 'dvc exp push' the runs to this git remote")
        if command == "run":
            p.add_argument(
                "--shard",
                help="I/N: run only every Nth run from the Ith (1 <= I <= N), no report; "
                "task/N: I is the scheduler's task index",
            )
            p.add_argument("--only", metavar="RUN", help="run this one run again (its name: dvc exp list --name-only)")
        elif command == "slurm":
            p.add_argument("--tasks", required=True, help="the array job's tasks, each a shard")
        else:
            p.add_argument(
                "--pull", metavar="REMOTE", help="first 'dvc exp pull' the study's runs from this git remote"
            )
            p.add_argument("--shards", help="the shards the runs were run as: name the task of each missing run")
    args = parser.parse_args(argv)
    for flag, spec in FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            setattr(args, flag.lstrip("-").replace("-", "_"), check_flag(flag, value, spec))
    shard = parse_shard(args.shard) if getattr(args, "shard", None) is not None else None
    studies = load_studies(args.studies)
    if args.command == "list":
        for name, study in studies.items():
            n = len(configurations(study))
            print(f"{name:28} seed {study['seed']}  {n:3} configurations x {study['repeats']} repeats")
        return
    if args.name not in studies:
        raise StudyError(f"unknown study '{args.name}'; known: {', '.join(studies)}")
    study = studies[args.name]
    budget = Budget(args.epochs or 0, args.train_limit or 0)
    repeats = args.repeats or study["repeats"]
    if args.command == "slurm":
        if args.push is None:
            raise ParamsError("slurm needs --push REMOTE: the git remote every task clones and pushes its runs to")
        print(submit(args.name, args.studies, budget, repeats, args.tasks, args.jobs, args.push))
        return
    if args.command == "run":
        run(args.name, study, budget, repeats, args.jobs, shard, args.push, args.only)
        if shard is not None:
            print(
                f"{args.name}: shard {shard[0]}/{shard[1]} done{' and pushed to ' + args.push if args.push else ''}; "
                f"once every shard is, on any machine: python -m fmnist.studies report {args.name} "
                f"--pull {args.push or 'REMOTE'}"
            )
            return
    elif args.pull is not None:
        pull(args.name, study, budget, repeats, args.pull)
    summary = report(args.name, study, budget, repeats)
    print(markdown(summary, None), end="")
    lacking = missing_runs(args.name, summary, getattr(args, "shards", None), budget)
    if lacking:
        print(lacking, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_stage(main))
