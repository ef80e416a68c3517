"""The facts of a machine that change the bits a training run produces, and nothing that doesn't.

TensorFlow's kernels come from oneDNN, which picks its code path from the CPU's instruction set at
run time (capped by ``ONEDNN_MAX_CPU_ISA``): another set gives other rounding, so other weights.
The thread counts and the TensorFlow, Keras and oneDNN versions change them too. Everything here is
the same on every run on one machine, so the record written from it is deterministic.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# A one-op TensorFlow program: oneDNN prints its version and instruction set once, on first use.
_PROBE = "import tensorflow as tf; x = tf.ones((8, 8)); tf.linalg.matmul(x, x).numpy()"
_PROBE_SECONDS = 300
UNKNOWN = "unknown"


def cpu() -> dict[str, str]:
    """The CPU's vendor and model name, as the kernel reports them (``/proc/cpuinfo`` on Linux)."""
    facts = {"cpu_vendor": UNKNOWN, "cpu_model": platform.processor() or UNKNOWN}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id":
                    facts["cpu_vendor"] = value.strip()
                elif key == "model name":
                    facts["cpu_model"] = value.strip()
                elif not line.strip():
                    break  # the first processor says it all: a machine here has one kind
    except OSError:
        pass
    return facts


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
    """The platform of one training run: the runtime's settings, the CPU and oneDNN's dispatch."""
    return {**runtime, **cpu(), **probe.result()}
