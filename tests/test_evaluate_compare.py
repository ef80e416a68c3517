"""The evaluate and compare stages on tiny models trained on synthetic data."""

import contextlib
import json
import os
import re
import shutil

import numpy as np
import pytest

from fmnist.data.idx import CLASS_NAMES
from fmnist.evaluation import comparison
from fmnist.utils.errors import run_stage
from stages import compare, evaluate, preprocess, train
from tests.conftest import ROOT, TINY, committed, synthetic_files, write_gz_dir, write_params

EVALUATE = {"batch_size": 64, "mistakes": 6, "samples": 4}


@contextlib.contextmanager
def cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every tiny family trained once on synthetic data (shared, so copied before use)."""
    root = tmp_path_factory.mktemp("trained")
    write_gz_dir(root / "data/raw", synthetic_files())
    write_params(root, train={"epochs": 2, "batch_size": 32}, families=TINY, evaluate=EVALUATE)
    with cwd(root):
        assert run_stage(preprocess.main, []) == 0
        for family in TINY:
            assert run_stage(train.main, [family]) == 0
    return root


@pytest.fixture
def project(trained, tmp_path, monkeypatch):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_evaluate_records_metrics_that_match_the_model(project):
    from fmnist.data.splits import load_split
    from fmnist.models.saving import load_model

    assert run_stage(evaluate.main, ["cnn"]) == 0
    metrics = json.loads((project / "metrics/evaluate/cnn/scores.json").read_text())
    assert json.loads((project / "metrics/evaluate/cnn/metrics.json").read_text()) == {
        "cnn": metrics["test"]["accuracy"]
    }

    x, y = load_split(project / "data/processed", "test")
    probs = load_model(project / "models/cnn.keras").predict(x, verbose=0)
    assert metrics["test"]["accuracy"] == pytest.approx(float(np.mean(probs.argmax(axis=1) == y)))
    assert [row["class"] for row in metrics["per_class"]] == list(CLASS_NAMES)
    assert sum(row["support"] for row in metrics["per_class"]) == len(y)
    assert np.trace(metrics["confusion_matrix"]["counts"]) == round(metrics["test"]["accuracy"] * len(y))
    # No timing: a figure that changes on every run has no place in an output DVC tracks.
    assert sorted(p.name for p in (project / "metrics/evaluate/cnn").iterdir()) == [
        "metrics.json",
        "predictions.csv",
        "probabilities.npz",
        "scores.json",
    ]
    # What compare's ensemble averages: the model's probabilities of every validation and test image.
    x_val, _ = load_split(project / "data/processed", "val")
    with np.load(project / "metrics/evaluate/cnn/probabilities.npz") as saved:
        np.testing.assert_allclose(saved["test"], probs, atol=1e-5)
        np.testing.assert_allclose(
            saved["val"], load_model(project / "models/cnn.keras").predict(x_val, verbose=0), atol=1e-5
        )

    rows = (project / "metrics/evaluate/cnn/predictions.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert len(rows) == len(y) + 1
    assert sum(a == p for a, p in (row.rsplit(",", 1) for row in rows[1:])) == np.trace(
        metrics["confusion_matrix"]["counts"]
    )
    pngs = sorted(p.name for p in (project / "plots/evaluate/cnn").iterdir())
    assert pngs == ["confusion.png", "mistakes.png", "predictions.png"]


def test_evaluate_averages_a_familys_own_views_and_scores_every_choice_on_the_validation_split(project):
    from fmnist.data.splits import load_split
    from fmnist.models.saving import load_model

    write_params(
        project, train={"epochs": 2, "batch_size": 32}, families=TINY, evaluate={**EVALUATE, "cnn": {"views": "flip"}}
    )
    assert run_stage(evaluate.main, ["cnn"]) == 0
    assert run_stage(evaluate.main, ["mlp"]) == 0
    cnn = json.loads((project / "metrics/evaluate/cnn/scores.json").read_text())
    mlp = json.loads((project / "metrics/evaluate/mlp/scores.json").read_text())

    model = load_model(project / "models/cnn.keras")
    x, y = load_split(project / "data/processed", "test")
    plain, mirrored = model.predict(x, verbose=0), model.predict(x[:, :, ::-1], verbose=0)
    assert cnn["views"]["name"] == "flip"
    assert cnn["views"]["forward_passes"] == 2
    assert cnn["test"]["accuracy"] == pytest.approx(float(np.mean((plain + mirrored).argmax(axis=1) == y)))
    assert cnn["views"]["test_accuracy_one_view"] == pytest.approx(float(np.mean(plain.argmax(axis=1) == y)))
    x_val, y_val = load_split(project / "data/processed", "val")
    assert cnn["views"]["val_accuracy"]["none"] == pytest.approx(
        float(np.mean(model.predict(x_val, verbose=0).argmax(axis=1) == y_val))
    )
    assert sorted(cnn["views"]["val_accuracy"]) == ["flip", "flip_shifts", "none"]
    assert mlp["views"]["name"] == "none"
    assert mlp["views"]["forward_passes"] == 1
    assert mlp["views"]["test_accuracy_one_view"] == mlp["test"]["accuracy"]


def test_predict_answers_every_test_image_as_evaluate_scored_it_through_airbenchs_ten_views(project):
    # airbench is evaluated with flip_shifts (10 passes, averaged); predict must use the same views.
    from fmnist import predict
    from fmnist.all_params import load_params

    write_params(
        project,
        train={"epochs": 2, "batch_size": 32},
        families=TINY,
        evaluate={**EVALUATE, "airbench": {"views": "flip_shifts"}},
    )
    assert run_stage(evaluate.main, ["airbench"]) == 0
    metrics = json.loads((project / "metrics/evaluate/airbench/scores.json").read_text())
    assert metrics["views"]["forward_passes"] == 10
    with np.load(project / "data/processed/test.npz") as npz:
        images = npz["images"]
    with (project / "metrics/evaluate/airbench/predictions.csv").open() as f:
        evaluated = [line.split(",")[1].strip() for line in f.readlines()[1:]]
    probs = predict.classify(images, "airbench", load_params())
    assert [CLASS_NAMES[i] for i in probs.argmax(axis=1)] == evaluated
    # The views matter here: one pass alone gives other probabilities, so agreeing means something.
    one_view = predict.classify(images, "airbench", {**load_params(), "evaluate": {**EVALUATE, "views": "none"}})
    assert not np.allclose(one_view, probs)


def test_evaluate_reruns_to_identical_bytes(project):
    outputs = [
        "metrics/evaluate/mlp/metrics.json",
        "metrics/evaluate/mlp/scores.json",
        "metrics/evaluate/mlp/predictions.csv",
        "metrics/evaluate/mlp/probabilities.npz",
        "plots/evaluate/mlp/confusion.png",
        "plots/evaluate/mlp/mistakes.png",
        "plots/evaluate/mlp/predictions.png",
    ]
    assert run_stage(evaluate.main, ["mlp"]) == 0
    first = {name: (project / name).read_bytes() for name in outputs}
    assert run_stage(evaluate.main, ["mlp"]) == 0
    assert {name: (project / name).read_bytes() for name in outputs} == first


def test_evaluate_refuses_a_model_of_another_family(project, capsys):
    shutil.copy(project / "models/dnn.keras", project / "models/mlp.keras")
    assert run_stage(evaluate.main, ["mlp"]) == 1
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(
        r"error: models/mlp\.keras does not match family 'mlp' as params\.yaml defines it \(\d+ parameters, "
        r"expected \d+\); retrain it with 'dvc repro train@mlp'",
        err,
    ), err
    assert len(err.splitlines()) == 1
    assert not (project / "metrics/evaluate").exists()
    assert not (project / "plots/evaluate").exists()


def test_evaluate_refuses_a_file_that_is_not_a_keras_model(project, capsys):
    (project / "models/mlp.keras").write_bytes(b"not a zip")
    assert run_stage(evaluate.main, ["mlp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: models/mlp.keras is damaged (")
    assert err.endswith("); make it again with 'dvc repro train@mlp'\n")
    assert err.count("\n") == 1
    assert not (project / "metrics/evaluate").exists()


def test_evaluate_validates_its_params_first(project, capsys):
    write_params(project, families=TINY, evaluate={**EVALUATE, "mistakes": 0})
    assert run_stage(evaluate.main, ["mlp"]) == 2
    assert "evaluate.mistakes = 0 is not allowed; expected an integer >= 1 and <= 200" in capsys.readouterr().err


@pytest.mark.slow  # evaluates four families and compares twice
def test_compare_ranks_every_family_and_draws_the_curves(project):
    for family in TINY:
        assert run_stage(evaluate.main, [family]) == 0
    assert run_stage(compare.main, []) == 0

    comparison = json.loads((project / "metrics/compare/comparison.json").read_text())
    rows = {row["family"]: row for row in comparison["families"]}
    assert set(rows) == set(TINY)
    for family in TINY:
        evaluated = json.loads((project / f"metrics/evaluate/{family}/scores.json").read_text())
        assert rows[family]["test_accuracy"] == evaluated["test"]["accuracy"]
        assert rows[family]["macro_f1"] == evaluated["macro"]["f1"]
    best = max(rows.values(), key=lambda r: (r["test_accuracy"], -r["params"]))
    assert comparison["best"]["family"] == best["family"]
    mixed = comparison["ensemble"]
    assert json.loads((project / "metrics/compare/metrics.json").read_text()) == {"best": best["family"]}
    # The ensemble row, recomputed from what evaluate wrote: its members' weighted probabilities.
    from fmnist.data.splits import load_split

    _, y_test = load_split(project / "data/processed", "test")
    saved = {f: np.load(project / f"metrics/evaluate/{f}/probabilities.npz")["test"] for f in mixed["members"]}
    weighted = sum(n * saved[f].astype(np.float64) for f, n in mixed["members"].items())
    assert mixed["test_accuracy"] == float(np.mean(weighted.argmax(axis=1) == y_test))
    assert set(mixed["members"]) <= set(TINY)
    assert mixed["forward_passes"] == sum(rows[f]["forward_passes"] for f in mixed["members"])
    assert mixed["inference_flops_per_image"] == sum(
        rows[f]["training_flops_per_image"] // 3 * rows[f]["forward_passes"] for f in mixed["members"]
    )
    assert {ref["source"] for ref in comparison["references"]} == {"seed 001", "seed 003", "seed 004"}

    table = (project / "metrics/compare/comparison.md").read_text()
    assert f"**{best['family']}**" in table
    assert re.search(r"\| seed 001: AlexNet, 10 epochs \(reported\) +\| +93\.14% \|", table)

    curves = (project / "metrics/compare/curves.csv").read_text().splitlines()
    assert curves[0] == "family,split,epoch,loss,accuracy"
    # 4 families x (train, val) x 2 epochs
    assert len(curves) == 1 + len(TINY) * 2 * 2
    assert sorted(p.name for p in (project / "plots/compare").iterdir()) == ["accuracy.png", "learning_curves.png"]
    summary = json.loads((project / "metrics/train/cnn/summary.json").read_text())
    assert rows["cnn"]["training_flops"] == summary["training_flops_per_image"] * summary["train_images"] * 2

    # Every file compare writes is git-tracked: a rerun must give the same bytes, or git status shows it.
    written = sorted(p for d in ("metrics/compare", "plots/compare") for p in (project / d).iterdir())
    first = [p.read_bytes() for p in written]
    assert run_stage(compare.main, []) == 0
    assert [p.read_bytes() for p in written] == first


def test_compare_names_the_missing_results(project, capsys):
    assert run_stage(compare.main, []) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: metrics/evaluate/mlp/scores.json is missing; make it with 'dvc repro evaluate@mlp' "
        "(or fetch it with 'dvc pull')\n"
    )
    assert not (project / "metrics/compare").exists()


def test_markdown_table_marks_the_best_and_lists_the_references():
    rows = [
        {
            "family": name,
            "test_accuracy": acc,
            "macro_f1": acc,
            "top2_accuracy": 0.99,
            "views": "flip",
            "forward_passes": 2,
            "params": params,
            "epochs": 3,
            "training_flops_per_image": 2_000_000,
            "training_flops": 2_000_000 * 600 * 3,
            "inference_flops_per_image": 2_000_000 // 3 * 2,
        }
        for name, acc, params in (("small", 0.9, 10), ("large", 0.9, 1000), ("weak", 0.5, 1))
    ]
    best = comparison.best_family(rows)
    assert best["family"] == "small"  # tied on accuracy: the smaller wins
    mixed = {
        "members": {"small": 1, "large": 2},
        "test_accuracy": 0.95,
        "macro_f1": 0.95,
        "top2_accuracy": 0.99,
        "forward_passes": 4,
        "params": 1010,
        "inference_flops_per_image": 2_666_666,
    }
    lines = comparison.markdown_table(rows, best, mixed).splitlines()
    assert lines[0].startswith("| model")
    assert len(lines) == 2 + len(rows) + 1 + len(comparison.REFERENCES)
    assert lines[2].startswith("| **small**")
    # The ensemble's own row, after the families: heaviest member first, its passes and its cost.
    assert lines[2 + len(rows)].startswith("| ensemble: 2/3 large + 1/3 small ")
    assert "members' (4)" in lines[2 + len(rows)]
    assert lines[2 + len(rows)].rstrip(" |").endswith("2.7")
    assert len({len(line) for line in lines}) == 1  # columns aligned for a terminal


def test_readme_shows_the_committed_comparison():
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- comparison:start -->\n", "<!-- comparison:end -->"
    shown = readme[readme.index(start) + len(start) : readme.index(end)]
    assert shown == committed("metrics/compare/comparison.md"), "regenerate it: python -m fmnist.docs"
