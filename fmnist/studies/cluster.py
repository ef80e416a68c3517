"""A study on a cluster: a scheduler's task index as a shard, and a study as a Slurm array job.

Task I of an array of N runs ``studies run NAME --shard task/N --push REMOTE`` in a clone of its
own, so that tasks never share DVC's repository lock (treeverse/dvc#7419), and pushes its runs;
a report job, queued after the whole array, pulls them all into the repository that submitted it.
A task that failed is resubmitted alone (``sbatch --array=I SCRIPT``); runs it pushed before are
not run again. docs/studies.md says what this needs of the cluster.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from fmnist.studies.runner import LOG_DIR, check_push
from fmnist.studies.spec import STUDIES_FILE, Budget, StudyError
from fmnist.utils.atomic import atomic_path

# A scheduler's variable for the task's index, and what turns it into a shard's 1-based index:
# Slurm's is the array index, which the script below numbers from 1; a Kubernetes Indexed Job's
# completion index starts at 0.
TASK_INDEX = {"SLURM_ARRAY_TASK_ID": 0, "JOB_COMPLETION_INDEX": 1}
SCRIPTS = LOG_DIR  # the array job's script and every task's log, beside the queue's logs


def task_index(environ: Mapping[str, str]) -> int:
    """This task's shard index (1-based) from the scheduler's variables, or a one-line error."""
    for variable, offset in TASK_INDEX.items():
        value = environ.get(variable, "")
        if value.isdigit():
            return int(value) + offset
    raise StudyError(
        f"--shard task/N reads the task's index from {' or '.join(TASK_INDEX)}, and neither is set; "
        "run it inside an array job, or name the shard: --shard I/N"
    )


def script_path(name: str, budget: Budget) -> Path:
    return SCRIPTS / f"{budget.report_name(name)}.sbatch"


def study_args(name: str, studies: Path, budget: Budget, repeats: int) -> list[str]:
    """``python -m fmnist.studies``'s arguments that name the study and its budget, for any command."""
    where = [] if studies == STUDIES_FILE else ["--studies", str(studies.resolve())]
    cut = [a for flag, value in (("--epochs", budget.epochs), ("--train-limit", budget.train_limit)) if value
           for a in (flag, str(value))]  # fmt: skip
    return [*where, "{command}", name, "--repeats", str(repeats), *cut]


def task_script(name: str, args: list[str], tasks: int, jobs: int, url: str, commit: str, budget: Budget) -> str:
    """The array job's batch script: task I clones ``url`` at ``commit``, pulls the data, runs shard
    I/``tasks`` and pushes it, then removes its clone."""
    run = " ".join(shlex.quote(a.format(command="run")) for a in args)
    log = SCRIPTS / f"{budget.report_name(name)}-%A_%a.out"
    return f"""#!/bin/bash
# {name} as a Slurm array job of {tasks} tasks: written by python -m fmnist.studies slurm.
# Resubmit one task alone: sbatch --array=I {script_path(name, budget)} (runs it pushed are not run again).
#SBATCH --job-name={name}
#SBATCH --array=1-{tasks}
#SBATCH --cpus-per-task={jobs}
#SBATCH --output={log}
set -euo pipefail
export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"  # the venv that submitted it
scratch="$(mktemp -d "${{TMPDIR:-/tmp}}/{name}-$SLURM_ARRAY_TASK_ID.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
trap 'exit 143' TERM  # scancel, or the time limit: the clone goes too
git clone --quiet {shlex.quote(url)} "$scratch/repo"
cd "$scratch/repo"
git checkout --quiet {commit}
dvc pull --quiet  # the prepared data, from the DVC remote
python -m fmnist.studies {run} --shard task/{tasks} --push origin --jobs {jobs}
"""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def check_commit(remote: str) -> str:
    """HEAD's commit, once ``remote`` is known to hold it (every task checks it out from there)."""
    commit = git("rev-parse", "HEAD")
    subprocess.run(["git", "fetch", "--quiet", remote], capture_output=True)
    if not git("branch", "--remotes", "--contains", commit, "--list", f"{remote}/*"):
        raise StudyError(f"{remote} does not hold this commit ({commit[:8]}), which every task checks out; git push it")
    if git("status", "--porcelain", "--untracked-files=no"):
        raise StudyError("the workspace has uncommitted changes, which no task would see; commit and push them")
    return commit


def sbatch(*args: str) -> str:
    """Submit with ``sbatch --parsable``; the job's id, or a one-line error."""
    if shutil.which("sbatch") is None:
        raise StudyError("no 'sbatch' on PATH: submit from a machine of a Slurm cluster")
    result = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True)
    if result.returncode:
        raise StudyError(f"sbatch refused the job: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return result.stdout.strip().split(";")[0]


def submit(name: str, studies: Path, budget: Budget, repeats: int, tasks: int, jobs: int, remote: str) -> str:
    """Write the array job's script, submit it and the report job after it; what to watch, as text."""
    check_push(remote)
    url = git("remote", "get-url", remote)
    commit = check_commit(remote)
    args = study_args(name, studies, budget, repeats)
    script = script_path(name, budget)
    with atomic_path(script) as tmp:
        tmp.write_text(task_script(name, args, tasks, jobs, url, commit, budget))
    array = sbatch(str(script))
    report = " ".join(shlex.quote(a.format(command="report")) for a in args)
    reporter = sbatch(
        f"--dependency=afterany:{array}",
        f"--job-name={name}-report",
        f"--output={SCRIPTS / budget.report_name(name)}-report-%j.out",
        f"--wrap={shlex.quote(sys.executable)} -m fmnist.studies {report} --pull {remote} --shards {tasks}",
    )
    return (
        f"{name}: array job {array} ({tasks} tasks, script {script}), then report job {reporter} here; "
        f"watch: squeue --jobs {array},{reporter}; logs: {SCRIPTS}/"
    )
