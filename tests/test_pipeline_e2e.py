"""The real pipeline, run by DVC in a temporary git repository on synthetic data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, sha256s, synthetic_files, write_gz_dir
from tests.test_training import TINY

pytestmark = pytest.mark.e2e

PROJECT_FILES = ["stages", "dvc.yaml", "params.yaml", ".gitignore"]


def sh(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
        DVC_NO_ANALYTICS="1",
    )
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project whose download sources point at synthetic files, committed."""
    repo = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / name)
    files = synthetic_files()
    mirror = write_gz_dir(tmp_path_factory.mktemp("mirror"), files)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"].update(sources=[str(mirror)], sha256=sha256s(files))
    params["train"].update(epochs=1, batch_size=32)
    params["families"] = TINY
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots")  # the learning-curve template
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "init")
    return repo


def ran_trainings(result: subprocess.CompletedProcess) -> set[str]:
    return {family for family in TINY if f"Running stage 'train@{family}'" in result.stdout}


def test_repro_then_nothing_reruns(repo):
    first = sh(repo, "dvc", "repro")
    assert "Running stage 'download'" in first.stdout
    assert "Running stage 'preprocess'" in first.stdout
    assert ran_trainings(first) == set(TINY)
    assert all(f"Running stage 'evaluate@{family}'" in first.stdout for family in TINY)
    assert "Running stage 'compare'" in first.stdout
    assert (repo / "data/processed/train.npz").exists()
    lock = (repo / "dvc.lock").read_text()

    again = sh(repo, "dvc", "repro")
    assert "Running stage" not in again.stdout
    assert (repo / "dvc.lock").read_text() == lock
    assert "up to date" in sh(repo, "dvc", "status").stdout
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "repro")


def test_train_key_reruns_every_family_and_family_key_only_its_own(repo):
    shared = sh(repo, "dvc", "exp", "run", "-S", "train.activation=tanh")
    assert ran_trainings(shared) == set(TINY)
    assert "Running stage 'preprocess'" not in shared.stdout
    # The workspace now holds the experiment: every family's test figures differ from HEAD's.
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout)
    for family in TINY:
        changes = diff[f"metrics/evaluate/{family}/metrics.json"]
        assert changes["test.accuracy"]["new"] != changes["test.accuracy"]["old"], (family, changes)
        assert changes["test.loss"]["diff"] != 0

    # Hydra's "++" sets a key whether or not the block holds it yet; plain -S refuses a new key.
    own = sh(repo, "dvc", "exp", "run", "-S", "++families.mlp.epochs=2")
    assert ran_trainings(own) == {"mlp"}
    shown = sh(repo, "dvc", "exp", "show", "--csv").stdout
    assert "families.mlp.epochs" in shown
    assert "tanh" in shown
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout")


def test_metrics_show_lists_each_family_and_the_best(repo):
    result = sh(repo, "dvc", "metrics", "show", "--json")
    assert "failed to load" not in result.stderr
    metrics = json.loads(result.stdout)[""]["data"]
    for family in TINY:
        assert 0 <= metrics[f"metrics/evaluate/{family}/metrics.json"]["data"]["test"]["accuracy"] <= 1
    assert metrics["metrics/compare/metrics.json"]["data"]["best"]["family"] in TINY


def test_plots_show_renders_learning_curves_and_confusion_matrices(repo, tmp_path):
    result = sh(repo, "dvc", "plots", "show", "-o", str(tmp_path / "html"))
    assert "failed" not in result.stderr.lower()
    html = (tmp_path / "html/index.html").read_text()
    assert "Accuracy per epoch" in html
    assert "Loss per epoch" in html
    assert html.count("test confusion matrix") == len(TINY)
    images = {p.name for p in (tmp_path / "html/static").iterdir()}
    assert "workspace_plots_compare_learning_curves.png" in images
    assert {f"workspace_plots_evaluate_{family}_confusion.png" for family in TINY} <= images


def test_exp_run_with_bad_value_fails_fast_naming_the_key(repo):
    lock = (repo / "dvc.lock").read_text()
    start = time.monotonic()
    result = sh(repo, "dvc", "exp", "run", "-S", "preprocess.val_fraction=2", check=False)
    assert time.monotonic() - start < 10
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
    assert lines == ["error: params.yaml: preprocess.val_fraction = 2 is not allowed; expected a number > 0 and < 1"]
    assert (repo / "dvc.lock").read_text() == lock
    # DVC removed the failed stage's outputs before running it; git and the cache restore them.
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout")
    assert "up to date" in sh(repo, "dvc", "status").stdout
