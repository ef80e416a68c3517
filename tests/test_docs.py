"""The front page and the docs: short, and every link among them leads somewhere."""

import re

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
    "metrics/compare/metrics.json",
    "metrics/studies/headline-seeds.json",
    "metrics/studies/headline-seeds.md",
]
GENERATED = ["README.md", "docs/parameters.md", "docs/performance.md", "docs/reproducibility.md"]


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
