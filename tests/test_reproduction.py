"""The reproduction verdict: its rule, the platform it records, and the command against a git record."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fmnist.reproduction import machine
from fmnist.reproduction.__main__ import main
from fmnist.reproduction.records import tolerance_table
from fmnist.reproduction.verdict import (
    BIT_IDENTICAL,
    DIFFERS,
    NO_RECORD,
    OTHER_SETTINGS,
    WITHIN_NOISE,
    Result,
    Spread,
    judge,
    tolerance,
)
from fmnist.utils.errors import run_stage
from tests.conftest import ROOT, committed

ISA = "Intel AVX-512 with Intel DL Boost"
PLATFORM = {"cpu_model": "Xeon", "onednn_isa": ISA, "intra_op_threads": 2, "tensorflow": "2.21.0"}
SEEDS = "metrics/studies/headline-seeds.json"
SPREAD = Spread(std=0.002, runs=(0.9, 0.902, 0.898))


def result(accuracy=0.9, md5="aaa", platform=PLATFORM, settings=None) -> Result:
    return Result(accuracy, 10000, md5, platform, settings or {"train.seed": 0})


def test_the_tolerance_is_two_runs_spread_of_seeds_and_test_sampling_at_95_percent():
    # s = 0.002, p = 0.9, n = 10000: 1.96 * sqrt(2 * (4e-6 + 9e-6)) = 0.009994
    assert tolerance(SPREAD, 0.9, 10000) == pytest.approx(1.96 * math.sqrt(2 * 13e-6))
    assert tolerance(SPREAD, 0.9, 10000) == pytest.approx(0.009994, abs=1e-6)
    assert tolerance(None, 0.9, 10000) == pytest.approx(1.96 * math.sqrt(2 * 9e-6))  # no seeds: sampling only
    assert tolerance(None, 0.9, 100) > tolerance(None, 0.9, 10000)  # fewer test images, wider


def test_the_same_bytes_and_score_are_bit_identical():
    verdict = judge("mlp", result(), result(), SPREAD)
    assert verdict["verdict"] == BIT_IDENTICAL
    assert verdict["same_bytes"] is True
    assert verdict["platform_differences"] == {}
    assert verdict["same_platform"] is True


def test_other_bytes_within_the_tolerance_reproduce_within_noise_and_name_the_platform_change():
    here = result(0.9 - 0.0099, md5="bbb", platform={**PLATFORM, "onednn_isa": "Intel AVX2"})
    verdict = judge("mlp", result(), here, SPREAD)
    assert verdict["verdict"] == WITHIN_NOISE
    assert verdict["same_bytes"] is False
    assert verdict["platform_differences"] == {"onednn_isa": (ISA, "Intel AVX2")}
    assert verdict["same_platform"] is False
    assert verdict["difference"] == pytest.approx(-0.0099)


def test_the_same_bytes_scored_otherwise_are_not_bit_identical():
    # Inference on another instruction set can flip an image even with the record's weights.
    assert judge("mlp", result(), result(0.9001), SPREAD)["verdict"] == WITHIN_NOISE


def test_beyond_the_tolerance_a_family_differs():
    assert judge("mlp", result(), result(0.9 + 0.0101, md5="bbb"), SPREAD)["verdict"] == DIFFERS
    assert judge("mlp", result(), result(0.9 - 0.0101, md5="bbb"), SPREAD)["verdict"] == DIFFERS


def test_other_settings_or_no_record_get_no_verdict_on_reproduction():
    other = judge("mlp", result(), result(0.5, md5="bbb", settings={"train.seed": 1}), SPREAD)
    assert other["verdict"] == OTHER_SETTINGS
    assert other["settings_differences"] == {"train.seed": (0, 1)}
    assert judge("lenet", None, result(), None)["verdict"] == NO_RECORD


def test_a_key_the_record_predates_is_listed_but_the_records_bytes_and_score_stay_bit_identical():
    # A new key at the value that keeps the old computation (train.ema: 0.0) trains the same bytes.
    same = judge("mlp", result(), result(settings={"train.seed": 0, "train.ema": 0.0}), SPREAD)
    assert same["verdict"] == BIT_IDENTICAL
    assert same["settings_differences"] == {"train.ema": (None, 0.0)}
    # Other bytes with other settings are still no reproduction, even at the record's accuracy.
    other = judge("mlp", result(), result(md5="bbb", settings={"train.seed": 0, "train.ema": 0.9}), SPREAD)
    assert other["verdict"] == OTHER_SETTINGS


def test_onednn_verbose_banner_gives_version_and_instruction_set():
    banner = (
        "onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)\n"
        "onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2\n"
        "onednn_verbose,v1,info,cpu,isa:Intel AVX2\n"
        "onednn_verbose,v1,primitive,exec,cpu,matmul,...\n"
    )
    assert machine.parse_onednn_verbose(banner) == {"onednn_version": "v3.7.3", "onednn_isa": "Intel AVX2"}
    assert machine.parse_onednn_verbose("") == {"onednn_version": "unknown", "onednn_isa": "unknown"}


# /proc/cpuinfo's first processor, as Linux prints it on the kinds of machine users have.
ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1

processor\t: 1
vendor_id\t: AuthenticAMD
"""
GRAVITON2_CPUINFO = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
"""


def test_an_x86_cpu_is_named_with_its_family_and_model_numbers_which_tell_generations_apart():
    assert machine.parse_cpuinfo(ZEN4_CPUINFO) == {
        "cpu_vendor": "AuthenticAMD",
        "cpu_model": "AMD EPYC",
        "cpu_generation": "family 25, model 17",
    }
    zen5 = ZEN4_CPUINFO.replace("cpu family\t: 25", "cpu family\t: 26").replace("model\t\t: 17", "model\t\t: 2")
    assert machine.parse_cpuinfo(zen5)["cpu_model"] == "AMD EPYC"  # the name alone cannot tell them apart
    assert machine.parse_cpuinfo(zen5)["cpu_generation"] == "family 26, model 2"


def test_an_arm_cpu_on_linux_is_named_by_its_implementer_and_part_codes():
    assert machine.parse_cpuinfo(GRAVITON2_CPUINFO) == {
        "cpu_vendor": "implementer 0x41",
        "cpu_model": "part 0xd0c",
        "cpu_generation": "architecture 8, variant 0x3, revision 1",
    }


def test_a_mac_is_named_by_its_chip_and_core_family_from_sysctl(monkeypatch):
    answers = {"machdep.cpu.brand_string": "Apple M2", "hw.cpufamily": "3660830781"}  # no machdep.cpu.vendor there
    monkeypatch.setattr(machine.platform, "machine", lambda: "arm64")
    assert machine.darwin_cpu(lambda name: answers.get(name, "")) == {
        "cpu_vendor": "Apple",
        "cpu_model": "Apple M2",
        "cpu_generation": "cpufamily 3660830781",
    }


def test_a_cpuinfo_without_the_facts_says_unknown_rather_than_guessing():
    assert machine.parse_cpuinfo("")["cpu_generation"] == machine.UNKNOWN
    assert machine.parse_cpuinfo("")["cpu_vendor"] == machine.UNKNOWN


def test_the_record_names_the_system_and_python_beside_the_cpu():
    from concurrent.futures import Future

    probe: Future = Future()
    probe.set_result({"onednn_version": "v3.7.3", "onednn_isa": "Intel AVX2"})
    platform = machine.record({"intra_op_threads": 2}, probe)
    assert platform["os"] == machine.platform.system() == "Linux"
    assert platform["arch"] == machine.platform.machine()
    assert platform["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert platform["cpu_generation"] == machine.cpu()["cpu_generation"]
    assert (platform["intra_op_threads"], platform["onednn_isa"]) == (2, "Intel AVX2")


@pytest.mark.slow
def test_the_probe_sees_the_instruction_set_cap_as_training_would(monkeypatch):
    uncapped = machine.onednn()
    assert uncapped["onednn_version"].startswith("v")
    if "AVX-512" not in uncapped["onednn_isa"]:
        pytest.skip(f"this CPU's oneDNN dispatches to {uncapped['onednn_isa']}: no AVX-512 to cap")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine.onednn()["onednn_isa"] == "Intel AVX2"


# The command, against a record committed in a small git repository of its own.


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def write_run(repo: Path, accuracies: dict[str, float], models: dict[str, bytes], isa: str = ISA) -> None:
    """The files a run leaves: models, dvc.lock, the comparison and its platform."""
    (repo / "models").mkdir(exist_ok=True)
    stages = {}
    for family, data in models.items():
        (repo / f"models/{family}.keras").write_bytes(data)
        stages[f"train@{family}"] = {
            "params": {"params.yaml": {"train": {"seed": 0}, f"families.{family}": {"epochs": 3}}},
            "outs": [{"path": f"models/{family}.keras", "md5": hashlib.md5(data).hexdigest()}],
        }
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    (repo / "metrics/compare").mkdir(parents=True, exist_ok=True)
    rows = [{"family": f, "test_accuracy": a, "test_images": 10000} for f, a in accuracies.items()]
    (repo / "metrics/compare/comparison.json").write_text(json.dumps({"families": rows}))
    (repo / "metrics/compare/platform.json").write_text(
        json.dumps({f: {**PLATFORM, "onednn_isa": isa} for f in accuracies})
    )


@pytest.fixture
def record(tmp_path, monkeypatch) -> Path:
    """A repository whose HEAD is a record of two families, with headline-seeds' spread for both."""
    git(tmp_path, "init", "-q")
    write_run(tmp_path, {"mlp": 0.9, "dnn": 0.88}, {"mlp": b"mlp weights", "dnn": b"dnn weights"})
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "the run the study starts from")
    baseline = git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "metrics/studies").mkdir(parents=True)
    seeds = [
        {"family": "mlp", "settings": {}, "n": 3, "std": 0.002, "runs": [0.9, 0.902, 0.898]},
        {"family": "dnn", "settings": {}, "n": 3, "std": 0.004, "runs": [0.88, 0.876, 0.884]},
    ]
    study = {"run": {"baseline": baseline}, "configurations": seeds}
    (tmp_path / "metrics/studies/headline-seeds.json").write_text(json.dumps(study))
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "record")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_command_calls_the_records_own_rerun_bit_identical(record, capsys):
    assert run_stage(main, []) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mlp +bit-identical +90\.00% +90\.00% +\+0\.00% +±1\.00% +the record's$", out, re.MULTILINE)
    assert re.search(r"^dnn +bit-identical ", out, re.MULTILINE)
    assert "platform:" not in out  # nothing differs


def test_the_command_names_the_instruction_set_and_judges_each_family(record, capsys):
    # As on a CPU without AVX-512: other bytes for both, the dnn further off than its tolerance.
    write_run(record, {"mlp": 0.895, "dnn": 0.86}, {"mlp": b"other mlp", "dnn": b"other dnn"}, isa="Intel AVX2")
    assert run_stage(main, []) == 1
    captured = capsys.readouterr()
    assert re.search(r"^mlp +reproduced within noise +90\.00% +89\.50% +-0\.50% +±1\.00% +other$", captured.out, re.M)
    assert re.search(r"^dnn +differs +88\.00% +86\.00% +-2\.00% +±1\.43% +other$", captured.out, re.MULTILINE)
    assert f"platform: onednn_isa: {ISA} (record) -> Intel AVX2 (here)\n" in captured.out
    assert captured.err == "error: dnn: test accuracy further from the record's than the tolerance\n"

    assert run_stage(main, ["--json"]) == 1
    verdicts = {v["family"]: v for v in json.loads(capsys.readouterr().out)["families"]}
    assert verdicts["mlp"]["verdict"] == WITHIN_NOISE
    assert verdicts["dnn"]["verdict"] == DIFFERS
    assert verdicts["dnn"]["platform_differences"] == {"onednn_isa": [ISA, "Intel AVX2"]}


def test_the_command_compares_with_any_revision(record, capsys):
    first = git(record, "rev-parse", "--short", "HEAD").strip()
    write_run(record, {"mlp": 0.895, "dnn": 0.88}, {"mlp": b"other mlp", "dnn": b"dnn weights"})
    git(record, "commit", "-qam", "a second record")
    assert run_stage(main, ["--against", first]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"reproduction of the results of record at {first}:\n")
    assert re.search(r"^mlp +reproduced within noise ", out, re.MULTILINE)
    assert re.search(r"^dnn +bit-identical ", out, re.MULTILINE)


def test_the_command_refuses_a_revision_that_is_not_one_in_one_line(record, capsys):
    assert run_stage(main, ["--against", "no-such-branch"]) == 1
    assert capsys.readouterr().err == (
        "error: --against no-such-branch: not a commit of this git repository; give a branch, tag or commit\n"
    )


def test_the_command_without_a_run_says_to_make_one(record, capsys):
    (record / "metrics/compare/comparison.json").unlink()
    assert run_stage(main, []) == 1
    assert capsys.readouterr().err == (
        "error: metrics/compare/comparison.json is missing: there is no run to judge yet; run 'make run'\n"
    )


def test_the_command_refuses_a_revision_without_a_platform_record_in_one_line(record, capsys):
    first = git(record, "rev-parse", "--short", "HEAD").strip()
    git(record, "rm", "-q", "--cached", "metrics/compare/platform.json")
    git(record, "commit", "-qm", "a commit without the platform")
    assert run_stage(main, ["--against", "HEAD"]) == 1
    assert capsys.readouterr().err == (
        "error: --against HEAD: that commit has no metrics/compare/platform.json, so no platform to judge against\n"
    )
    assert run_stage(main, ["--against", first]) == 0


def test_the_command_without_a_model_says_where_to_get_it(record, capsys):
    (record / "models/dnn.keras").unlink()
    assert run_stage(main, []) == 1
    assert capsys.readouterr().err == (
        "error: models/dnn.keras is missing, so its bytes cannot be judged; run 'make run' (or 'dvc pull')\n"
    )


def test_the_docs_give_each_familys_tolerance_from_the_committed_record():
    page = (ROOT / "docs/reproducibility.md").read_text()
    start, end = "<!-- tolerances:start -->\n", "<!-- tolerances:end -->"
    shown = page[page.index(start) + len(start) : page.index(end)]
    expected = tolerance_table(
        committed("metrics/compare/comparison.json"),
        committed("metrics/studies/headline-seeds.json"),
        committed("dvc.lock"),
    )
    assert shown == expected, "regenerate it: python -m fmnist.docs"


def test_the_seeds_spread_counts_on_any_platform_but_only_for_the_records_configuration(record, capsys):
    # A new record: the mlp as the study ran it but on another CPU, the dnn with another setting.
    write_run(record, {"mlp": 0.901, "dnn": 0.8}, {"mlp": b"amd mlp", "dnn": b"dnn, 4 epochs"}, isa="AVX2")
    lock = yaml.safe_load((record / "dvc.lock").read_text())
    lock["stages"]["train@dnn"]["params"]["params.yaml"]["families.dnn"]["epochs"] = 4
    (record / "dvc.lock").write_text(yaml.safe_dump(lock))
    git(record, "add", "-A")
    git(record, "commit", "-qm", "record on another CPU")
    assert run_stage(main, ["--tolerances"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "| mlp | 90.10% | 0.20% | ±1.00% |",
        "| dnn | 80.00% | none | ±1.11% |",
    ]
    verdicts = {v["family"]: v for v in json.loads(run_json(capsys))["families"]}
    assert verdicts["mlp"]["seed_std"] == 0.002
    assert verdicts["dnn"]["seed_std"] is None
    assert verdicts["dnn"]["tolerance"] == pytest.approx(tolerance(None, 0.8, 10000))


def run_json(capsys) -> str:
    assert run_stage(main, ["--json"]) == 0
    return capsys.readouterr().out


# The records of record: one row each, as data.


def test_benchmarks_readme_shows_every_record_of_records_csv():
    from benchmarks import record

    page = (ROOT / "benchmarks/README.md").read_text()
    shown = page[page.index(record.START) + len(record.START) : page.index(record.END)]
    rows = list(csv.DictReader(io.StringIO(committed("benchmarks/records.csv"))))
    assert shown == record.markdown(rows), "the table is python -m benchmarks.record's: rerun it, or fix records.csv"
    assert rows[-1]["onednn_isa"] != "not recorded", "the latest record names its platform"


def test_a_records_verdict_groups_the_families_by_verdict():
    from benchmarks.record import summary

    same = [{"family": f, "verdict": BIT_IDENTICAL} for f in ("mlp", "dnn")]
    assert summary(same) == "all 2: bit-identical"
    mixed = [*same, {"family": "cnn", "verdict": WITHIN_NOISE}]
    assert summary(mixed) == "mlp, dnn: bit-identical; cnn: reproduced within noise"


def test_a_record_is_refused_a_keep_folder_that_exists_before_anything_is_cloned(tmp_path, monkeypatch, capsys):
    from benchmarks import record

    monkeypatch.setattr(record, "git", lambda *args, **kw: pytest.fail("nothing may be cloned"))
    assert run_stage(record.main, ["--keep", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: --keep {tmp_path}: that path exists; name one that does not\n"


def test_a_record_is_refused_from_a_working_tree_with_changes(tmp_path, monkeypatch, capsys):
    from benchmarks import record

    git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "x")
    (tmp_path / "params.yaml").write_text("a: 2\n")
    monkeypatch.setattr(record, "ROOT", tmp_path)
    assert run_stage(record.main, []) == 1
    assert capsys.readouterr().err == (
        "error: the working tree has uncommitted changes; commit or stash them: a record is of a commit\n"
    )
