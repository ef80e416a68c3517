"""The benchmark's arithmetic and preconditions (its timings are measured by running it, never in a test)."""

import json
import subprocess

import keras
import numpy as np
import pytest

from benchmarks import bench
from benchmarks.bench import row, side_by_side
from benchmarks.seed_ensemble import averaged
from fmnist.all_params import validate_all
from fmnist.config.params import family_config
from fmnist.docs import benchmark_table
from fmnist.models.cost import training_flops_per_image
from fmnist.quick_profile import QUICK_PROFILE, quick_profile_command
from tests.conftest import ROOT, committed, set_override, shipped_raw


def test_training_flops_count_conv_and_dense_multiply_adds_three_times():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    forward = 2 * 28 * 28 * 3 * 3 * 1 * 4 + 2 * (14 * 14 * 4) * 10
    assert training_flops_per_image(keras.Model(inputs, outputs)) == 3 * forward


def test_averaging_two_seeds_models_corrects_what_each_gets_wrong_alone():
    # Each model is right on one image, confidently, and wrong on the other by a little.
    first = np.array([[0.9, 0.1], [0.6, 0.4]])
    second = np.array([[0.4, 0.6], [0.1, 0.9]])
    labels = {"val": np.array([0, 1]), "test": np.array([0, 1])}
    rows = averaged([{"val": first, "test": first}, {"val": second, "test": second}], labels)
    assert rows == [
        {"models": 1, "subsets": 2, "val": 0.5, "test": 0.5},
        {"models": 2, "subsets": 1, "val": 1.0, "test": 1.0},
    ]


def test_a_row_without_a_measurement_is_not_a_verdict():
    assert row("x", "<= 3 s", None, "run with --full", None)["verdict"] == "not measured"
    assert row("x", "<= 3 s", 4.0, "4.0 s", False)["verdict"] == "NOT met"
    assert row("x", "<= 3 s", 1.0, "1.0 s", True)["verdict"] == "met"


def test_the_quick_profile_trains_every_family_for_two_epochs_and_the_readme_shows_it():
    params = shipped_raw()
    for key, value in (arg.split("=") for arg in QUICK_PROFILE if arg != "-S"):
        assert set_override(params, key, value), f"-S {key}: params.yaml lacks the key, so dvc would refuse it"
    params = validate_all(params)
    families = list(params["families"])
    assert {family: family_config(params, family)["epochs"] for family in families} == dict.fromkeys(families, 2)
    regenerate = "the quick profile changed with the families; regenerate it: python -m fmnist.docs"
    for page in ("docs/performance.md", "README.md"):
        assert quick_profile_command() in (ROOT / page).read_text(), f"{page}: {regenerate}"


def test_side_by_side_alternates_who_goes_first_and_drops_the_tracing_round(monkeypatch):
    # Each fake run returns its next epoch's seconds; the first of each traces and is not timed.
    monkeypatch.setattr(bench, "epoch_seconds", lambda fit: fit())
    order: list[str] = []

    def run(name: str, seconds: list[float]):
        def fit() -> float:
            order.append(name)
            return seconds.pop(0)

        return fit

    medians = side_by_side({"ours": run("ours", [100, 1, 2, 9]), "plain": run("plain", [100, 4, 3, 5])}, rounds=3)
    assert order == ["plain", "ours", "ours", "plain", "plain", "ours", "ours", "plain"]
    assert medians == {"ours": 2.0, "plain": 4.0}


@pytest.mark.e2e  # git init, dvc init and dvc repro in a temporary repository
def test_the_benchmark_refuses_a_project_whose_pipeline_is_not_built(tmp_path):
    # Its no-op row would otherwise time a whole repro, and its throughput rows find no data.
    env = bench.venv_env()
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('out.txt', 'w').write('x')\"\n    outs: [out.txt]\n"
    )
    with pytest.raises(SystemExit, match=r"^error: the pipeline in .* is not up to date .*run 'make run' first"):
        bench.require_up_to_date(tmp_path)
    subprocess.run(["dvc", "repro", "-q"], cwd=tmp_path, env=env, check=True)
    bench.require_up_to_date(tmp_path)


def test_the_performance_page_shows_the_committed_benchmark():
    page = (ROOT / "docs/performance.md").read_text()
    start, end = "<!-- benchmark:start -->\n", "\n<!-- benchmark:end -->"
    shown = page[page.index(start) + len(start) : page.index(end)]
    rows = json.loads(committed("metrics/benchmark.json"))["rows"]
    assert shown == benchmark_table(rows), "regenerate it: python -m fmnist.docs"


def test_a_trial_trains_with_the_changed_keys_and_reports_validation_only(project, capsys, monkeypatch):
    from benchmarks import trial
    from fmnist.data.splits import load_split

    def no_test_split(directory, name):
        assert name != "test", "a trial read the test split"
        return load_split(directory, name)

    monkeypatch.setattr(trial, "load_split", no_test_split)  # the name trial bound at import, which it calls
    trial.main(["cnn", '{"epochs": 2, "test_curve": true}'])
    record = json.loads(capsys.readouterr().out.splitlines()[-1])  # after Keras' lines per epoch
    assert record["changes"] == {"epochs": 2, "test_curve": True}
    assert len(record["val_accuracy_per_epoch"]) == 2
    assert sorted(record["val_accuracy_by_views"]) == ["flip", "flip_shifts", "none"]
    assert all(0 <= a <= 1 for a in record["val_accuracy_by_views"].values())


def test_the_confidence_benchmarks_noise_goes_through_predicts_preparation_as_a_users_picture():
    import numpy as np

    from benchmarks.confidence import noise

    rng = np.random.default_rng(0)
    for kind in ("pixels", "smooth"):
        prepared = noise(kind, rng)
        assert prepared.shape == (28, 28)
        assert prepared.dtype == np.uint8
        assert prepared.max() > 0  # something stands out: a picture predict classifies, not "no object found"
