"""TensorFlow's process-wide settings that change speed and the bits of results.

They must be fixed before TensorFlow runs its first op (oneDNN: before it is imported), so
stages call :func:`configure` first and import Keras-using modules after it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

# What TensorFlow 2.21 prints to stderr on import, twice (two of its libraries log it, whatever
# TF_CPP_MIN_LOG_LEVEL says): absl's notice and the oneDNN line. The oneDNN setting is in
# summary.json and the reproduction verdict; every other line the import prints still shows.
BANNER = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*)$"
)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which taskset and container cpusets set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def banner_filtered() -> Iterator[None]:
    """Hold what native code writes to stderr meanwhile, then write it back without ``BANNER`` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not BANNER.match(line.rstrip(b"\n"))]
            rest = memoryview(b"".join(kept))
            while rest:
                rest = rest[os.write(2, rest) :]


def configure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Fix threads, oneDNN, op determinism and every seed from ``cfg``; return what was set.

    A thread count of 0 becomes every core, resolved here rather than left to TensorFlow, so that
    the summary records the number that ran.
    """
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if cfg["onednn"] else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep start-up banners out of the logs
    with banner_filtered():
        import keras
        import tensorflow as tf

    if cfg["cpu_devices"] > 1:  # before anything initialises the devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cfg["cpu_devices"])
    keras.backend.clear_session()  # fresh layer-name counters: same names, same saved bytes
    tf.config.threading.set_intra_op_parallelism_threads(cfg["intra_op_threads"] or cores())
    tf.config.threading.set_inter_op_parallelism_threads(cfg["inter_op_threads"] or cores())
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(cfg["seed"])
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": cfg["onednn"],
        "cpu_devices": cfg["cpu_devices"],
        "op_determinism": True,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
