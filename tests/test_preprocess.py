import json

import numpy as np
import pytest

from fmnist.data import splits
from fmnist.data.idx import CLASS_NAMES
from fmnist.data.splits import load_split
from fmnist.utils.errors import DataError, run_stage
from stages import preprocess
from tests.conftest import write_gz_dir, write_params


def test_stratified_sample_keeps_class_shares():
    labels = np.repeat(np.arange(10), 600)
    picked = splits.stratified_sample(labels, 600, np.random.default_rng(0))
    assert np.bincount(labels[picked]).tolist() == [60] * 10
    assert len(np.unique(picked)) == 600


def test_stratified_sample_hands_out_remainders_exactly():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    picked = splits.stratified_sample(labels, 4, np.random.default_rng(0))
    assert len(picked) == 4
    assert np.bincount(labels[picked], minlength=3).tolist() == [2, 1, 1]


def test_split_indices_is_seeded_disjoint_and_limited():
    labels = np.repeat(np.arange(10), 100)
    train, val = splits.split_indices(labels, 0.1, 0, seed=3)
    assert len(val) == 100
    assert len(train) == 900
    assert not set(train) & set(val)
    again, _ = splits.split_indices(labels, 0.1, 0, seed=3)
    other, _ = splits.split_indices(labels, 0.1, 0, seed=4)
    assert np.array_equal(train, again)
    assert not np.array_equal(train, other)
    small, _ = splits.split_indices(labels, 0.1, 50, seed=3)
    assert np.bincount(labels[small]).tolist() == [5] * 10
    assert set(small) <= set(train)


def test_split_indices_refuses_degenerate_sizes():
    labels = np.repeat(np.arange(10), 10)
    with pytest.raises(DataError, match="leaves 0 of 100"):
        splits.split_indices(labels, 0.001, 0, seed=0)
    with pytest.raises(DataError, match="train_limit = 5 is below one image per class"):
        splits.split_indices(labels, 0.1, 5, seed=0)


def test_standardize_uses_training_statistics():
    images = np.full((4, 28, 28), 51, np.uint8)
    images[:2] = 153
    norm = splits.normalization(images, "standardize")
    assert norm["mean"] == pytest.approx(0.4)
    assert norm["std"] == pytest.approx(0.2)
    assert splits.normalization(images, "scale") == {"method": "scale", "mean": 0.0, "std": 1.0}


@pytest.mark.parametrize("method", ["scale", "standardize"])
def test_main_writes_splits_meta_and_samples(tmp_path, monkeypatch, synthetic, method):
    monkeypatch.chdir(tmp_path)
    write_gz_dir(tmp_path / "data/raw", synthetic)
    write_params(tmp_path, preprocess={"val_fraction": 0.2, "normalization": method})
    assert run_stage(preprocess.main, []) == 0

    meta = json.loads((tmp_path / "data/processed/meta.json").read_text())
    assert {k: v["shape"][0] for k, v in meta["splits"].items()} == {"train": 240, "val": 60, "test": 100}
    assert set(meta["splits"]["val"]["class_counts"].values()) == {6}
    assert (tmp_path / "plots/samples.png").read_bytes()[:4] == b"\x89PNG"
    x, y = load_split(tmp_path / "data/processed", "train")
    assert x.shape == (240, 28, 28, 1)
    assert y.shape == (240,)
    if method == "standardize":
        assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
        assert float(x.std()) == pytest.approx(1.0, abs=1e-4)
    else:
        assert x.min() >= 0.0
        assert x.max() <= 1.0

    first = {p.name: p.read_bytes() for p in (tmp_path / "data/processed").iterdir()}
    png = (tmp_path / "plots/samples.png").read_bytes()
    assert run_stage(preprocess.main, []) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/processed").iterdir()} == first
    assert (tmp_path / "plots/samples.png").read_bytes() == png


def test_main_rejects_mismatched_counts_and_writes_nothing(tmp_path, monkeypatch, synthetic, capsys):
    from tests.conftest import idx_bytes

    monkeypatch.chdir(tmp_path)
    broken = dict(synthetic, **{"t10k-labels-idx1-ubyte": idx_bytes(np.zeros(99, np.uint8))})
    write_gz_dir(tmp_path / "data/raw", broken)
    write_params(tmp_path)
    assert run_stage(preprocess.main, []) == 1
    assert "test has 100 images but 99 labels" in capsys.readouterr().err
    assert not (tmp_path / "data/processed").exists()
    assert not (tmp_path / "plots").exists()


def test_main_refuses_a_valid_idx_file_that_is_not_the_verified_one(tmp_path, monkeypatch, synthetic, capsys):
    from tests.conftest import idx_bytes

    monkeypatch.chdir(tmp_path)
    swapped = dict(synthetic, **{"t10k-labels-idx1-ubyte": idx_bytes(np.zeros(100, np.uint8))})  # parses fine
    write_gz_dir(tmp_path / "data/raw", swapped)
    write_params(tmp_path)
    assert run_stage(preprocess.main, []) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data/raw/t10k-labels-idx1-ubyte.gz is not the file download verified")
    assert err.rstrip().endswith("restore it with 'dvc checkout data/raw' or 'dvc repro --force download'")
    assert not (tmp_path / "data/processed").exists()


def test_class_names_are_the_ten_fashion_classes():
    assert len(CLASS_NAMES) == 10
    assert CLASS_NAMES[0] == "T-shirt/top"
    assert CLASS_NAMES[9] == "Ankle boot"
