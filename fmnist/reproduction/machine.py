"""The facts of a machine that change the bits a training run produces, and nothing that doesn't.

TensorFlow's kernels come from oneDNN on Linux (x86_64 and aarch64), which picks its code path from
the CPU's instruction set at run time (capped by ``ONEDNN_MAX_CPU_ISA``): another set gives other
rounding, so other weights. On macOS (Apple silicon) TensorFlow has no oneDNN; its Eigen kernels
follow the chip, so the chip is what is named. The operating system, the architecture, the
Python, the thread counts and the TensorFlow, Keras and oneDNN versions are named too. Everything
here is the same on every run on one machine, so the record written from it is deterministic.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# A one-op TensorFlow program: oneDNN prints its version and instruction set once, on first use.
_PROBE = "import tensorflow as tf; x = tf.ones((8, 8)); tf.linalg.matmul(x, x).numpy()"
_PROBE_SECONDS = 300
UNKNOWN = "unknown"


def system() -> dict[str, str]:
    """The operating system, the architecture and the Python (major.minor) running TensorFlow."""
    return {
        "os": platform.system() or UNKNOWN,
        "arch": platform.machine() or UNKNOWN,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def cpu() -> dict[str, str]:
    """The CPU's vendor, model name and generation: ``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS.

    The generation tells apart what the name does not ("AMD EPYC" is a Zen 3, 4 or 5 alike).
    """
    if sys.platform == "darwin":
        return darwin_cpu(_sysctl)
    try:
        with open("/proc/cpuinfo") as info:
            return parse_cpuinfo(info.read())
    except OSError:
        return parse_cpuinfo("")


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's facts in Linux's ``/proc/cpuinfo`` (a machine here has one kind).

    x86 names the vendor, the model and its family and model numbers; ARM names none but the
    implementer's code and the part number, with the architecture, variant and revision.
    """
    first = text.strip().split("\n\n")[0]
    facts = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    if "CPU implementer" in facts:
        named = ("architecture", "variant", "revision")
        arm = [f"{key} {facts[f'CPU {key}']}" for key in named if f"CPU {key}" in facts]
        return {
            "cpu_vendor": f"implementer {facts['CPU implementer']}",
            "cpu_model": f"part {facts.get('CPU part', UNKNOWN)}",
            "cpu_generation": ", ".join(arm) or UNKNOWN,
        }
    numbered = "cpu family" in facts and "model" in facts
    return {
        "cpu_vendor": facts.get("vendor_id", UNKNOWN),
        "cpu_model": facts.get("model name") or platform.processor() or UNKNOWN,
        "cpu_generation": f"family {facts['cpu family']}, model {facts['model']}" if numbered else UNKNOWN,
    }


def darwin_cpu(sysctl: Callable[[str], str]) -> dict[str, str]:
    """A Mac's chip: its brand ("Apple M2") and ``hw.cpufamily``, the code of its cores' design."""
    vendor = sysctl("machdep.cpu.vendor") or ("Apple" if platform.machine() == "arm64" else UNKNOWN)
    return {
        "cpu_vendor": vendor,
        "cpu_model": sysctl("machdep.cpu.brand_string") or UNKNOWN,
        "cpu_generation": f"cpufamily {sysctl('hw.cpufamily') or UNKNOWN}",
    }


def _sysctl(name: str) -> str:
    """One ``sysctl -n`` value, or "" where the name does not exist."""
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def onednn() -> dict[str, str]:
    """oneDNN's version and the instruction set it dispatches to, in this process's environment.

    TensorFlow exposes neither, so a child process with ``ONEDNN_VERBOSE`` runs one matmul and
    oneDNN says both; the child inherits ``ONEDNN_MAX_CPU_ISA``, so the answer is this process's.
    """
    return _onednn(os.environ.get("ONEDNN_MAX_CPU_ISA"))


@functools.lru_cache
def _onednn(isa_cap: str | None) -> dict[str, str]:
    """:func:`onednn` once per process and cap: the answer is a fact of the machine."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=_PROBE_SECONDS
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return parse_onednn_verbose(out)


def parse_onednn_verbose(text: str) -> dict[str, str]:
    """The version and instruction set in oneDNN's verbose banner (``onednn_verbose,...,info,...``)."""
    version = re.search(r"^onednn_verbose,(?:v\d+,)?info,oneDNN (v[\w.]+)", text, re.MULTILINE)
    isa = re.search(r"^onednn_verbose,(?:v\d+,)?info,cpu,isa:(.+)$", text, re.MULTILINE)
    return {
        "onednn_version": version.group(1) if version else UNKNOWN,
        "onednn_isa": isa.group(1).strip() if isa else UNKNOWN,
    }


def start_probe() -> Future[dict[str, str]]:
    """Start :func:`onednn` in the background: its child's TensorFlow import overlaps training."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onednn-probe")
    future = pool.submit(onednn)
    pool.shutdown(wait=False)
    return future


def record(runtime: dict[str, Any], probe: Future[dict[str, str]]) -> dict[str, Any]:
    """The platform of one training run: the runtime's settings, the system, the CPU and oneDNN's
    dispatch."""
    return {**runtime, **system(), **cpu(), **probe.result()}
