"""Every stage declares, as a DVC dep, each project module its code imports, so editing one reruns it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml

from fmnist.models.families import NAMES as FAMILIES
from tests.conftest import committed

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stages", "fmnist")


def source_of(module: str) -> Path | None:
    """The file of a project module or package, or None for anything else."""
    for path in (ROOT / (module.replace(".", "/") + ".py"), ROOT / module.replace(".", "/") / "__init__.py"):
        if module.split(".")[0] in PACKAGES and path.exists():
            return path
    return None


def imported_files(module: str) -> set[str]:
    """The project files that ``module`` runs: its imports, theirs, and the packages they sit in.

    Empty ``__init__.py`` files hold no code, so they are left out.
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        if source_of(name) is None:  # a folder without __init__.py (stages/): no code of its own
            continue
        tree = ast.parse(source_of(name).read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            todo += [n for n in names if source_of(n)]
    files = {source_of(name) for name in seen} - {None}
    return {str(path.relative_to(ROOT)) for path in files if path.read_text().strip()}


def test_every_stage_declares_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checked = 0
    for name, stage in stages.items():
        per_family = "do" in stage
        stage = stage.get("do", stage)
        module = stage["cmd"].split("python -m ", 1)[1].split()[0]
        needed = imported_files(module)
        if "fmnist/models/families" in stage["deps"]:  # every family's module, loaded by name
            for family in FAMILIES:
                needed |= imported_files(f"fmnist.models.families.{family}")
        if per_family:  # a family's module is loaded by name: each train@ and evaluate@ needs its own
            assert "fmnist/models/families/${key}.py" in stage["deps"], f"stage {name} lacks its family's module"
            for family in FAMILIES:
                needed |= imported_files(f"fmnist.models.families.{family}") - {f"fmnist/models/families/{family}.py"}
        # A folder dep covers every file in it.
        missing = {f for f in needed if not any(f == d or f.startswith(f"{d}/") for d in stage["deps"])}
        assert not missing, f"stage {name} imports {sorted(missing)} but does not declare them as deps"
        # And no more: a module declared but not run would rerun the stage for nothing.
        modules = {d.split()[0] for d in stage["deps"] if d.endswith(".py")} - {"fmnist/models/families/${key}.py"}
        assert modules <= needed, f"stage {name} declares {sorted(modules - needed)} but does not import them"
        checked += 1
    assert checked >= 5


def test_config_imports_nothing_above_it_so_download_and_preprocess_depend_on_no_model_or_evaluation_code():
    above = ("fmnist/models/", "fmnist/evaluation/", "fmnist/training/", "fmnist/studies/", "fmnist/serving/")
    for module in ("fmnist.config.params", "fmnist.config.validation", "fmnist.config.schema"):
        assert not [f for f in imported_files(module) if f.startswith(above)], module
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("download", "preprocess"):
        assert not [d for d in stages[name]["deps"] if d.startswith(above)], name


def test_a_per_family_stage_imports_its_own_family_and_no_other():
    for family in FAMILIES:
        others = {f"fmnist/models/families/{other}.py" for other in FAMILIES if other != family}
        assert not imported_files(f"fmnist.models.families.{family}") & others
    assert not {f"fmnist/models/families/{f}.py" for f in FAMILIES} & imported_files("stages.train")


def test_the_check_follows_imports_through_packages_and_functions():
    train = imported_files("stages.train")
    assert {"stages/train.py", "fmnist/training/loop.py", "fmnist/training/inputs.py"} <= train  # in main()
    assert "fmnist/models/families/__init__.py" in train  # the registry, which imports a family by name
    assert "fmnist/models/blocks.py" in imported_files("fmnist.models.families.cnn")


def test_every_stage_says_what_it_does():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert (stage.get("do") or stage).get("desc"), f"dvc.yaml: stage {name} has no desc"


def test_every_trained_family_is_a_model_in_the_registry():
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    families = yaml.safe_load((ROOT / "params.yaml").read_text())["families"]
    artifacts = dvc_yaml["artifacts"]
    assert list(artifacts) == list(families)
    for family, artifact in artifacts.items():
        assert artifact["path"] == f"models/{family}.keras"
        assert artifact["type"] == "model"
        assert family in artifact["labels"]
        assert artifact["desc"]


def test_dvcs_metrics_are_each_familys_test_accuracy_and_the_best_family_and_nothing_constant():
    # `dvc exp show` gives every key of every declared metric a column: the declared ones are what
    # an experiment changes, one short column each; the study reports and the benchmark, which no
    # experiment changes, are read on request (`dvc metrics show metrics/studies/NAME.json`).
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    families = yaml.safe_load((ROOT / "params.yaml").read_text())["families"]
    declared = [
        next(iter(m)) if isinstance(m, dict) else m
        for stage in dvc_yaml["stages"].values()
        for m in stage.get("do", stage).get("metrics", [])
    ]
    assert declared == ["metrics/evaluate/${key}/metrics.json", "metrics/compare/metrics.json"]
    assert "metrics" not in dvc_yaml
    best = json.loads(committed("metrics/compare/metrics.json"))
    assert list(best) == ["best"]
    assert best["best"] in families


def test_the_chart_page_is_dvc_yamls_top_level_plots_alone_with_every_trained_familys_entries():
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    families = list(yaml.safe_load((ROOT / "params.yaml").read_text())["families"])
    files = [y for plot in dvc_yaml["plots"] if isinstance(plot, dict) for spec in plot.values() for y in spec["y"]]
    files += [plot for plot in dvc_yaml["plots"] if isinstance(plot, str)]
    for family in families:  # its curves (loss, accuracy: train and validation; learning rate), matrix, mistakes
        assert sum(f.startswith((f"metrics/train/{family}/", f"metrics/evaluate/{family}/")) for f in files) == 6
        assert f"plots/evaluate/{family}/mistakes.png" in files
    # Stages declare no plots: each chart is shown once, with the title above.
    assert all("plots" not in stage.get("do", stage) for stage in dvc_yaml["stages"].values())
