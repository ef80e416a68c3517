"""The front page and the docs: short, and every link among them leads somewhere."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from fmnist.utils.errors import run_stage
from tests.conftest import ROOT, committed

PAGES = [ROOT / "README.md", ROOT / "benchmarks/README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_a_front_page_of_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert [line for line in lines if len(line) > 200] == []


def test_every_relative_link_in_the_docs_leads_to_a_file_of_the_project():
    checked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"
                checked += 1
    assert checked > 10


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in readme, f"the README's documentation table lacks docs/{page.name}"


# What python -m fmnist.docs reads: the results as committed (a rerun on another CPU leaves other
# results in the working tree, and the docs are held to the record's), the pages as they are (a
# family added and not yet committed changes the parameter reference and the quick profile).
RESULTS = [
    "dvc.lock",
    "metrics/benchmark.json",
    "metrics/compare/comparison.md",
    "metrics/compare/comparison.json",
    "metrics/studies/headline-seeds.json",
    "metrics/studies/headline-seeds.md",
]
GENERATED = [
    "README.md",
    "benchmarks/README.md",
    "docs/parameters.md",
    "docs/performance.md",
    "docs/reproducibility.md",
    "dvc.yaml",  # its chart page's entries, one set a family
]


@pytest.fixture
def committed_copy(tmp_path, monkeypatch):
    from fmnist import docs

    for path in RESULTS + GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(committed(path) if path in RESULTS else (ROOT / path).read_text())
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    return tmp_path


def test_the_docs_command_finds_every_generated_part_already_as_it_would_write_it(committed_copy, capsys):
    from fmnist import docs

    assert run_stage(docs.main, []) == 0
    assert capsys.readouterr().out == ""  # nothing to rewrite
    assert all((committed_copy / path).read_text() == (ROOT / path).read_text() for path in GENERATED)


def test_the_docs_command_rewrites_a_stale_block_and_a_quick_profile_missing_a_family(committed_copy, capsys):
    from fmnist import docs

    readme = committed_copy / "README.md"
    text = readme.read_text()
    start = text.index("<!-- comparison:start -->")
    row = text.index("| **", start)  # the best family's row, its name padded as the table pads it
    stale = text[:row] + "| stale |" + text[text.index("\n", row) :]
    assert " -S families.airbench.epochs=2" in stale
    stale = stale.replace(" -S families.airbench.epochs=2", "")
    readme.write_text(stale)
    assert run_stage(docs.main, []) == 0
    assert capsys.readouterr().out == "rewrote README.md\n"
    assert readme.read_text() == (ROOT / "README.md").read_text()


def test_the_seeds_page_describes_every_seed_the_code_names_with_its_figures_and_studies():
    from fmnist.evaluation.comparison import REFERENCES
    from fmnist.studies.spec import load_studies

    page = (ROOT / "docs/seeds.md").read_text()
    studies = load_studies()
    single = {name: study["seed"] for name, study in studies.items() if "-" not in study["seed"]}  # not headline-seeds
    seeds = set(single.values()) | {ref["source"].split()[1] for ref in REFERENCES}
    assert seeds == {"000", "001", "002", "003", "004"}
    for seed in seeds:
        assert f"\n## seed {seed}: " in page, f"docs/seeds.md has no section for seed {seed}"
    for ref in REFERENCES:  # every figure the comparison quotes, as the page states it
        figure = f"{ref['test_accuracy']:.2%}".replace(".00%", "%")
        section = page.split(f"\n## {ref['source']}: ")[1].split("\n## ")[0]
        assert figure in section, f"docs/seeds.md's {ref['source']} does not report {figure}"
    rows = {line.split(" | ")[0][2:]: line for line in page.splitlines() if line.startswith("| 00")}
    for name, seed in single.items():
        assert f"`{name}`" in rows[seed], f"the seeds table's row {seed} does not name the study {name}"


def git_repo(where: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(where)], check=True)
    (where / "record.md").write_text("committed\n")
    subprocess.run(["git", "add", "record.md"], cwd=where, check=True)
    author = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *author, "commit", "-qm", "record"], cwd=where, check=True)
    return where


def test_committed_reads_head_not_the_working_tree_and_a_new_or_unversioned_file_as_it_is(tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / "record.md").write_text("a rerun's\n")
    (repo / "new.md").write_text("not committed yet\n")
    assert committed("record.md", repo) == "committed\n"
    assert committed("new.md", repo) == "not committed yet\n"
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive/record.md").write_text("from a source archive\n")
    assert committed("record.md", tmp_path / "archive") == "from a source archive\n"


def test_committed_fails_loudly_when_git_cannot_answer(tmp_path, monkeypatch):
    repo = git_repo(tmp_path / "repo")
    (repo / "record.md").write_text("a rerun's\n")
    refusing = tmp_path / "bin/git"  # as git answers in a checkout another user owns
    refusing.parent.mkdir()
    refusing.write_text("#!/bin/sh\necho \"fatal: detected dubious ownership in repository at '$PWD'\" >&2\nexit 128\n")
    refusing.chmod(0o755)
    monkeypatch.setenv("PATH", f"{refusing.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(
        RuntimeError, match=r"git cannot show record\.md at HEAD in .*: fatal: detected dubious ownership"
    ):
        committed("record.md", repo)


def test_the_readmes_quick_profile_figures_are_the_committed_benchmarks():
    rows = json.loads(committed("metrics/benchmark.json"))["rows"]
    shown = next(r["shown"] for r in rows if r["row"] == "quick profile, whole pipeline")
    # benchmarks/bench.py writes "2.6 min", then the families' range: " (80% to 85% test accuracy)".
    found = re.fullmatch(r"(\d+\.\d min)(?: \((\d+)% to (\d+)% test accuracy\))?", shown)
    assert found, shown
    figures = found[1] + (f", {found[2]}-{found[3]}% test accuracy" if found[2] else "")
    assert f"2 epochs each: {figures} on the " in (ROOT / "README.md").read_text()
