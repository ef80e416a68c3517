"""Install time: ``make install`` in a fresh clone, cold (empty pip and npm caches) and warm (filled).

    .venv/bin/python -m benchmarks.install

Cold is a new user's first install: every package from the registries, with this machine's pip
configuration left out (``PIP_CONFIG_FILE`` set to the null device, ``PIP_FIND_LINKS`` unset), so no
local wheel store stands in for the registry. Warm is a second fresh clone with the same caches: a
user's second project, or ``make install`` after ``rm -r .venv``. Prints one row of the install table
in benchmarks/README.md: the machine, the Python, both times. Run it with nothing else running.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fmnist.reproduction import machine

ROOT = Path(__file__).resolve().parent.parent


def install_seconds(clone: Path, caches: Path) -> float:
    """``make install`` in a fresh clone of the committed project, with its caches under ``caches``."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CACHE_DIR": str(caches / "pip"),
        "npm_config_cache": str(caches / "npm"),
    }
    start = time.perf_counter()
    done = subprocess.run(["make", "install"], cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"error: make install failed in {clone}: {(done.stderr or done.stdout)[-500:]}")
    return seconds


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cold = install_seconds(work / "cold", work / "caches")
        warm = install_seconds(work / "warm", work / "caches")
        python = subprocess.run(
            [str(work / "warm/.venv/bin/python"), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    facts = machine.cpu()
    cpu = f"{facts['cpu_model']} ({facts['cpu_generation']})"
    print(
        f"| {datetime.date.today()} | {commit.stdout.strip()} | {cpu}, {os.cpu_count()} cores | "
        f"{platform.system()} {platform.machine()} | {python} | {minutes(cold)} | {minutes(warm)} |"
    )


if __name__ == "__main__":
    sys.exit(main())
