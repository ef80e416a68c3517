"""Fault injection, files: a damaged file a stage reads, and a disk that fills up while writing."""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fmnist import predict
from fmnist.utils.errors import run_stage
from stages import compare, evaluate, export, preprocess, train
from tests.conftest import TINY, synthetic_files, write_gz_dir, write_params

MLP = {"mlp": TINY["mlp"]}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A project whose every stage ran once, on the tiny mlp alone (shared, so copied before use)."""
    root = tmp_path_factory.mktemp("made")
    write_gz_dir(root / "data/raw", synthetic_files())
    write_params(root, train={"epochs": 2, "batch_size": 32})  # two rows per curve, so a cut one lacks a row
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["families"] = MLP  # the mlp alone: the other families' blocks go
    params["evaluate"] = {key: value for key, value in params["evaluate"].items() if key not in TINY}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = os.getcwd()
    os.chdir(root)
    try:
        for stage, args in [(preprocess, []), (train, ["mlp"]), (evaluate, ["mlp"]), (compare, [])]:
            assert run_stage(stage.main, args) == 0
        Image.fromarray(np.pad(np.full((20, 12), 200, np.uint8), ((4, 4), (8, 8)))).save(root / "shirt.png")
    finally:
        os.chdir(old)
    return root


@pytest.fixture
def project(made, tmp_path, monkeypatch):
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files(project: Path) -> dict[str, bytes]:
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: min(100, len(data) // 2)])


# (the file damaged, the command that reads it, the command that makes it again)
READERS = [
    ("data/processed/meta.json", (train, ["mlp"]), "dvc repro preprocess"),
    ("data/processed/train.npz", (train, ["mlp"]), "dvc repro preprocess"),
    ("data/processed/test.npz", (evaluate, ["mlp"]), "dvc repro preprocess"),
    ("data/processed/meta.json", (export, ["mlp"]), "dvc repro preprocess"),
    ("data/processed/meta.json", (predict, ["shirt.png", "--family", "mlp"]), "dvc repro preprocess"),
    ("models/mlp.keras", (evaluate, ["mlp"]), "dvc repro train@mlp"),
    ("models/mlp.keras", (export, ["mlp"]), "dvc repro train@mlp"),
    ("models/mlp.keras", (predict, ["shirt.png", "--family", "mlp"]), "dvc repro train@mlp"),
    ("metrics/train/mlp/summary.json", (compare, []), "dvc repro train@mlp"),
    ("metrics/train/mlp/plots/metrics/train/loss.tsv", (compare, []), "dvc repro train@mlp"),
    ("metrics/evaluate/mlp/scores.json", (compare, []), "dvc repro evaluate@mlp"),
    ("metrics/compare/metrics.json", (predict, ["shirt.png"]), "dvc repro compare"),
]


@pytest.mark.parametrize(("damaged", "reader", "remedy"), READERS, ids=[f"{r[0]}-{r[1][0].__name__}" for r in READERS])
@pytest.mark.parametrize("damage", ["cut", "emptied", "other-json"])
def test_a_damaged_file_a_stage_reads_is_one_line_naming_it_and_the_command_that_makes_it_again(
    project, capsys, damaged, reader, remedy, damage
):
    path = project / damaged
    if damage == "cut":
        cut(path)  # as a full disk or a killed copy leaves it
    elif damage == "emptied":
        path.write_bytes(b"")
    else:
        path.write_text('{"a": 1}\n' if path.suffix == ".json" else "step\tx\n0\t1\n")  # parses, but is not it
    before = files(project)
    module, args = reader
    assert run_stage(module.main, args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {damaged} is damaged (")
    assert err.endswith(f"); make it again with '{remedy}'\n")
    assert files(project) == before  # nothing written, nothing left behind


@pytest.mark.parametrize(
    ("missing", "reader", "line"),
    [
        (
            "metrics/evaluate/mlp/scores.json",
            (compare, []),
            "error: metrics/evaluate/mlp/scores.json is missing; make it with 'dvc repro evaluate@mlp' "
            "(or fetch it with 'dvc pull')",
        ),
        (
            "models/mlp.keras",
            (evaluate, ["mlp"]),
            "error: models/mlp.keras is missing; make it with 'dvc repro train@mlp' (or fetch it with 'dvc pull')",
        ),
        (
            "models/mlp.keras",
            (export, ["mlp"]),
            "error: models/mlp.keras is missing; make it with 'dvc repro train@mlp' (or fetch it with 'dvc pull')",
        ),
        (
            "metrics/compare/metrics.json",
            (predict, ["shirt.png"]),
            "error: metrics/compare/metrics.json does not exist, so there is no best family yet; run 'make run' "
            "or name --family",
        ),
        (
            "data/processed/meta.json",
            (predict, ["shirt.png", "--family", "mlp"]),
            "error: data/processed/meta.json is missing; make it with 'dvc repro preprocess' (or fetch it with "
            "'dvc pull')",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "/" in v and not v.startswith("error") else "",
)
def test_a_file_another_stage_makes_that_is_missing_names_the_command_that_makes_it(
    project, capsys, missing, reader, line
):
    (project / missing).unlink()
    before = files(project)
    module, args = reader
    assert run_stage(module.main, args) == 1
    out, err = capsys.readouterr()
    assert err == line + "\n"
    assert out == ""
    assert files(project) == before  # nothing written


def full_disk_on(monkeypatch, name: str, code: int = errno.ENOSPC) -> None:
    """Make opening a file named ``name`` for writing fail as a full disk does (or a full quota,
    ``EDQUOT``), with no file name."""
    real_open = io.open

    def full(file, mode="r", *args, **kwargs):
        written = Path(file).name if isinstance(file, (str, os.PathLike)) else ""
        if (written == name or written.startswith(f".{name}.")) and set(mode) & set("wax+"):  # or its temporary
            raise OSError(code, os.strerror(code))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full)  # what pathlib writes with
    monkeypatch.setattr(builtins, "open", full)  # what dvclive, pandas and zipfile write with


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system takes root")
def test_training_onto_a_full_file_system_names_the_model_and_leaves_nothing(project, capsys):
    models = project / "models"
    shutil.rmtree(models)
    models.mkdir()
    before = files(project)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(models)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        assert run_stage(train.main, ["mlp"]) == 1
        assert capsys.readouterr().err == (
            "error: cannot write models/mlp.keras: the disk is full (No space left on device); "
            "free some space on it and rerun\n"
        )
        assert files(project) == before  # no model, no curves, no temporary file
    finally:
        subprocess.run(["umount", str(models)], check=True)


@pytest.mark.parametrize(
    ("stage", "args", "name", "written"),
    [
        (train, ["mlp"], "metrics.json", "metrics/train/mlp"),  # dvclive writes it, naming no file
        (compare, [], "metrics.json", "metrics/compare/metrics.json"),
        (evaluate, ["mlp"], "predictions.csv", "metrics/evaluate/mlp/predictions.csv"),
    ],
    ids=["train", "compare", "evaluate"],
)
def test_a_full_disk_names_the_output_it_could_not_write_and_leaves_nothing_half_written(
    project, monkeypatch, capsys, stage, args, name, written
):
    before = files(project)
    full_disk_on(monkeypatch, name)
    assert run_stage(stage.main, args) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {written}: the disk is full (No space left on device); free some space on it and rerun\n"
    )
    monkeypatch.undo()
    assert files(project) == before


@pytest.mark.parametrize(("stage", "args", "name", "written"), [(train, ["mlp"], "mlp.keras", "models/mlp.keras")])
def test_a_full_quota_is_named_as_a_full_disk_is(project, monkeypatch, capsys, stage, args, name, written):
    before = files(project)
    full_disk_on(monkeypatch, name, errno.EDQUOT)
    assert run_stage(stage.main, args) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {written}: the disk is full (Disk quota exceeded); free some space on it and rerun\n"
    )
    monkeypatch.undo()
    assert files(project) == before


def test_a_full_disk_outside_the_atomic_writers_is_still_named(capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    assert run_stage(main, []) == 1
    assert capsys.readouterr().err == (
        "error: cannot write a file: the disk is full (No space left on device); free some space on it and rerun\n"
    )
