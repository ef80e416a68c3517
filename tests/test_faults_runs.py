"""Fault injection, runs: interrupted, diverging, unwritable and hostile cases of real stage runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from fmnist.utils.errors import run_stage
from stages import evaluate, train
from tests.conftest import ROOT, TINY, write_params


def files(project) -> set[str]:
    """Every file and every temporary directory under ``project``."""
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() or p.name.endswith(".tmp")}


@pytest.mark.slow  # a training subprocess per signal
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_mid_training_leaves_nothing_and_the_rerun_is_clean(project, sig):
    write_params(project, train={"epochs": 1000, "batch_size": 32}, families=TINY)
    before = files(project)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "mlp"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:  # wait until training is well under way
        if line.startswith("Epoch 3/"):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; nothing was written, rerun with 'dvc repro'"
    ]
    assert files(project) == before

    write_params(project, train={"epochs": 1, "batch_size": 32}, families=TINY)
    assert run_stage(train.main, ["mlp"]) == 0
    assert (project / "models/mlp.keras").is_file()


def test_learning_rate_10_stops_at_the_first_exploded_loss_with_no_model(project, capsys):
    write_params(
        project,
        train={"epochs": 3, "batch_size": 32, "optimizer": "sgd", "learning_rate": 10.0},
        families={**TINY, "mlp": {"hidden": [256, 256], "activations": []}},  # the size that blows up
    )
    before = files(project)
    assert run_stage(train.main, ["mlp"]) == 1
    err = capsys.readouterr().err.strip()
    # 270 images in batches of 32: one execution of 9 steps, whose batches the error names.
    assert re.fullmatch(
        r"error: training diverged: loss is [\d.e+]+ \(above 1000\) at epoch 1, in batches 1-9; "
        r"lower train\.learning_rate or pick another train\.optimizer",
        err,
    ), err
    assert files(project) == before


def test_an_output_path_that_cannot_be_written_is_one_line(project, capsys):
    (project / "models").write_text("a file where the models directory should be")
    before = files(project)
    assert run_stage(train.main, ["mlp"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: cannot write models/mlp.keras: File exists; make models a writable directory")
    assert files(project) == before


def test_a_model_file_never_runs_code_on_load(project, capsys):
    import keras

    marker = project / "pwned"
    inputs = keras.Input((28, 28, 1))
    # No closure: the lambda's own code would create the file, relative to the working directory.
    outputs = keras.layers.Lambda(lambda x: (__import__("pathlib").Path("pwned").touch(), x)[1])(inputs)
    (project / "models").mkdir()
    keras.Model(inputs, outputs).save(project / "models/mlp.keras")
    marker.unlink(missing_ok=True)  # saving traced the lambda once; only loading counts

    assert run_stage(evaluate.main, ["mlp"]) == 1
    err = capsys.readouterr().err
    assert "models/mlp.keras is damaged (" in err
    assert "safe_mode" in err
    assert not marker.exists()
    assert not (project / "metrics").exists()
