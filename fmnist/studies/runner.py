"""Run a study's configurations as DVC experiments through DVC's queue, and read their results back.

Runs are queued with ``dvc exp run --queue`` under names derived from their settings and budget,
then run by ``dvc exp run --run-all --jobs J``, which waits for them; a run that already finished
is never queued again. Every experiment's state and metrics are read from ``dvc exp show --json``
once the queue is done (polling it while workers run can hang it: treeverse/dvc#8762), never from
a text table.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from fmnist.all_params import load_params
from fmnist.config.params import family_config
from fmnist.reproduction.machine import cpu
from fmnist.studies.spec import REPORTS, Budget, Run, StudyError, overrides, planned_runs
from fmnist.utils.atomic import write_json

BENCHMARK = Path("metrics/benchmark.json")
# The time a queued run costs beyond its training epochs: DVC's copy of the workspace and checkout,
# two stage processes starting TensorFlow, loading the data, evaluating. seed000-grid's smoke run
# (48 runs of 2 epochs on 5000 images, 2 workers) took about 15 min here, nearly all of it this.
SECONDS_PER_RUN = 35.0
LOG_DIR = Path(".dvc/tmp/studies")  # DVC ignores it; git too
WORKERS = Path(".dvc/tmp/exps/celery")  # DVC's queue workers: each one's pid and, once it exits, its exit code
ACTIVE = {"queued", "running"}
PROGRESS_SECONDS = 30  # how often the queue's progress is looked at; a line at least every 4 of these
# DVC's queue can hang with no run going (treeverse/dvc#8165, #10398): when no run has finished in
# STALL_FACTOR times the longest run's estimate (never less than STALL_FLOOR), the runner stops it.
STALL_FACTOR = 3
STALL_FLOOR = 600.0  # s
STALL_UNKNOWN = 3600.0  # s, where the benchmark has no rate to estimate a run from


def dvc(*args: str) -> str:
    try:
        result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise StudyError(
            "no 'dvc' command on PATH; activate the project's venv (source .venv/bin/activate) and run again"
        ) from None
    if result.returncode:
        raise StudyError(f"'dvc {' '.join(args)}' failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result.stdout


def experiments() -> dict[str, dict[str, Any]]:
    """Every experiment of this project, by name: its state (success, queued, running or failed) and data."""
    return parse_experiments(json.loads(dvc("exp", "show", "--all-commits", "--json")))


def parse_experiments(shown: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The experiments in ``dvc exp show --json`` output, by name, with their state and data."""
    found: dict[str, dict[str, Any]] = {}
    for baseline in shown:
        for exp_range in baseline.get("experiments") or []:
            revs = exp_range.get("revs") or [{}]
            name = exp_range.get("name") or revs[0].get("name")
            if name:
                state = (exp_range.get("executor") or {}).get("state") or "success"
                found[name] = {"state": state, "data": revs[0].get("data") or {}}
    return found


def estimate_seconds(runs: list[Run], budget: Budget, jobs: int, params: dict[str, Any]) -> float | None:
    """A rough wall time for ``runs``: their training images at the benchmark's rate for each family
    (measured at its default size, on the whole machine, so workers share it), plus the fixed cost
    of a run spread over the workers. None when the benchmark has no rate for a family."""
    rates = json.loads(BENCHMARK.read_text()).get("throughput", {}) if BENCHMARK.exists() else {}
    images = budget.train_limit or round(60000 * (1 - params["preprocess"]["val_fraction"]))
    training = 0.0
    for r in runs:
        rate = rates.get(r.config.family, {}).get("ours_images_per_second")
        if not rate:
            return None
        epochs = budget.epochs or r.config.settings.get("epochs") or family_config(params, r.config.family)["epochs"]
        training += images * epochs / rate
    return training + SECONDS_PER_RUN * len(runs) / jobs


def stall_seconds(runs: list[Run], budget: Budget, jobs: int, params: dict[str, Any]) -> float:
    """How long the queue may go with no run finishing before the runner calls it stuck: the
    workers share the machine, so a run takes about ``jobs`` times its estimate alone."""
    alone = [estimate_seconds([r], budget, 1, params) for r in runs]
    if not alone or None in alone:
        return STALL_UNKNOWN
    return max(STALL_FLOOR, STALL_FACTOR * jobs * max(alone))


def settled(names: set[str], timeout: float = 120.0) -> dict[str, str | None]:
    """The state of each named experiment once none is queued or running any more (or ``timeout``
    seconds have passed): a run's record can lag the end of the queue by a moment."""
    deadline = time.monotonic() + timeout
    while True:
        known = experiments()
        states = {n: known.get(n, {}).get("state") for n in names}
        if not any(state in ACTIVE for state in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(2)


def run(
    name: str,
    study: dict[str, Any],
    budget: Budget,
    repeats: int,
    jobs: int,
    shard: tuple[int, int] | None = None,
    push: str | None = None,
    only: str | None = None,
) -> None:
    """Run the study's runs not yet finished here, or with ``shard`` (I, N) every Nth from the Ith,
    so that N machines share it with no run twice; ``push``: then send them to that git remote;
    ``only``: run that one run (by name) again, whether or not it finished."""
    runs = planned_runs(name, study, budget, repeats)
    plan = f"{len(runs) // repeats} configurations x {repeats}"
    if shard is not None:
        runs = runs[shard[0] - 1 :: shard[1]]
        plan = f"shard {shard[0]}/{shard[1]} of {plan}"
    if only is not None:
        runs = [one_run(name, runs, only)]
        plan = f"only {only} of {plan}"
    names = {r.name for r in runs}
    pushed: set[str] = set()
    if push is not None:
        check_push(push)  # before any run: a cluster job would otherwise train its whole length first
        # A resubmitted task, in a new clone, does not run again what it pushed before.
        pushed = set(dvc("exp", "list", push, "--all-commits", "--name-only").split()) & names
    baseline = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{name}: looking for its runs among the experiments here (dvc exp show; minutes where there are many)")
    known = experiments()
    if only is not None and only in known:  # run again: DVC keeps one experiment per name
        print(f"{name}: removing the earlier {only} ({known[only]['state']}) to run it again")
        dvc("exp", "remove", only)
        del known[only]
    todo = [r for r in runs if r.name not in pushed and known.get(r.name, {}).get("state") not in {"success", *ACTIVE}]
    on_remote = f" ({len(pushed)} of them on {push} already)" if pushed else ""
    print(f"{name}: {len(runs)} runs ({plan}), {len(runs) - len(todo)} done or queued{on_remote}")
    params = load_params()
    if todo:
        seconds = estimate_seconds(todo, budget, jobs, params)
        guess = f"about {seconds / 60:.0f} min" if seconds is not None else "an unknown time (no benchmark rate)"
        print(f"{name}: {len(todo)} runs to go, {guess} on this machine (a rough guide)", flush=True)
    start = time.perf_counter()
    for r in todo:
        dvc(
            "exp",
            "run",
            "--queue",
            "--name",
            r.name,
            *[a for o in overrides(r.config, budget, r.repeat, params) for a in ("-S", o)],
            f"evaluate@{r.config.family}",
        )
    names -= pushed
    done = {n for n, exp in known.items() if exp["state"] == "success"} & names
    if done != names:
        stall = stall_seconds([r for r in runs if r.name in names - done], budget, jobs, params)
        run_queue(name, names, len(names - done), budget, jobs, stall)
        if shard is None and only is None:  # a part's wall time is not the study's: not recorded
            REPORTS.mkdir(parents=True, exist_ok=True)
            record = REPORTS / f"{budget.report_name(name)}.run.json"
            earlier = json.loads(record.read_text()) if record.exists() else {}
            wall = {
                "budget": budget.__dict__,
                "repeats": repeats,
                "jobs": jobs,
                "runs": len(runs),
                "baseline": baseline,
                "machine": machine_name(),
            }
            write_json(record, wall_record(earlier, wall, time.perf_counter() - start))
    if push is not None and names:
        print(f"{name}: pushing {len(names)} runs to {push} (their git refs; their outputs to the DVC remote)")
        dvc("exp", "push", push, *sorted(names))


def one_run(name: str, runs: list[Run], only: str) -> Run:
    """The run named ``only`` among ``runs``, or a one-line error with the nearest name."""
    for r in runs:
        if r.name == only:
            return r
    near = difflib.get_close_matches(only, [r.name for r in runs], n=1)
    hint = f"did you mean {near[0]}? " if near else ""
    raise StudyError(
        f"--only {only}: {name} has no run of that name at this budget; {hint}"
        f"its runs are named {runs[0].name} and so on (dvc exp list --name-only)"
    )


def machine_name() -> str:
    """The machine a study's wall time was measured on, as the records table names it."""
    facts = cpu()
    return f"{facts['cpu_model']} ({facts['cpu_generation']}), {os.cpu_count()} cores"


def run_queue(name: str, names: set[str], pending: int, budget: Budget, jobs: int, stall: float) -> None:
    """Run DVC's queue (``pending`` runs) until it is empty; fail, naming one, if any of ``names``
    did, or when no run finished for ``stall`` seconds."""
    # `--run-all` starts the queue's workers and returns when every queued run has ended. Its
    # output goes to a file, which the workers it spawns inherit (a pipe they would hold open), and
    # is echoed from there: progress shows on the terminal and stays in the log.
    log = LOG_DIR / f"{budget.report_name(name)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"{name}: {pending} runs on {jobs} queue workers; DVC's log of each: {log} "
        f"(stopped, saying so, if no run finishes in {stall / 60:.0f} min)",
        flush=True,
    )
    with log.open("a") as out, log.open() as echo:
        echo.seek(0, 2)
        queue = subprocess.Popen(
            ["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        start = last_look = last_line = last_run = time.monotonic()
        before = done = finished(names)  # runs finished earlier are not this queue's
        while queue.poll() is None:
            print(echo.read(), end="", flush=True)
            time.sleep(1)
            now = time.monotonic()
            if now - last_look >= PROGRESS_SECONDS:
                last_look, was = now, done
                done = finished(names)
                if done != was:
                    last_run = now
                if done != was or now - last_line >= 4 * PROGRESS_SECONDS:
                    print(progress(name, len(done - before), pending, now - start), flush=True)
                    last_line = now
                if done == names and now - last_run >= 2 * PROGRESS_SECONDS:
                    print(f"{name}: every run finished but DVC's queue did not return (treeverse/dvc#8165); stopped it")
                    stop_queue(queue)
                elif now - last_run >= stall:
                    stop_queue(queue)
                    raise StudyError(
                        f"{name}: no run finished in {stall / 60:.0f} min, so DVC's queue was stopped as stuck "
                        f"(treeverse/dvc#8165); see {log} and 'dvc queue status', then run again "
                        "(finished runs are kept)"
                    )
        print(echo.read(), end="", flush=True)
    states = settled(names)
    workers_gone()
    failed = sorted(n for n in names if states.get(n) != "success")
    if failed:
        raise StudyError(
            f"{len(failed)} of {len(names)} runs failed, e.g. {failed[0]}; "
            f"see 'dvc queue logs {failed[0]}', then run again"
        )


def workers_gone(timeout: float = 60.0) -> None:
    """Wait until DVC's queue workers have exited: they outlive ``--run-all`` by their idle time
    (10 s) and then write their exit code into ``.dvc/tmp``, which would bring back a clone that a
    cluster task removes once its study is done."""
    deadline = time.monotonic() + timeout
    for info in WORKERS.glob("dvc-exp-worker-*.json"):
        while time.monotonic() < deadline:
            try:
                if json.loads(info.read_text()).get("returncode") is not None:
                    break
            except FileNotFoundError:
                break
            except ValueError:  # being written
                pass
            time.sleep(1)


def stop_queue(queue: subprocess.Popen) -> None:
    """Stop ``dvc exp run --run-all`` and the queue's workers it started."""
    queue.terminate()
    try:
        queue.wait(timeout=30)
    except subprocess.TimeoutExpired:
        queue.kill()
        queue.wait()
    with contextlib.suppress(OSError):  # the workers it left, if any; none to stop is no error
        subprocess.run(["dvc", "queue", "stop", "--kill"], capture_output=True)


def check_push(remote: str) -> None:
    """Refuse, in one line, a ``--push`` that could not take the runs: ``dvc exp push`` sends their
    git refs to ``remote`` and their outputs to DVC's default remote."""
    reached = subprocess.run(["git", "ls-remote", "--heads", remote], capture_output=True, text=True)
    if reached.returncode:
        remotes = subprocess.run(["git", "remote"], capture_output=True, text=True).stdout.split()
        raise StudyError(
            f"--push {remote}: git cannot reach it as a remote ({(reached.stderr.strip().splitlines() or ['?'])[0]}); "
            f"name one of this repository's remotes ({', '.join(remotes) or 'it has none: git remote add NAME URL'})"
        )
    default = subprocess.run(["dvc", "remote", "default"], capture_output=True, text=True)
    if default.returncode or not default.stdout.strip():
        raise StudyError(
            f"--push {remote}: DVC has no default remote for the runs' outputs; add one: dvc remote add -d NAME URL"
        )


def finished(names: set[str]) -> set[str]:
    """The named experiments that have finished, by their git refs (``refs/exps/AB/CDEF.../NAME``,
    one for each successful run): reading refs takes no DVC lock, unlike ``dvc exp show``."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], capture_output=True, text=True)
    return {ref.rsplit("/", 1)[1] for ref in refs.stdout.split() if ref.count("/") == 4} & names


def progress(name: str, done: int, pending: int, seconds: float) -> str:
    """A line on the queue's progress, with the time to go at the pace measured so far."""
    spent = f"{seconds / 60:.0f} min"
    if not done:
        return f"{name}: 0 of {pending} runs done after {spent}; the first one's time will tell the pace"
    return (
        f"{name}: {done} of {pending} runs done in {spent}; "
        f"about {seconds / done * (pending - done) / 60:.0f} min to go at that pace"
    )


def pull(name: str, study: dict[str, Any], budget: Budget, repeats: int, remote: str) -> None:
    """Fetch the study's runs that ``remote`` holds (pushed by the machines that ran its shards)."""
    names = {r.name for r in planned_runs(name, study, budget, repeats)}
    there = set(dvc("exp", "list", remote, "--all-commits", "--name-only").split()) & names
    if not there:
        raise StudyError(f"{remote} holds no run of {name} at this budget; run its shards with --push {remote} first")
    dvc("exp", "pull", remote, *sorted(there))
    print(f"{name}: pulled {len(there)} of {len(names)} runs from {remote}")


def wall_record(earlier: dict[str, Any], wall: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The study's record of its wall time after a run that took ``seconds``.

    A resumed or extended study (more repeats) at the same commit adds to the time already spent
    there. At another commit the earlier runs belong to other code, so the count starts again.
    """
    same_code = earlier.get("baseline") == wall["baseline"]
    spent = earlier.get("wall_seconds", 0.0) if same_code else 0.0
    return {**wall, "wall_seconds": round(spent + seconds, 1)}


def collect(runs: list[Run]) -> list[Run]:
    """Fill each run's test accuracy from ``dvc exp show --json``; leave out runs not finished."""
    found = experiments()
    out = []
    for r in runs:
        exp = found.get(r.name)
        if exp is None or exp["state"] != "success":
            continue
        metrics = exp["data"].get("metrics", {}).get(f"metrics/evaluate/{r.config.family}/metrics.json", {})
        scores = metrics.get("data", {})
        # {"mlp": 0.9}; experiments run before the metric was one column a family: {"test": {"accuracy": 0.9}}
        accuracy = scores.get(r.config.family, scores.get("test", {}).get("accuracy"))
        if accuracy is not None:
            r.accuracy = accuracy
            out.append(r)
    return out
