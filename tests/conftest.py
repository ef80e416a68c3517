"""Synthetic Fashion-MNIST-shaped data and a local HTTP server, for tests that must not touch the real set."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmnist.config.params import SHIPPED
from fmnist.config.yaml_reader import parse_yaml
from fmnist.data.idx import FILE_NAMES

ROOT = Path(__file__).resolve().parent.parent

# As dvc.yaml's commands do for the stages: TensorFlow reads oneDNN's switch once, as it loads.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(parse_yaml(SHIPPED.read_text())["train"]["onednn"]).lower()


def committed(path: str, repo: Path = ROOT) -> str:
    """A tracked file as committed at HEAD, not as a rerun left it in the working tree.

    Tests hold the docs to the results of record; a ``make run`` on another kind of CPU rewrites
    the results in the working tree (other bits: docs/reproducibility.md) and must not turn them red.
    Outside a git checkout (a source archive), or for a file not yet committed, the file as it is;
    any other failure of git (dubious ownership, a broken repository) fails the test that asked,
    rather than quietly reading the working tree.
    """
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=repo, capture_output=True, text=True)
    if shown.returncode == 0:
        return shown.stdout
    where = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo, capture_output=True, text=True
    )
    if "not a git repository" in where.stderr:
        return (repo / path).read_text()
    listed = subprocess.run(["git", "ls-tree", "HEAD", "--", path], cwd=repo, capture_output=True, text=True)
    if where.returncode == 0 and listed.returncode == 0 and not listed.stdout:
        return (repo / path).read_text()  # not committed yet
    raise RuntimeError(f"git cannot show {path} at HEAD in {repo}: {(shown.stderr or where.stderr).strip()}")


# Every family, small enough to train in a second on the synthetic data. airbench in float32, as
# shipped: bfloat16 convolutions have no oneDNN kernel on a CPU without AVX-512 (bfloat16_convolutions).
TINY = {
    "mlp": {"hidden": [16, 8], "activations": []},
    "dnn": {"hidden": [16, 8], "batch_norm": True},
    "cnn": {"filters": [4, 8], "dense": 8, "batch_norm": True, "augment": True},
    "alexnet": {"filters": [4, 4, 8], "dense": 8, "batch_norm": True, "dropout": 0.5},
    "airbench": {
        "stem": 4,
        "filters": [4, 8],
        "precision": "float32",
        "whiten": False,
        "dirac": False,
        "batch_norm": True,
        "augment": True,
    },
}


@functools.cache
def bfloat16_convolutions() -> str | None:
    """None if oneDNN runs a bfloat16 convolution on this CPU (as capped), else why not, for a skip."""
    code = (
        "import keras, numpy as np; keras.config.set_dtype_policy('mixed_bfloat16'); "
        "m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)]); m.predict(np.ones((1, 8, 8, 1)))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0:
        return None
    return f"oneDNN has no bfloat16 convolution on this CPU ({os.environ.get('ONEDNN_MAX_CPU_ISA', 'uncapped')})"


def set_override(params: dict, key: str, value: str) -> bool:
    """Apply ``dvc exp run -S key=value`` to parsed params; return whether the key was already there
    (DVC refuses a plain ``-S`` for a key params.yaml lacks; ``++`` adds it)."""
    *path, leaf = key.split(".")
    node = params
    for part in path:
        node = node[part]
    existed = leaf in node
    node[leaf] = parse_yaml(value)  # numbers as DVC's -S reads them (5e-4 is a number)
    return existed


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def class_patterns(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 images made like Fashion-MNIST's: a light object on black whose longest side spans the
    28 pixels, centred. Its width (4 to 20 pixels, in steps of 4) and its texture (plain, or
    stripes 2 rows wide) encode the label: features a resize, or a negated JPEG copy, keeps. Like a
    garment, no image is its own mirror."""
    images = np.zeros((len(labels), 28, 28), np.uint8)
    stripes = np.arange(28)[:, None] // 2 % 2 == 1
    for i, label in enumerate(labels):
        width = 4 + 4 * (int(label) // 2)
        left = (28 - width) // 2
        level = rng.integers(170, 256)
        texture = np.where(stripes, level // 3, level) if label % 2 else np.full((28, 1), level)
        shading = np.linspace(0.6, 1.0, width)  # lit from the right: no image is its own mirror
        images[i, :, left : left + width] = texture * shading
    return images


def synthetic_files(n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, bytes]:
    """Decompressed IDX bytes of a small, class-balanced stand-in for the four real files.

    Each class has an object of its own width and texture, so a model can learn from it.
    """
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = class_patterns(labels, rng)
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(images)
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(labels)
    return files


def sha256s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def write_gz_dir(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / f"{name}.gz").write_bytes(gzip.compress(data))
    return directory


@functools.cache
def registry_unreachable() -> str | None:
    """None if pip reaches its package index (as configured here), else why not, for a skip."""
    ask = [sys.executable, "-m", "pip", "index", "versions", "pip", "--disable-pip-version-check"]
    try:
        answer = subprocess.run(ask, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "pip's package index did not answer within 60 s (an offline machine)"
    if answer.returncode != 0:
        return f"pip cannot reach its package index (an offline machine): {answer.stderr.strip()[-200:]}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("network") and (why := registry_unreachable()):
        pytest.skip(why)


@pytest.fixture(scope="session", autouse=True)
def tensorflow_runtime() -> None:
    """Fix TensorFlow's threads before any test runs an op: they cannot change afterwards."""
    from fmnist.all_params import shipped_params
    from fmnist.utils import runtime

    runtime.configure(shipped_params()["train"])


@pytest.fixture(scope="session")
def synthetic() -> dict[str, bytes]:
    files = synthetic_files()
    assert set(files) == set(FILE_NAMES)
    return files


@dataclass
class Route:
    """What the test server answers for one path."""

    body: bytes = b""
    status: int = 200
    delay: float = 0.0  # seconds to stall after the headers
    stall: float = 0.0  # seconds to stall before answering at all
    declared_length: int | None = None  # Content-Length to claim, if not len(body)
    send_length: bool = True  # False: no Content-Length; the body ends when the connection closes
    location: str | None = None  # a redirect's target path
    hits: int = 0


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)


@pytest.fixture
def http_server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 whose answers the test sets per path; 404 elsewhere."""
    server = Server(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def _answer(self, with_body: bool) -> None:
            route = server.routes.get(self.path) or Route(body=b"not found", status=404)
            route.hits += 1
            time.sleep(route.stall)
            self.send_response(route.status)
            length = route.declared_length if route.declared_length is not None else len(route.body)
            if route.send_length:
                self.send_header("Content-Length", str(length))
            if route.location:
                self.send_header("Location", route.location)
            self.end_headers()
            if with_body:
                time.sleep(route.delay)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


def shipped_raw() -> dict:
    """The committed params.yaml, parsed but not validated: the base every test changes."""
    return yaml.safe_load(SHIPPED.read_text())


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in, mapping by mapping (a non-mapping change replaces)."""
    out = dict(base)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def write_params(directory: Path, **sections: dict) -> Path:
    """A complete params.yaml in ``directory``: the shipped one with ``sections`` merged over it."""
    params = shipped_raw()
    params["download"]["sha256"] = sha256s(synthetic_files())  # the tests' data, unless a test sets its own
    for name, values in sections.items():
        params[name].update(values)  # a family block given here replaces the shipped one
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def project(tmp_path, monkeypatch, synthetic) -> Path:
    """A project directory (the working directory) with preprocessed synthetic data and tiny families."""
    from fmnist.utils.errors import run_stage
    from stages import preprocess

    monkeypatch.chdir(tmp_path)
    write_gz_dir(tmp_path / "data/raw", synthetic)
    write_params(tmp_path, train={"epochs": 1, "batch_size": 32}, families=TINY)
    assert run_stage(preprocess.main, []) == 0
    return tmp_path
