import gzip
import hashlib
import json

import numpy as np
import pytest

from fmnist.data.idx import check_pair, gunzip, parse_idx, read_idx_gz
from fmnist.data.splits import load_split, save_npz
from fmnist.utils.errors import DataError
from tests.conftest import idx_bytes


def test_idx_round_trip():
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    parsed = parse_idx(idx_bytes(images), "x")
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(np.arange(5, dtype=np.uint8)), "y"), np.arange(5))


def test_parse_idx_reads_big_endian_types():
    header = bytes([0, 0, 0x0C, 1]) + np.asarray([3], ">u4").tobytes()
    parsed = parse_idx(header + np.asarray([1, -2, 70000], ">i4").tobytes(), "ints")
    assert parsed.tolist() == [1, -2, 70000]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bad magic number"),
        (b"\x01\x00\x08\x01" + bytes(8), "bad magic number"),
        (b"\x00\x00\x07\x01" + bytes(8), "unsupported IDX type 0x07"),
        (b"\x00\x00\x08\x03" + bytes(4), "truncated inside its IDX header"),
        (idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-1], "implies"),
        (idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"\x00", "implies"),
    ],
)
def test_parse_idx_rejects_corrupt_files(data, message):
    with pytest.raises(DataError, match=message):
        parse_idx(data, "f")


def test_gunzip_rejects_truncated_non_gzip_and_oversized():
    compressed = gzip.compress(bytes(1000))
    assert gunzip(compressed, "f") == bytes(1000)
    with pytest.raises(DataError, match=r"^f is a truncated gzip stream$"):
        gunzip(compressed[: len(compressed) // 2], "f")
    with pytest.raises(DataError, match=r"^f is not valid gzip data \(Error -3 while decompressing data"):
        gunzip(b"<html>hello</html>", "f")
    with pytest.raises(DataError, match=r"^f decompresses to more than 999 bytes; not a Fashion-MNIST file$"):
        gunzip(compressed, "f", limit=999)


def test_read_idx_gz_reports_hash_and_missing_file(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8))
    (tmp_path / "a.gz").write_bytes(gzip.compress(data))
    array, digest = read_idx_gz(tmp_path / "a.gz")
    assert array.tolist() == list(range(10))
    assert digest == hashlib.sha256(data).hexdigest()
    with pytest.raises(DataError, match=r"cannot read .*missing\.gz"):
        read_idx_gz(tmp_path / "missing.gz")


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8), "3 images but 4 labels"),
        (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8), "expected \\(N, 28, 28\\)"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8), "label 10"),
    ],
)
def test_check_pair(images, labels, message):
    with pytest.raises(DataError, match=message):
        check_pair(images, labels, "train")


def test_save_npz_is_byte_stable_and_load_split_normalises(tmp_path):
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 0, 0] = 255
    labels = np.array([3, 4], np.uint8)
    save_npz(tmp_path / "a.npz", images=images, labels=labels)
    save_npz(tmp_path / "b.npz", images=images, labels=labels)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()

    (tmp_path / "a.npz").rename(tmp_path / "train.npz")
    (tmp_path / "meta.json").write_text(json.dumps({"normalization": {"mean": 0.5, "std": 0.25}}))
    x, y = load_split(tmp_path, "train")
    assert x.shape == (2, 28, 28, 1)
    assert x.dtype == np.float32
    assert y.tolist() == [3, 4]
    assert x[0, 0, 0, 0] == pytest.approx(2.0)  # (1 - 0.5) / 0.25
    assert x[0, 0, 1, 0] == pytest.approx(-2.0)  # (0 - 0.5) / 0.25
