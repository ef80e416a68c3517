"""The fault table (docs/faults.md) and the fault tests stay in step: every row's test exists and
asserts what the row says, read from the syntax tree: each quoted message, its exit code and
"nothing written" must be what an assertion of a test the row names checks, not text anywhere in it."""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

from tests.conftest import ROOT

# A backticked text in a row's "what happens" is a message the program prints when it holds a space
# and is not a command a user types (those start with the command's name).
COMMANDS = ("dvc ", "git ", "make ", "python ", "find ", "sudo ", "apt-get ")
ELIDED = "..."  # where a row leaves out what varies (a path, a number, a library's own words)
PINS = 12  # the fewest characters a quote must hold beside its elisions to pin a message
# What a regular expression in a test matches where a row writes "...": \d+, .*, [0-9a-f]{2} and such.
REGEX_WILDCARD = re.compile(r"\\[dwsS][+*]\??|\.[+*]\??|\[[^\]]*\](?:\{\d+(?:,\d*)?\}|[+*]\??)?")
# Calls in an assertion that look at the file system: how a test says "nothing written".
LOOKS_AT_FILES = {"exists", "is_file", "is_dir", "iterdir", "glob", "rglob", "listdir", "scandir", "walk", "files"}


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
    """The messages a row quotes, whole, elisions and all."""
    return [text for text in re.findall(r"`([^`]+)`", what) if " " in text and not text.startswith(COMMANDS)]


def squeezed(text: str) -> str:
    return re.sub(r"(?:\.\.\.)+", ELIDED, text)


def _unescaped(text: str) -> str:
    """A regular expression's escapes undone (``\\.`` is ``.``, ``\\n`` a newline)."""
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


def template(node: ast.Constant | ast.JoinedStr) -> str:
    """A string a test asserts, as a row would quote it: an f-string's fields and a regular
    expression's wildcards written ``...``, escapes undone."""
    parts = node.values if isinstance(node, ast.JoinedStr) else [node]
    text = "".join(
        _unescaped(REGEX_WILDCARD.sub(ELIDED, p.value)) if isinstance(p, ast.Constant) else ELIDED for p in parts
    )
    return squeezed(text)


@dataclass(frozen=True)
class Asserted:
    """What one test's assertions check: its strings (as templates, in source order), its whole
    numbers (exit codes among them), and whether one looks at the file system."""

    texts: tuple[str, ...]
    numbers: frozenset[int]
    looks_at_files: bool


def _called(call: ast.Call) -> str | None:
    return getattr(call.func, "attr", None) or getattr(call.func, "id", None)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _asserting_helpers(*trees: ast.Module) -> set[str]:
    """Module-level functions that assert: what a test passes them is asserted too."""
    return {
        n.name
        for tree in trees
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and any(isinstance(m, ast.Assert) for m in ast.walk(n))
    }


def _bindings(fn: ast.FunctionDef) -> dict[str, list[ast.AST]]:
    """Each local name and the expressions it is bound from: assignments, loops, ``with ... as``
    and ``pytest.mark.parametrize``'s values."""
    binds: dict[str, list[ast.AST]] = {}
    for node in ast.walk(fn):
        pairs: list[tuple[ast.AST, ast.AST]] = []
        if isinstance(node, ast.Assign):
            pairs = [(target, node.value) for target in node.targets]
        elif isinstance(node, ast.For | ast.comprehension):
            pairs = [(node.target, node.iter)]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            pairs = [(node.optional_vars, node.context_expr)]
        for target, value in pairs:
            for name in _names(target):
                binds.setdefault(name, []).append(value)
    for mark in fn.decorator_list:
        if isinstance(mark, ast.Call) and getattr(mark.func, "attr", "") == "parametrize" and len(mark.args) > 1:
            first = mark.args[0]
            argnames = (
                [s.strip() for s in first.value.split(",")]
                if isinstance(first, ast.Constant)
                else [e.value for e in getattr(first, "elts", [])]
            )
            for name in argnames:
                binds.setdefault(name, []).append(mark.args[1])
    return binds


@functools.cache
def asserted(path: str, name: str) -> Asserted | None:
    """What the test ``path::name`` asserts; None if there is no such test."""
    tree = ast.parse((ROOT / path).read_text())
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        return None
    helpers = _asserting_helpers(tree, ast.parse((ROOT / "tests/conftest.py").read_text()))
    checked: list[ast.AST] = []  # the expressions an assertion checks
    looks_at_files = False
    for node in ast.walk(fn):
        if isinstance(node, ast.Assert):
            checked.append(node.test)
            calls = [c for c in ast.walk(node.test) if isinstance(c, ast.Call)]
            looks_at_files |= any(_called(c) in LOOKS_AT_FILES for c in calls)
        elif isinstance(node, ast.Call) and _called(node) == "raises":
            checked += [k.value for k in node.keywords if k.arg == "match"]
        elif isinstance(node, ast.Call) and _called(node) in helpers:
            checked += [*node.args, *(k.value for k in node.keywords)]
    # Follow the names an assertion reads back to what they are bound from, to a fixed point.
    binds, seen, todo, reached = _bindings(fn), set(), list(checked), []
    while todo:
        expr = todo.pop()
        reached.append(expr)
        for var in _names(expr) - seen:
            seen.add(var)
            todo += binds.get(var, [])
    strings: dict[tuple[int, int], ast.Constant | ast.JoinedStr] = {}
    numbers: set[int] = set()
    for expr in reached:
        inside_fstrings = {id(v) for n in ast.walk(expr) if isinstance(n, ast.JoinedStr) for v in n.values}
        for n in ast.walk(expr):
            if isinstance(n, ast.JoinedStr) or (
                isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in inside_fstrings
            ):
                strings[(n.lineno, n.col_offset)] = n
            elif isinstance(n, ast.Constant) and type(n.value) is int:
                numbers.add(n.value)
    texts = tuple(template(strings[at]) for at in sorted(strings))
    return Asserted(texts, frozenset(numbers), looks_at_files)


def backs(quote: str, by: Asserted) -> bool:
    """Whether the test's assertions check the quoted message: its parts, in order, in what they
    assert (an elision may stand for anything), or, for a test generated over many values, the row
    quotes one instance of a message template the test asserts."""
    pieces = squeezed(quote).split(ELIDED)
    joined = "\0".join(by.texts)
    if re.search(".*?".join(map(re.escape, pieces)), joined, re.DOTALL):
        return True
    return any(
        len(t.replace(ELIDED, "")) >= PINS and re.search(".+?".join(map(re.escape, t.split(ELIDED))), quote)
        for t in by.texts
    )


def problems(what: str, refs: list[tuple[str, str]]) -> list[str]:
    """What a row claims that no test it names asserts."""
    tests = [a for a in (asserted(path, name) for path, name in refs) if a is not None]
    named = refs[0][1] if refs else "no test"
    found = []
    for quote in quoted_messages(what):
        if len(quote.replace(ELIDED, "").strip()) < PINS:
            found.append(f"{quote!r} is too short to pin a message ({named})")
        elif not any(backs(quote, t) for t in tests):
            found.append(f"{quote!r} is asserted by no test it names ({named})")
    for code in re.findall(r"\bexit (\d+)", what):
        if not any(int(code) in t.numbers for t in tests):
            found.append(f"exit {code} is asserted by no test it names ({named})")
    if "nothing written" in what and not any(t.looks_at_files for t in tests):
        found.append(f"'nothing written': no assertion of a test it names looks at the files ({named})")
    return found


def test_every_test_the_table_names_exists():
    refs = table_tests()
    assert len(refs) > 25
    for path, name in refs:
        assert asserted(path, name) is not None, f"{path}::{name}"


def test_every_message_exit_code_and_nothing_written_a_row_states_is_asserted_by_a_test_it_names():
    found = [problem for what, refs in table_rows() for problem in problems(what, refs)]
    assert not found, "rows stating what their tests do not assert:\n" + "\n".join(found)


def test_the_checker_reads_an_assertion_not_a_comment_or_a_name(tmp_path, monkeypatch):
    import tests.test_fault_table as checker

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/conftest.py").write_text("")
    (tmp_path / "tests/test_x.py").write_text(
        "import pytest\n\n\n"
        "def test_and_more():\n"
        "    # error: key 'k' is written twice, at lines 1 and 2; keep one\n"
        "    code = run()\n"
        "    assert code == 1\n\n\n"
        "@pytest.mark.parametrize('key, line', [('train', 3)])\n"
        "def test_real(capsys, key, line):\n"
        "    assert run() == 2\n"
        "    err = capsys.readouterr().err\n"
        "    assert err == f\"error: key '{key}' is written twice, at lines {line} and 9; keep one\\n\"\n"
        "    assert not (tmp / 'models').exists()\n"
    )
    monkeypatch.setattr(checker, "ROOT", tmp_path)
    checker.asserted.cache_clear()
    try:
        quote = "`error: key '...' is written twice, at lines ... and ...; keep one`"
        comment_only = [("tests/test_x.py", "test_and_more")]
        real = [("tests/test_x.py", "test_real")]
        assert problems(f"{quote}, exit 2, nothing written", real) == []
        assert problems(f"{quote}, exit 2, nothing written", comment_only) == [
            f"{quote.strip('`')!r} is asserted by no test it names (test_and_more)",
            "exit 2 is asserted by no test it names (test_and_more)",
            "'nothing written': no assertion of a test it names looks at the files (test_and_more)",
        ]
        assert problems("`error: keep two`", real) == ["'error: keep two' is asserted by no test it names (test_real)"]
        assert problems("`'...' and ...`", real) == ["\"'...' and ...\" is too short to pin a message (test_real)"]
    finally:
        checker.asserted.cache_clear()


def test_a_regular_expression_or_a_generated_message_is_read_as_a_row_quotes_it():
    regex = ast.parse(r'r"error: byte 0x[0-9a-f]{2} at line \d+ cannot be read\n"').body[0].value
    assert template(regex) == "error: byte 0x... at line ... cannot be read\n"
    generated = Asserted(("... = ... is not allowed; expected ...",), frozenset(), False)
    assert backs("error: params.yaml: train.epochs = 0 is not allowed; expected an integer", generated)
    assert not backs("error: params.yaml: train.epochs = 0 is refused", generated)


# Checks of the fault generator itself, not faults.
META = {"test_the_generator_covers_every_key_and_every_kind_of_fault"}


def test_every_fault_test_is_in_the_table():
    refs = table_tests()
    for path in sorted(ROOT.glob("tests/test_faults_*.py")):
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE):
            if name not in META:
                assert (f"tests/{path.name}", name) in refs, f"add tests/{path.name}::{name} to docs/faults.md"
