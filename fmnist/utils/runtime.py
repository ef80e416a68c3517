"""TensorFlow's process-wide settings that change speed and the bits of results.

Threads, op determinism and the seeds are fixed by :func:`configure` before TensorFlow runs its
first op. oneDNN cannot be: TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, as it loads, so the
stage's command sets it (dvc.yaml) and :func:`configure` refuses a process that runs otherwise
than ``train.onednn`` says.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port  # whether oneDNN is on; no public API says

from fmnist.utils.errors import ParamsError


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which taskset and container cpusets set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def onednn_on() -> bool:
    """Whether this process runs TensorFlow's oneDNN kernels (fixed when TensorFlow loaded)."""
    return bool(_pywrap_util_port.IsMklEnabled())


def configure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Fix threads, op determinism and every seed from ``cfg``; check oneDNN; return what was set.

    A thread count of 0 becomes every core, resolved here rather than left to TensorFlow, so that
    the summary records the number that ran.
    """
    if onednn_on() != cfg["onednn"]:
        want = str(cfg["onednn"]).lower()
        raise ParamsError(
            f"train.onednn is {want} but this process runs with oneDNN {'on' if onednn_on() else 'off'}: "
            f"TensorFlow reads it as it loads; run the stage as dvc.yaml does, with TF_ENABLE_ONEDNN_OPTS={want}"
        )
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
