"""``train.distribute``: mirrored over logical CPUs, multi-worker over local processes, and their errors.

The strategies run in fresh processes: logical devices and a multi-worker cluster must be set up
before TensorFlow starts, and this test process started it long ago.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from fmnist.data.splits import load_split
from fmnist.utils.errors import run_stage
from stages import train
from tests.conftest import ROOT, TINY, write_params

# Same data, same global batch, same epochs: mirrored may differ from one device only by the order
# of float sums and by dropout's random draws on each replica.
ACCURACY_TOLERANCE = 0.10
TRAIN = {"epochs": 8, "learning_rate": 0.01, "dropout": 0.0}


def stage(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stages.train", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return out


def accuracy_on_test(project: Path) -> float:
    x, y = load_split(project / "data/processed", "test")
    model = keras.saving.load_model(project / "models/mlp.keras")
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def summary(project: Path) -> dict:
    return json.loads((project / "metrics/train/mlp/summary.json").read_text())


def copy_project(project: Path, to: Path) -> Path:
    shutil.copytree(project / "data", to / "data")
    shutil.copy(project / "params.yaml", to / "params.yaml")
    return to


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_one_device(project, tmp_path):
    write_params(project, train={**TRAIN, "batch_size": 32}, families=TINY)
    finish(stage(project, "mlp"))
    mirrored = copy_project(project, tmp_path / "mirrored")
    # Half the batch on each of two replicas: the same global batch of 32 as the one-device run.
    write_params(
        mirrored,
        train={**TRAIN, "batch_size": 16, "distribute": "mirrored", "cpu_devices": 2},
        families=TINY,
    )
    finish(stage(mirrored, "mlp"))

    assert summary(mirrored)["distribute"] == {
        "strategy": "mirrored",
        "replicas": 2,
        "hosts": 1,
        "global_batch_size": 32,
    }
    assert summary(project)["distribute"]["replicas"] == 1
    one, two = accuracy_on_test(project), accuracy_on_test(mirrored)
    assert one > 0.5  # it learned something, so agreeing means something
    assert abs(one - two) <= ACCURACY_TOLERANCE, (one, two)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_trains_on_two_processes_and_only_the_chief_writes(project, tmp_path):
    write_params(project, train={**TRAIN, "batch_size": 32, "distribute": "multi_worker"}, families=TINY)
    worker = copy_project(project, tmp_path / "worker")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}

    def tf_config(index: int) -> dict[str, str]:
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}

    processes = [stage(project, "mlp", env=tf_config(0)), stage(worker, "mlp", env=tf_config(1))]
    outputs = [finish(p) for p in processes]

    assert "trained as a worker; the chief writes the model and metrics" in outputs[1]
    assert not (worker / "models").exists()
    assert not (worker / "metrics").exists()
    assert summary(project)["distribute"] == {
        "strategy": "multi_worker",
        "replicas": 2,
        "hosts": 2,
        "global_batch_size": 64,
    }
    # It learned: the chief's validation score and its saved model, on test images, at three times
    # chance (0.1, where an untrained or diverged net stays) or more. Eight epochs of two workers
    # reach about 0.47 and 0.50 on these few synthetic images; the bound leaves room for CPU kinds.
    metrics = json.loads((project / "metrics/train/mlp/metrics.json").read_text())
    assert metrics["eval"]["accuracy"] >= 0.3
    assert accuracy_on_test(project) >= 0.3


@pytest.mark.parametrize(
    ("train_params", "tf_config", "message"),
    [
        (
            {"distribute": "mirrored", "devices": ["/gpu:3"]},
            None,
            "error: train.devices: /gpu:3 is not a device of this machine; it has /device:CPU:0",
        ),
        (
            {"distribute": "multi_worker"},
            None,
            "error: train.distribute: multi_worker needs TF_CONFIG set to JSON with 'cluster' and 'task'",
        ),
        (
            {"distribute": "multi_worker"},
            "{cluster: 1",
            "error: TF_CONFIG is not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
    ],
)
def test_a_strategy_that_cannot_exist_fails_in_one_line_before_writing(
    project, monkeypatch, capsys, train_params, tf_config, message
):
    import tensorflow as tf

    if "devices" in train_params and tf.config.list_physical_devices("GPU"):
        pytest.skip("the message names this machine's devices: written for one with no GPU (CPU:0 only)")
    write_params(project, train=train_params, families=TINY)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert run_stage(train.main, ["mlp"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message)
    assert "\n" not in err
    assert not (project / "models").exists()
    assert not (project / "metrics").exists()
