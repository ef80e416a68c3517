"""Fault injection, params: every key of the schema with a wrong type, an out-of-range value and an
unknown choice must fail with one line naming the key and what it allows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from fmnist.all_params import leaves, validate_all
from fmnist.config.schema import Param
from fmnist.utils.errors import ParamsError, run_stage
from stages import check
from tests.conftest import merged, shipped_raw


def wrong_values(spec: Param) -> Iterator[tuple[str, Any]]:
    """(fault, value) pairs that ``spec`` must refuse."""
    yield "wrong type", 123 if spec.kind is str else ("not a list" if spec.kind is list else "text")
    yield "mapping", {"nested": 1}
    if spec.kind is list:
        yield "wrong item type", [{"nested": 1}]
    step = 1 if (spec.item or spec.kind) is int else 1e-9
    for fault, bound, value in (
        ("below minimum", spec.ge, lambda b: b - step),
        ("at exclusive minimum", spec.gt, lambda b: b),
        ("above maximum", spec.le, lambda b: b + step),
        ("at exclusive maximum", spec.lt, lambda b: b),
    ):
        if bound is not None:
            number = (int if (spec.item or spec.kind) is int else float)(value(bound))
            yield fault, [number] if spec.kind is list else number
    if spec.choices:
        yield "unknown choice", ["bogus"] if spec.kind is list else "bogus"
    if spec.pattern:
        yield "pattern mismatch", ["not-a-device"] if spec.kind is list else "not-a-digest"


CASES = [
    pytest.param(name, value, spec, id=f"{name}:{fault}")
    for name, spec in leaves()
    for fault, value in wrong_values(spec)
]


def with_value(name: str, value: Any) -> dict[str, Any]:
    """The shipped params with one key set to ``value``."""
    *path, leaf = name.split(".")
    change: dict[str, Any] = {leaf: value}
    for part in reversed(path):
        change = {part: change}
    return merged(shipped_raw(), change)


@pytest.mark.parametrize(("name", "value", "spec"), CASES)
def test_every_key_refuses_bad_values_in_one_line(name, value, spec):
    with pytest.raises(ParamsError) as err:
        validate_all(with_value(name, value))
    message = str(err.value)
    assert "\n" not in message
    assert f"{name} = {value!r} is not allowed; expected {spec.allowed()}" in message


def test_the_generator_covers_every_key_and_every_kind_of_fault():
    names = {case.values[0] for case in CASES}
    assert names == {name for name, _ in leaves()}
    faults = {case.id.split(":", 1)[1] for case in CASES}
    assert faults >= {"wrong type", "below minimum", "above maximum", "at exclusive minimum", "unknown choice"}
    assert len(CASES) > 120


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize(
    ("name", "value", "spec"), [c for c in CASES if c.values[0].startswith("train.") and c.values[2].per_family]
)
def test_family_overrides_of_train_keys_are_checked_too(family, name, value, spec):
    key = f"families.{family}.{name.removeprefix('train.')}"
    with pytest.raises(ParamsError, match=f"{key} = "):
        validate_all(with_value(key, value))


# Values no sensible run takes, written out rather than taken from the schema's bounds: raising a
# bound past them must turn this red.
@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("epochs", 0, "error: params.yaml: train.epochs = 0 is not allowed; expected an integer >= 1 and <= 1000"),
        (
            "learning_rate",
            100,
            "error: params.yaml: train.learning_rate = 100 is not allowed; expected a number > 0 and <= 10",
        ),
        (
            "batch_size",
            100000,
            "error: params.yaml: train.batch_size = 100000 is not allowed; expected an integer >= 1 and <= 8192",
        ),
    ],
)
def test_a_learning_rate_of_100_or_a_batch_of_100000_is_refused_by_the_check_stage_in_one_line(
    key, value, line, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(merged(shipped_raw(), {"train": {key: value}})))
    assert run_stage(check.main, []) == 2
    assert capsys.readouterr().err == line + "\n"
    assert not (tmp_path / "data").exists()  # nothing written
