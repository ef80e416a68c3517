"""The fault table (docs/faults.md) and the fault tests stay in step: every row's test exists, and
asserts the row's quoted messages."""

from __future__ import annotations

import ast
import functools
import re

from tests.conftest import ROOT

# A backticked text in a row's "what happens" is a message the program prints when it holds a space
# and is not a command a user types (those start with the command's name).
COMMANDS = ("dvc ", "git ", "make ", "python ", "find ", "sudo ", "apt-get ")


def table_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """Each row's "what happens" cell and the tests it names."""
    page = (ROOT / "docs/faults.md").read_text()
    table = page[page.index("<!-- faults:start -->") : page.index("<!-- faults:end -->")]
    rows = []
    for line in table.splitlines()[3:]:
        cells = line.strip().strip("|").split(" | ")
        rows.append((cells[1], re.findall(r"`(tests/\w+\.py)::(\w+)`", cells[-1])))
    return rows


def table_tests() -> set[tuple[str, str]]:
    return {ref for _, refs in table_rows() for ref in refs}


def quoted_messages(what: str) -> list[str]:
    """The messages a row quotes, cut at its ``...`` elisions into the pieces a test must assert."""
    quoted = [text for text in re.findall(r"`([^`]+)`", what) if " " in text and not text.startswith(COMMANDS)]
    return [piece.strip() for text in quoted for piece in text.split("...") if piece.strip()]


def _unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@functools.cache
def source_of(path: str, name: str) -> str | None:
    """A test function's source with its decorators, then each of its strings whole (adjacent
    literals joined), regular-expression escapes undone."""
    source = (ROOT / path).read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            strings = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            return "\n".join(map(_unescaped, ["\n".join(source.splitlines()[first - 1 : node.end_lineno]), *strings]))
    return None


def test_every_test_the_table_names_exists():
    refs = table_tests()
    assert len(refs) > 25
    for path, name in refs:
        assert source_of(path, name) is not None, f"{path}::{name}"


def test_every_message_a_row_quotes_is_asserted_by_a_test_the_row_names():
    unbacked = []
    for what, refs in table_rows():
        sources = [source_of(path, name) or "" for path, name in refs]
        unbacked += [
            f"{text!r} ({refs[0][1]})" for text in quoted_messages(what) if not any(text in s for s in sources)
        ]
    assert not unbacked, "rows quoting what their tests do not assert:\n" + "\n".join(unbacked)


def test_the_message_check_reads_quotes_as_documented():
    what = "`error: x is bad; run 'dvc repro'` then `dvc repro`, `EDQUOT`, `a ... b`"
    assert quoted_messages(what) == ["error: x is bad; run 'dvc repro'", "a", "b"]


# Checks of the fault generator itself, not faults.
META = {"test_the_generator_covers_every_key_and_every_kind_of_fault"}


def test_every_fault_test_is_in_the_table():
    refs = table_tests()
    for path in sorted(ROOT.glob("tests/test_faults_*.py")):
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE):
            if name not in META:
                assert (f"tests/{path.name}", name) in refs, f"add tests/{path.name}::{name} to docs/faults.md"
