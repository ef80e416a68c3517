"""The fault table (docs/faults.md) and the fault tests stay in step."""

import re

from tests.conftest import ROOT


def table_tests() -> set[tuple[str, str]]:
    page = (ROOT / "docs/faults.md").read_text()
    table = page[page.index("<!-- faults:start -->") : page.index("<!-- faults:end -->")]
    return set(re.findall(r"`(tests/\w+\.py)::(\w+)`", table))


def test_every_test_the_table_names_exists():
    refs = table_tests()
    assert len(refs) > 25
    for path, name in refs:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE), f"{path}::{name}"


# Checks of the fault generator itself, not faults.
META = {"test_the_generator_covers_every_key_and_every_kind_of_fault"}


def test_every_fault_test_is_in_the_table():
    refs = table_tests()
    for path in sorted(ROOT.glob("tests/test_faults_*.py")):
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE):
            if name not in META:
                assert (f"tests/{path.name}", name) in refs, f"add tests/{path.name}::{name} to docs/faults.md"
