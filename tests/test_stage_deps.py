"""Every stage declares, as a DVC dep, each project module its code imports, so editing one reruns it."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(module: str) -> set[str]:
    """The ``stages.*`` modules that ``module`` imports, directly or through each other."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            todo += [n for n in names if n.startswith("stages.") and (ROOT / (n.replace(".", "/") + ".py")).exists()]
    return seen


def test_every_stage_declares_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checked = 0
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        module = stage["cmd"].split("python -m ", 1)[1].split()[0]
        needed = {m.replace(".", "/") + ".py" for m in imported_modules(module)}
        missing = needed - set(stage["deps"])
        assert not missing, f"stage {name} imports {sorted(missing)} but does not declare them as deps"
        checked += 1
    assert checked >= 5
