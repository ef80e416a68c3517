"""The optional GPU install resolves to the pinned versions (a dry run: no GPU here)."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def pins(path: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s#]+)", (ROOT / path).read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def test_the_gpu_install_asks_for_the_tensorflow_the_cpu_install_pins():
    assert pins("requirements-gpu.txt") == {"tensorflow": pins("requirements.txt")["tensorflow-cpu"]}


@pytest.mark.slow
@pytest.mark.network
def test_the_gpu_install_resolves_against_constraints(tmp_path):
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    pip += ["--report", str(report), "-r", "requirements-gpu.txt", "-c", "constraints.txt"]
    subprocess.run(pip, cwd=ROOT, check=True, capture_output=True)
    installed = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert installed["tensorflow"] == pins("requirements.txt")["tensorflow-cpu"]
    assert "nvidia-cudnn-cu12" in installed
    pinned = pins("constraints.txt")
    assert {name: v for name, v in installed.items() if name in pinned and pinned[name] != v} == {}
