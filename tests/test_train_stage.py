import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.utils import runtime
from fmnist.utils.banner import banner_filtered
from fmnist.utils.errors import ParamsError, run_stage
from stages import train
from tests.conftest import ROOT, TINY, write_params


@pytest.mark.slow  # trains the cnn twice
def test_train_stage_writes_byte_identical_outputs_with_no_wall_clock_figure(project):
    assert run_stage(train.main, ["cnn"]) == 0
    outputs = [p for p in [project / "models/cnn.keras", *(project / "metrics/train/cnn").rglob("*")] if p.is_file()]
    first = {p: p.read_bytes() for p in outputs}
    summary = json.loads((project / "metrics/train/cnn/summary.json").read_text())
    assert summary["family"] == "cnn"
    assert summary["epochs_run"] == 1
    assert summary["runtime"]["intra_op_threads"] == runtime.cores()  # the shipped 0, resolved
    assert summary["runtime"]["op_determinism"] is True
    curves = project / "metrics/train/cnn/plots/metrics"
    assert {p.name for p in curves.iterdir()} == {"train", "eval", "learning_rate.tsv"}

    assert summary["training_flops_per_image"] > 0
    assert not {"train_seconds", "images_per_second"} & set(summary)

    assert run_stage(train.main, ["cnn"]) == 0
    assert {p: p.read_bytes() for p in outputs} == first  # summary.json and dvclive's files included


@pytest.mark.slow  # a stage in a process of its own, pinned to one core
def test_zero_threads_mean_every_core_the_process_may_use_and_the_summary_records_the_number(project):
    # One core, as `taskset -c 0` or a container's cpuset gives: the shipped 0 resolves to 1.
    code = (
        "import os; os.sched_setaffinity(0, {0}); from fmnist.utils.errors import run_stage; "
        "from stages import train; raise SystemExit(run_stage(train.main, ['mlp']))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=project, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    summary = json.loads((project / "metrics/train/mlp/summary.json").read_text())
    assert summary["runtime"]["intra_op_threads"] == 1
    assert summary["runtime"]["inter_op_threads"] == 1


def test_the_learning_rate_is_logged_per_epoch_as_the_schedule_sets_it(project):
    write_params(project, train={"epochs": 3, "batch_size": 32, "lr_schedule": "cosine"}, families=TINY)
    assert run_stage(train.main, ["mlp"]) == 0
    rows = (project / "metrics/train/mlp/plots/metrics/learning_rate.tsv").read_text().splitlines()
    assert rows[0] == "step\tlearning_rate"
    rates = [float(row.split("\t")[1]) for row in rows[1:]]
    assert len(rates) == 3
    assert rates[0] > rates[1] > rates[2] >= 0  # cosine decay to zero at the last step


def test_the_saved_model_loads_and_predicts_the_validation_split_as_training_scored_it(project):
    # (That loading runs no code a file carries: tests/test_faults_runs.py, a Lambda layer refused.)
    import numpy as np

    from fmnist.data.splits import load_split
    from fmnist.models.saving import load_model

    assert run_stage(train.main, ["mlp"]) == 0
    model = load_model(project / "models/mlp.keras")
    x, y = load_split(project / "data/processed", "val")
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))
    scored = json.loads((project / "metrics/train/mlp/metrics.json").read_text())["eval"]["accuracy"]
    assert accuracy == pytest.approx(scored, abs=1e-6)


def test_batch_larger_than_training_set_fails_cleanly(project, capsys):
    write_params(project, train={"batch_size": 4096}, families=TINY)
    assert run_stage(train.main, ["mlp"]) == 1
    assert "batch_size 4096 is larger than the 270 training images" in capsys.readouterr().err
    assert not (project / "models").exists()
    assert not (project / "metrics").exists()


def test_failure_mid_training_leaves_no_outputs(project, capsys, monkeypatch):
    from fmnist.training import loop

    real_train = loop.train

    def diverge_after_first_epoch(model, cfg, splits, curves_dir, strategy):
        real_train(model, {**cfg, "epochs": 1}, splits, curves_dir, strategy)  # writes curves, like a real run
        raise loop.DivergedError("training diverged: loss is nan at epoch 2, batch 1")

    monkeypatch.setattr(loop, "train", diverge_after_first_epoch)
    assert run_stage(train.main, ["mlp"]) == 1
    assert "training diverged" in capsys.readouterr().err
    assert not (project / "models").exists()
    assert not [p for p in (project / "metrics/train").rglob("*") if p.is_file()]


@pytest.mark.slow  # trains the mlp twice
def test_the_curves_appear_where_dvc_reads_them_epoch_by_epoch_and_a_failed_run_puts_back_the_last(
    project, capsys, monkeypatch
):
    import keras

    from fmnist.training import loop

    write_params(project, train={"epochs": 1, "batch_size": 32}, families={**TINY, "mlp": {**TINY["mlp"], "epochs": 3}})
    assert run_stage(train.main, ["mlp"]) == 0
    finished = {
        p: p.read_bytes() for p in [project / "models/mlp.keras", *project.rglob("metrics/train/**/*")] if p.is_file()
    }
    loss = project / "metrics/train/mlp/plots/metrics/train/loss.tsv"

    seen = []  # (epoch, rows of the loss curve on disk, summary.json there) as each epoch starts

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(
                (
                    epoch,
                    len(loss.read_text().splitlines()) - 1 if loss.exists() else 0,
                    (project / "metrics/train/mlp/summary.json").exists(),
                )
            )

        def on_train_end(self, logs=None):
            raise loop.DivergedError("training diverged: loss is nan at epoch 3, batch 1")

    real = loop.callbacks
    monkeypatch.setattr(loop, "callbacks", lambda cfg: [*real(cfg), Watch()])
    assert run_stage(train.main, ["mlp"]) == 1
    assert "training diverged" in capsys.readouterr().err
    assert seen == [(0, 0, False), (1, 1, False), (2, 2, False)]  # the last run's curves were set aside
    after = {
        p: p.read_bytes() for p in [project / "models/mlp.keras", *project.rglob("metrics/train/**/*")] if p.is_file()
    }
    assert after == finished  # the finished run's model and curves, as they were; no temporary left


def test_a_training_killed_by_sigkill_strands_a_temporary_git_ignores_and_the_documented_recipe_deletes(project):
    import re
    import shutil
    import signal
    import time

    write_params(
        project, train={"epochs": 1, "batch_size": 32}, families={**TINY, "mlp": {**TINY["mlp"], "epochs": 500}}
    )
    shutil.copy(ROOT / ".gitignore", project / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "stages.train", "mlp"], cwd=project, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((project / "metrics/train").glob(".mlp.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.2)  # the last run's curves are set aside there while this one trains
        assert child.poll() is None, "training ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    stranded = list(project.rglob(".*.tmp"))
    assert stranded  # what no handler could clean up
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    assert ".tmp" not in status
    row = next(line for line in (ROOT / "docs/faults.md").read_text().splitlines() if line.startswith("| SIGKILL"))
    recipe = re.search(r"`(find [^`]+)`", row)[1]
    for folder in ("metrics", "models", "plots", "data"):
        (project / folder).mkdir(exist_ok=True)  # as in a project, where every folder the recipe names is
    subprocess.run(recipe, shell=True, cwd=project, check=True)
    assert not [p for p in project.rglob(".*.tmp")]


def test_a_run_by_hand_keeps_the_gitignore_dvc_wrote_beside_the_outputs(project):
    # DVC lists a stage's outputs in a .gitignore git tracks; were it lost, git would show the
    # outputs untracked and the file deleted until checked out again.
    ignore = project / "metrics/train/mlp/.gitignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("/summary.json\n/metrics.json\n/plots\n")
    assert run_stage(train.main, ["mlp"]) == 0
    assert ignore.read_text() == "/summary.json\n/metrics.json\n/plots\n"
    assert (project / "metrics/train/mlp/summary.json").is_file()


def test_the_summary_records_the_platform_that_changes_the_bits(project):
    import keras
    import tensorflow as tf

    from fmnist.reproduction import machine

    assert run_stage(train.main, ["mlp"]) == 0
    platform = json.loads((project / "metrics/train/mlp/summary.json").read_text())["runtime"]
    assert platform["onednn_isa"] == machine.onednn()["onednn_isa"] != machine.UNKNOWN
    assert platform["onednn_version"].startswith("v")
    assert platform["cpu_model"] == machine.cpu()["cpu_model"] != machine.UNKNOWN
    assert platform["cpu_generation"] == machine.cpu()["cpu_generation"] != machine.UNKNOWN
    assert {k: platform[k] for k in ("os", "arch", "python")} == machine.system()
    assert (platform["tensorflow"], platform["keras"]) == (tf.__version__, keras.__version__)
    assert platform["onednn"] is True  # train.onednn, as shipped


# On a CPU with AVX-512, oneDNN capped to AVX2 has no bfloat16 convolution and says so. A CPU without
# AVX-512 is another case: TensorFlow sends bfloat16 to its default kernels there, and the family trains.
@pytest.mark.skipif(
    "avx512f" not in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else True,
    reason="needs a CPU with AVX-512: without it TensorFlow runs bfloat16 on its default kernels, not oneDNN's",
)
@pytest.mark.slow  # a process of its own: the instruction-set cap must be set before TensorFlow starts
def test_bfloat16_where_onednn_is_capped_below_avx512_is_one_line_and_writes_nothing(project):
    write_params(
        project,
        train={"epochs": 1, "batch_size": 32},
        families={**TINY, "airbench": {**TINY["airbench"], "precision": "mixed_bfloat16"}},
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), ONEDNN_MAX_CPU_ISA="AVX2")  # as on a CPU without AVX-512
    ran = subprocess.run(
        [sys.executable, "-m", "stages.train", "airbench"], cwd=project, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 1
    assert "Traceback" not in ran.stderr
    assert ran.stderr.splitlines()[-1] == (
        "error: oneDNN has no convolution forward propagation kernel for this model on this CPU (its instruction "
        "set lacks it, as AVX2 lacks bfloat16 convolutions); set the family's precision: float32, or run on a CPU "
        "with AVX-512"
    )
    assert not (project / "models/airbench.keras").exists()
    assert not (project / "metrics/train/airbench").exists()


@pytest.mark.slow  # a stage in a process of its own
def test_a_stage_prints_no_tensorflow_start_up_banner_and_every_other_line_of_its_stderr(project):
    # TensorFlow 2.21 logs absl's notice and "oneDNN custom operations are on" twice on import,
    # whatever TF_CPP_MIN_LOG_LEVEL says: twice per stage in every log of make run.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ran = subprocess.run(
        [sys.executable, "-m", "stages.train", "mlp"], cwd=project, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert "oneDNN custom operations" not in ran.stderr + ran.stdout
    assert "absl::InitializeLog" not in ran.stderr + ran.stdout
    assert "mlp: " in ran.stdout  # the stage's own line


def test_the_banner_filter_keeps_every_other_line_native_code_writes(capfd):
    with banner_filtered():
        os.write(2, b"kept: a real warning\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796316344.264031    2147 port.cc:153] oneDNN custom operations are on. You may\n")
        os.write(2, b"also kept\n")
    assert capfd.readouterr().err == "kept: a real warning\nalso kept\n"


def test_a_process_whose_onednn_differs_from_train_onednn_is_refused_in_one_line_naming_the_switch():
    from fmnist.all_params import shipped_params

    on = runtime.onednn_on()
    cfg = {**shipped_params()["train"], "onednn": not on}
    with pytest.raises(ParamsError) as err:
        runtime.configure(cfg)
    want = str(not on).lower()
    assert str(err.value) == (
        f"train.onednn is {want} but this process runs with oneDNN {'on' if on else 'off'}: TensorFlow reads it "
        f"as it loads; run the stage as dvc.yaml does, with TF_ENABLE_ONEDNN_OPTS={want}"
    )
