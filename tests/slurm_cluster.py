"""A one-node Slurm cluster from Debian's packages (slurm-wlm, munge), for the tests that submit to it.

Everything it needs lives in one temporary directory: munge's key and socket, slurm.conf, the
daemons' state, spool and logs; the daemons run in the foreground as this process's children and
are stopped by their process ids. Clients find it through ``SLURM_CONF``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def why_not() -> str | None:
    """Why no cluster can start here, or None."""
    missing = [d for d in (*DAEMONS, "sbatch") if shutil.which(d, path=f"/usr/sbin:{os.environ['PATH']}") is None]
    if missing:
        return f"no {', '.join(missing)}: Debian's slurm-wlm and munge (make test installs them as root)"
    if os.geteuid() != 0:
        return "the daemons run as root here (SlurmUser=root); run the suite as root"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, node: str) -> str:
    return "\n".join(
        [
            "ClusterName=fmnist-test",
            f"SlurmctldHost={node}(127.0.0.1)",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root}/run/munge.socket",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/run/slurmctld.pid",
            f"SlurmdPidFile={root}/run/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
            f"PartitionName=main Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@contextmanager
def one_node_cluster(root: Path) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under ``root``; yield the environment that reaches them."""
    for sub in ("key", "run", "state", "spool", "log"):
        (root / sub).mkdir(parents=True)
    (root / "key").chmod(0o700)
    key = root / "key/munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    node = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, node))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    commands = [
        ["munged", "-F", "--force", f"--socket={root}/run/munge.socket", f"--key-file={key}", *munge_files(root)],
        ["slurmctld", "-D", "-f", str(conf)],
        ["slurmd", "-D", "-f", str(conf)],
    ]
    with ExitStack() as daemons:
        for command in commands:
            log = (root / "log" / f"{command[0]}.out").open("w")
            daemons.callback(log.close)
            process = subprocess.Popen(
                [shutil.which(command[0], path=f"/usr/sbin:{os.environ['PATH']}"), *command[1:]],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            daemons.callback(stop, process)
            if command[0] == "munged":
                wait_for(lambda: (root / "run/munge.socket").exists(), 10, "munged's socket", root)
        wait_for(lambda: "idle" in sinfo(env), 30, "the node to come up idle", root)
        yield {"SLURM_CONF": str(conf)}


def munge_files(root: Path) -> list[str]:
    return [f"--pid-file={root}/run/munged.pid", f"--seed-file={root}/run/munged.seed", f"--log-file={root}/log/munged"]


def sinfo(env: dict[str, str]) -> str:
    result = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=env, capture_output=True, text=True)
    return result.stdout


def wait_for(ready, seconds: float, what: str, root: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            logs = "\n".join(f"{p.name}: {p.read_text()[-800:]}" for p in sorted((root / "log").iterdir()))
            raise AssertionError(f"waited {seconds} s for {what}\n{logs}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_jobs(env: dict[str, str], jobs: list[str], seconds: float) -> None:
    """Until none of ``jobs`` (ids, array jobs whole) is pending or running."""
    deadline = time.monotonic() + seconds
    while True:
        queued = subprocess.run(
            ["squeue", "--noheader", f"--jobs={','.join(jobs)}", "--format=%i %T"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not queued:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still queued after {seconds} s: {queued}")
        time.sleep(2)
