import re

import pytest
import yaml

from stages.errors import ParamsError, run_stage
from stages.params import SCHEMA, Family, Param, defaults, family_config, load_params, reference_markdown, validate
from tests.conftest import ROOT, set_override


def error(raw) -> str:
    with pytest.raises(ParamsError) as err:
        validate(raw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_shipped_params_are_exactly_the_schema_defaults():
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == defaults()
    assert load_params(ROOT / "params.yaml") == defaults()


def test_readme_reference_matches_schema():
    readme = (ROOT / "README.md").read_text()
    assert reference_markdown() in readme, "regenerate the README's table with: python -m stages.params"


def test_missing_keys_take_defaults():
    assert validate({"preprocess": {"seed": 7}})["preprocess"] == {**defaults()["preprocess"], "seed": 7}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"preprocess": {"val_fraction": 2}},
            "preprocess.val_fraction = 2 is not allowed; expected a number > 0 and < 1",
        ),
        ({"preprocess": {"val_fraction": "0.1"}}, "preprocess.val_fraction = '0.1' is not allowed; expected a number"),
        ({"preprocess": {"train_limit": -1}}, "preprocess.train_limit = -1 is not allowed; expected an integer >= 0"),
        ({"preprocess": {"train_limit": 1.5}}, "expected an integer >= 0"),
        ({"preprocess": {"seed": True}}, "preprocess.seed = True is not allowed"),
        ({"preprocess": {"normalization": "minmax"}}, "expected one of scale, standardize"),
        ({"preprocess": {"val_fraction": float("nan")}}, "val_fraction = nan is not allowed"),
        ({"download": {"sources": []}}, "download.sources = [] is not allowed; expected a list of at least 1 strings"),
        ({"download": {"sources": "http://x"}}, "expected a list of at least 1 strings"),
        ({"download": {"sha256": {"t10k-labels-idx1-ubyte": "ABC"}}}, "download.sha256.t10k-labels-idx1-ubyte = 'ABC'"),
        ({"trian": {"epochs": 3}}, "unknown key 'trian'"),
        (
            {"preprocess": {"val_fracton": 0.2}},
            "unknown key 'preprocess.val_fracton' (did you mean 'preprocess.val_fraction'?)",
        ),
        ({"download": {"sha256": {"evil/../name": "0" * 64}}}, "unknown key 'download.sha256.evil/../name'"),
        ({"preprocess": 3}, "'preprocess' must be a mapping"),
        ([1, 2], "the file must be a mapping"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(raw, message):
    assert message in error(raw)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "params.yaml is empty"),
        ("a: [1,\n", "params.yaml is not valid YAML at line"),
        ("- 1\n", "must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params()


def test_stage_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    from stages import preprocess

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("preprocess: {val_fraction: 2}\n")
    assert run_stage(preprocess.main, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "preprocess.val_fraction = 2" in err
    assert not (tmp_path / "data").exists()


def test_every_default_passes_its_own_check():
    def leaves(schema):
        for spec in schema.values():
            if isinstance(spec, Family):
                yield from leaves(spec.own)
            else:
                yield from leaves(spec) if isinstance(spec, dict) else [spec]

    for spec in leaves(SCHEMA):
        assert isinstance(spec, Param)
        assert spec.check(spec.default) == spec.default


def test_family_blocks_take_any_train_key_and_nothing_else():
    params = validate({"families": {"mlp": {"epochs": 3, "hidden": [8]}}})
    assert params["families"]["mlp"] == {"hidden": [8], "activations": [], "epochs": 3}
    assert family_config(params, "mlp")["epochs"] == 3
    assert family_config(params, "dnn")["epochs"] == params["train"]["epochs"]
    assert "families.mlp.epochs = 0 is not allowed" in error({"families": {"mlp": {"epochs": 0}}})
    assert "unknown key 'families.mlp.filters'" in error({"families": {"mlp": {"filters": [8]}}})
    assert "unknown key 'families.resnet'" in error({"families": {"resnet": {}}})
    assert "families.cnn.filters = [0] is not allowed" in error({"families": {"cnn": {"filters": [0]}}})
    assert "expected a list of at least 3 integers >= 1" in error({"families": {"alexnet": {"filters": [8, 8]}}})


def readme_overrides() -> list[tuple[str, str, str]]:
    """Every ``-S [++]key=value`` the README shows, as (prefix, key, value)."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"-S '?(\+\+)?([a-z_][a-z0-9_.]*)=([^\s'`]+)'?", text)
    return [(plus, key, value) for plus, key, value in found if key != "key"]


def test_readme_overrides_are_valid_and_plain_ones_name_existing_keys():
    overrides = readme_overrides()
    assert len(overrides) > 15
    for plus, key, value in overrides:
        params = defaults()
        existed = set_override(params, key, value)
        assert plus or existed, f"README: -S {key} needs '++' (the key is not in params.yaml)"
        if key == "preprocess.val_fraction" and value == "2":  # the README's example of an error
            assert "preprocess.val_fraction = 2 is not allowed" in error(params)
        else:
            validate(params)
