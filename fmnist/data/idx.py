"""Fashion-MNIST's files, its classes, and the IDX format its files are stored in."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from fmnist.utils.errors import DataError

# (images, labels) of each published split; their SHA-256s are pinned in params.yaml (download.sha256).
# Where download writes the four files, gzipped, and preprocess reads them.
RAW_DIR = Path("data/raw")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILE_NAMES = tuple(name for pair in SPLIT_FILES.values() for name in pair)
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SHAPE = (28, 28)

# The largest real file is 47 MB decompressed; anything far bigger is not Fashion-MNIST.
MAX_DECOMPRESSED_BYTES = 64 * 2**20

# IDX type codes (http://yann.lecun.com/exdb/mnist/), all big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def gunzip(data: bytes, name: str, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress one gzip member, refusing truncated streams and bodies over ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as err:
        raise DataError(f"{name} is not valid gzip data ({err})") from None
    if len(out) > limit:
        raise DataError(f"{name} decompresses to more than {limit} bytes; not a Fashion-MNIST file")
    if not inflater.eof:
        raise DataError(f"{name} is a truncated gzip stream")
    return out


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes into an array, checking the magic number, type code and exact length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name} is not an IDX file: bad magic number {data[:4].hex() or 'empty'}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{name} has an unsupported IDX type 0x{code:02x} or {ndim} dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated inside its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{name} holds {len(data)} bytes but its header {dims} implies {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def check_pair(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    """Check that images and labels form a Fashion-MNIST split."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{name} images have shape {images.shape} {images.dtype}; expected (N, 28, 28) uint8")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{name} labels have shape {labels.shape} {labels.dtype}; expected (N,) uint8")
    if len(images) != len(labels):
        raise DataError(f"{name} has {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataError(f"{name} has label {labels.max()}; expected 0-{len(CLASS_NAMES) - 1}")


def read_idx_gz(path: Path) -> tuple[np.ndarray, str]:
    """Read a gzipped IDX file; return the array and the SHA-256 of its decompressed bytes."""
    try:
        compressed = Path(path).read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}; run 'dvc repro download'") from None
    data = gunzip(compressed, str(path))
    return parse_idx(data, str(path)), hashlib.sha256(data).hexdigest()
