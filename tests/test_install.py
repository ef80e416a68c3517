"""The lock (constraints.txt) installs on every platform and Python the project supports, and the
optional GPU install resolves to the same TensorFlow (resolved from the registry: no GPU, Mac or ARM here)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# uv's names for the platforms (its default macOS is 13.0, its Linux glibc 2.28: Debian 10 and later,
# Ubuntu 20.04 and later) and the TensorFlow package each must get: tensorflow-cpu has wheels for
# Linux x86_64 only; the full package, the same version, elsewhere.
TENSORFLOW = {
    "x86_64-manylinux_2_28": "tensorflow-cpu",
    "aarch64-manylinux_2_28": "tensorflow",
    "aarch64-apple-darwin": "tensorflow",
}
PYTHONS = ("3.11", "3.12", "3.13")
NAMED = {"x86_64-manylinux_2_28": "Linux x86_64", "aarch64-manylinux_2_28": "Linux aarch64"}
NAMED["aarch64-apple-darwin"] = "macOS, Apple silicon"  # as docs/install.md's table names them
# Pure Python, published as a source archive only: built where it installs, on any platform.
SOURCE_ONLY = ("antlr4-python3-runtime",)


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str | Path) -> dict[str, str]:
    return pins_of(Path(ROOT, path).read_text())


def pins_of(text: str) -> dict[str, str]:
    """``name==version`` lines (extras and markers dropped), by normalised name."""
    found = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)", text, re.MULTILINE)
    return {normal(name): version for name, version in found}


def resolve(requirements: str, platform: str, python: str) -> dict[str, str]:
    """What uv resolves ``requirements`` to, under the lock, for one platform and Python: wheels only
    (but :data:`SOURCE_ONLY`), so a package with no wheel for the platform fails the resolution."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    cmd = [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", requirements, "-c", "constraints.txt"]
    cmd += ["--python-platform", platform, "--python-version", python, "--only-binary", ":all:"]
    cmd += [arg for name in SOURCE_ONLY for arg in ("--no-binary", name)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return pins_of(done.stdout)


def test_the_gpu_install_asks_for_the_tensorflow_the_cpu_install_pins():
    assert pins("requirements-gpu.txt") == {"tensorflow": pins("requirements.txt")["tensorflow-cpu"]}


def test_every_platform_asks_for_one_tensorflow_at_the_same_version():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("tensorflow")]
    assert {normal(line.split("==")[0]) for line in lines} == set(TENSORFLOW.values())
    assert len({line.split("==")[1].split(";")[0] for line in lines}) == 1


def test_the_install_page_names_the_tensorflow_and_pythons_each_platform_gets():
    page = (ROOT / "docs/install.md").read_text()
    for platform, package in TENSORFLOW.items():
        assert f"| {NAMED[platform]} | `{package}` | {', '.join(PYTHONS)} |" in page


def test_the_lock_pins_every_direct_requirement_at_its_version():
    lock = pins("constraints.txt")
    for path in ("requirements.txt", "requirements-dev.txt", "requirements-gpu.txt"):
        assert {name: v for name, v in pins(path).items() if lock.get(name) != v} == {}, path


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", TENSORFLOW)
def test_the_lock_installs_on_every_supported_platform_and_python_with_its_tensorflow(platform, python):
    resolved = resolve("requirements-dev.txt", platform, python)
    lock = pins("constraints.txt")
    assert {name: v for name, v in resolved.items() if lock.get(name) != v} == {}  # nothing beyond the lock
    tensorflows = {name for name in resolved if name in ("tensorflow", "tensorflow-cpu")}
    assert tensorflows == {TENSORFLOW[platform]}
    assert resolved[TENSORFLOW[platform]] == pins("requirements.txt")["tensorflow-cpu"]


@pytest.mark.slow
@pytest.mark.network
def test_a_requirement_with_no_wheel_for_a_platform_fails_its_resolution(tmp_path):
    # What the test above guards against: the CPU build alone, as pinned before, on a Mac.
    only_cpu = tmp_path / "requirements.txt"
    only_cpu.write_text(f"tensorflow-cpu=={pins('requirements.txt')['tensorflow-cpu']}\n")
    with pytest.raises(AssertionError, match=r"has no wheels with a matching platform\s+tag"):
        resolve(str(only_cpu), "aarch64-apple-darwin", "3.11")


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("python", PYTHONS)
def test_the_gpu_install_resolves_under_the_lock_with_cuda(python):
    resolved = resolve("requirements-gpu.txt", "x86_64-manylinux_2_28", python)
    lock = pins("constraints.txt")
    assert resolved["tensorflow"] == pins("requirements.txt")["tensorflow-cpu"]
    assert "nvidia-cudnn-cu12" in resolved
    assert {name: v for name, v in resolved.items() if lock.get(name) != v} == {}


def makefile_copy(tmp_path: Path) -> Path:
    """The Makefile and what its install targets read, in a folder of their own, with a venv made:
    its python this one, its requirements installed (as the marker file, newer than every list)."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "requirements-gpu.txt", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / ".dvc/plots/html", tmp_path / ".dvc/plots/html", ignore=shutil.ignore_patterns("node_*"))
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").symlink_to(sys.executable)
    (tmp_path / ".venv/.installed").touch()
    return tmp_path


@pytest.mark.slow  # make in a process of its own
def test_without_npm_make_install_skips_only_the_offline_chart_page_and_says_what_you_get_instead(tmp_path):
    project = makefile_copy(tmp_path)
    no_npm = tmp_path / "bin"  # the whole PATH: no npm, no node, nothing else
    no_npm.mkdir()
    done = subprocess.run(
        [shutil.which("make"), "install"], cwd=project, env={"PATH": str(no_npm)}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "make: no npm (Node.js), so no offline chart page: dvc plots show writes DVC's own, "
        "whose charts load their scripts from the internet\n"
    )
    assert not (project / ".dvc/plots/offline.html").exists()


@pytest.mark.slow  # make in a process of its own
def test_make_refuses_a_python_before_3_11_in_one_line_and_makes_no_venv(tmp_path):
    project = makefile_copy(tmp_path)
    shutil.rmtree(project / ".venv")
    old = tmp_path / "python3.10"  # this Python, saying it is 3.10
    old.write_text(f'#!/bin/sh\nexec {sys.executable} -c "import sys; sys.version_info = (3, 10, 0); $2"\n')
    old.chmod(0o755)
    done = subprocess.run(
        [shutil.which("make"), "install", f"PYTHON={old}"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        f"make: {old} is not Python 3.11, 3.12 or 3.13; name one: make PYTHON=/path/to/python3.12 run"
    )
    assert not (project / ".venv").exists()
