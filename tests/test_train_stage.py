import json

import pytest

from fmnist.utils.errors import run_stage
from stages import train
from tests.conftest import TINY, write_params


@pytest.mark.slow  # trains the cnn twice
def test_train_stage_writes_byte_identical_outputs_with_no_wall_clock_figure(project):
    assert run_stage(train.main, ["cnn"]) == 0
    outputs = [p for p in [project / "models/cnn.keras", *(project / "metrics/train/cnn").rglob("*")] if p.is_file()]
    first = {p: p.read_bytes() for p in outputs}
    summary = json.loads((project / "metrics/train/cnn/summary.json").read_text())
    assert summary["family"] == "cnn"
    assert summary["epochs_run"] == 1
    assert summary["runtime"]["intra_op_threads"] == 2
    assert summary["runtime"]["op_determinism"] is True
    assert {p.name for p in (project / "metrics/train/cnn/plots/metrics").iterdir()} == {"train", "eval"}

    assert summary["training_flops_per_image"] > 0
    assert not {"train_seconds", "images_per_second"} & set(summary)

    assert run_stage(train.main, ["cnn"]) == 0
    assert {p: p.read_bytes() for p in outputs} == first  # summary.json and dvclive's files included


def test_saved_model_loads_safely_and_predicts(project):
    from fmnist.models.saving import load_model

    assert run_stage(train.main, ["mlp"]) == 0
    model = load_model(project / "models/mlp.keras")
    assert model.output_shape == (None, 10)


def test_batch_larger_than_training_set_fails_cleanly(project, capsys):
    write_params(project, train={"batch_size": 4096}, families=TINY)
    assert run_stage(train.main, ["mlp"]) == 1
    assert "batch_size 4096 is larger than the 270 training images" in capsys.readouterr().err
    assert not (project / "models").exists()
    assert not (project / "metrics").exists()


def test_failure_mid_training_leaves_no_outputs(project, capsys, monkeypatch):
    from fmnist.training import loop

    real_train = loop.train

    def diverge_after_first_epoch(model, cfg, splits, live_dir, strategy):
        real_train(model, {**cfg, "epochs": 1}, splits, live_dir, strategy)  # writes curves, like a real run
        raise loop.DivergedError("training diverged: loss is nan at epoch 2, batch 1")

    monkeypatch.setattr(loop, "train", diverge_after_first_epoch)
    assert run_stage(train.main, ["mlp"]) == 1
    assert "training diverged" in capsys.readouterr().err
    assert not (project / "models").exists()
    assert not [p for p in (project / "metrics/train").rglob("*") if p.is_file()]
