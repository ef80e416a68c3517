"""The ``tf.distribute`` strategy that ``train.distribute`` asks for, and who may write outputs.

``none`` keeps TensorFlow's default strategy (one device). ``mirrored`` copies the model onto
several local devices and splits each batch between them. ``multi_worker`` does the same across
the hosts listed in ``TF_CONFIG``; every host runs the same stage command, and only the chief
writes the model, metrics and plots. Create the strategy right after ``runtime.configure``:
``MultiWorkerMirroredStrategy`` must exist before TensorFlow runs its first op.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from fmnist.utils.errors import ParamsError


def local_devices() -> list[str]:
    """Every logical GPU, or every logical CPU on a machine without one."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [d.name for d in devices]


def _type_and_index(device: str) -> tuple[str, int]:
    spec = tf.DeviceSpec.from_string(device)
    return spec.device_type.upper(), spec.device_index


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(raw) if raw else None
    except json.JSONDecodeError as err:
        raise ParamsError(f"TF_CONFIG is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(config, dict) or not config.get("cluster") or not isinstance(config.get("task"), dict):
        raise ParamsError(
            "train.distribute: multi_worker needs TF_CONFIG set to JSON with 'cluster' and 'task', e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}'
        )


def strategy(cfg: dict[str, Any]) -> tf.distribute.Strategy:
    """The strategy for ``cfg``; raise :class:`ParamsError` if the devices or cluster it names do not exist."""
    kind = cfg["distribute"]
    if kind == "mirrored":
        available = local_devices()
        for device in cfg["devices"]:
            if _type_and_index(device) not in {_type_and_index(d) for d in available}:
                raise ParamsError(
                    f"train.devices: {device} is not a device of this machine; it has {', '.join(available)}"
                )
        return tf.distribute.MirroredStrategy(cfg["devices"] or available)
    if kind == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strat: tf.distribute.Strategy) -> bool:
    """True on the one process that writes outputs: the chief, else worker 0, else the only process."""
    resolver = getattr(strat, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def describe(strat: tf.distribute.Strategy, cfg: dict[str, Any]) -> dict[str, Any]:
    """What the training summary records about the strategy."""
    resolver = getattr(strat, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None and resolver.task_type else {}
    return {
        "strategy": cfg["distribute"],
        "replicas": strat.num_replicas_in_sync,
        "hosts": sum(len(tasks) for tasks in spec.values()) or 1,
        "global_batch_size": cfg["batch_size"] * strat.num_replicas_in_sync,
    }
