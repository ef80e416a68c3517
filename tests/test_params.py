import re

import pytest
import yaml

from fmnist.all_params import leaves, load_params, shipped_params, validate_all
from fmnist.config.params import evaluate_config, family_config
from fmnist.config.yaml_reader import parse_yaml
from fmnist.docs import parameter_reference
from fmnist.utils.errors import ParamsError, run_stage
from tests.conftest import ROOT, merged, set_override, shipped_raw


def error(changes) -> str:
    """The one-line error of the shipped params with ``changes`` merged in (a non-mapping replaces them)."""
    raw = merged(shipped_raw(), changes) if isinstance(changes, dict) else changes
    with pytest.raises(ParamsError) as err:
        validate_all(raw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_the_parameter_reference_is_generated_from_the_schema_and_the_shipped_values():
    page = (ROOT / "docs/parameters.md").read_text()
    assert page == parameter_reference(), "regenerate it: python -m fmnist.docs"
    assert all(f"`{name}`" in page for name, _ in leaves())


def test_a_missing_key_is_named_with_what_it_takes_and_nothing_falls_back_to_code(tmp_path, monkeypatch, capsys):
    from stages import check

    raw = shipped_raw()
    del raw["train"]["epochs"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_stage(check.main, []) == 2
    assert capsys.readouterr().err == (
        "error: params.yaml: missing key 'train.epochs' (an integer >= 1 and <= 1000); add it, or restore the "
        "shipped file with 'git checkout params.yaml'\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written
    del raw["families"]["cnn"]["filters"]
    raw["train"]["epochs"] = 3
    with pytest.raises(ParamsError, match=r"missing key 'families\.cnn\.filters'"):
        validate_all(raw)


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
        ("", "params.yaml is empty; restore it with 'git checkout params.yaml'"),
        ("a: [1,\n", "params.yaml is not valid YAML at line 2, column 1: expected the node content"),
        ("- 1\n", "params.yaml: the file must be a mapping of keys to values, got [1]"),
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
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(merged(shipped_raw(), {"preprocess": {"val_fraction": 2}})))
    assert run_stage(preprocess.main, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "preprocess.val_fraction = 2" in err
    assert not (tmp_path / "data").exists()


def test_the_shipped_params_pass_their_own_check_unchanged():
    assert shipped_params() == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_family_blocks_take_any_train_key_and_nothing_else():
    params = validate_all(merged(shipped_raw(), {"families": {"mlp": {"epochs": 3, "hidden": [8]}}}))
    assert params["families"]["mlp"]["hidden"] == [8]
    assert family_config(params, "mlp")["epochs"] == 3
    assert family_config(params, "dnn")["epochs"] == params["train"]["epochs"]
    assert "families.mlp.epochs = 0 is not allowed" in error({"families": {"mlp": {"epochs": 0}}})
    assert "unknown key 'families.mlp.filters'" in error({"families": {"mlp": {"filters": [8]}}})
    assert "unknown key 'families.resnet'" in error({"families": {"resnet": {}}})
    assert "fmnist/models/families/" in error({"families": {"resnet": {}}})
    assert "families.cnn.filters = [0] is not allowed" in error({"families": {"cnn": {"filters": [0]}}})
    assert "expected a list of at least 3 integers >= 1" in error({"families": {"alexnet": {"filters": [8, 8]}}})


def test_an_evaluate_block_named_after_a_family_sets_evaluate_keys_for_it_only():
    params = validate_all(merged(shipped_raw(), {"evaluate": {"views": "none", "cnn": {"views": "flip"}}}))
    assert evaluate_config(params, "cnn")["views"] == "flip"
    assert evaluate_config(params, "mlp")["views"] == "none"
    assert "cnn" not in evaluate_config(params, "cnn")
    assert "evaluate.cnn.views = 'mirror' is not allowed; expected one of none, flip, flip_shifts" in error(
        {"evaluate": {"cnn": {"views": "mirror"}}}
    )
    assert "unknown key 'evaluate.cnn.epochs'; allowed here: batch_size, mistakes" in error(
        {"evaluate": {"cnn": {"epochs": 3}}}
    )
    # A block for a family that params.yaml does not train is a typo, not a family.
    message = error({"evaluate": {"resnet": {}}})
    assert "unknown key 'evaluate.resnet'" in message
    assert message.endswith("allowed here: batch_size, mistakes, samples, views, or a family's block of these")
    assert "unknown key 'evaluate.view' (did you mean 'evaluate.views'?)" in error({"evaluate": {"view": "flip"}})


def readme_overrides() -> list[tuple[str, str, str]]:
    """Every ``-S [++]key=value`` the README and the docs show, as (prefix, key, value)."""
    text = "".join(path.read_text() for path in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))])
    found = re.findall(r"-S '?(\+\+)?([a-z_][a-z0-9_.]*)=([^\s'`]+)'?", text)
    return [(plus, key, value) for plus, key, value in found if key != "key"]


def swept(key: str, value: str) -> list[str]:
    """The values a Hydra sweep (``relu,tanh``, ``range(5,20,5)``) stands for, as DVC expands it with
    Hydra's own parser; a plain value alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_overrides([f"{key}={value}"])[0]
    return list(override.sweep_string_iterator()) if override.is_sweep_override() else [value]


def test_readme_overrides_are_valid_and_plain_ones_name_existing_keys():
    overrides = readme_overrides()
    assert len(overrides) > 15
    assert swept("families.cnn.epochs", "range(5,20,5)") == ["5", "10", "15"]  # the docs' sweep, run by DVC
    for plus, key, shown in overrides:
        for value in swept(key, shown):
            params = shipped_raw()
            existed = set_override(params, key, value)
            assert plus or existed, f"README: -S {key} needs '++' (the key is not in params.yaml)"
            if key == "preprocess.val_fraction" and value == "2":  # the README's example of an error
                assert "preprocess.val_fraction = 2 is not allowed" in error(params)
            else:
                validate_all(params)


def shipped_text_with(tail: str) -> str:
    return (ROOT / "params.yaml").read_text() + tail


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        # A second top-level block: YAML alone would keep it and drop every key of the first.
        (lambda text: text + "train:\n  epochs: 1\n", "train"),
        # A key repeated inside a block, whichever block.
        (lambda text: re.sub(r"(?m)^( +)epochs: ", r"\1epochs: 1\n\1epochs: ", text, count=1), "epochs"),
        (lambda text: re.sub(r"(?m)^( +)hidden: ", r"\1hidden: [8]\n\1hidden: ", text, count=1), "hidden"),
    ],
    ids=["section", "train-key", "family-key"],
)
def test_a_key_written_twice_is_one_line_naming_it_and_both_lines(tmp_path, monkeypatch, capsys, edit, key):
    from stages import preprocess

    monkeypatch.chdir(tmp_path)
    text = edit((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(text)
    # The first two places the key is written are the repeated pair (a family block may set it too).
    lines = [n for n, line in enumerate(text.splitlines(), 1) if re.match(rf"\s*{key}:", line)][:2]
    assert run_stage(preprocess.main, []) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: params.yaml: key '{key}' is written twice, at lines {lines[0]} and {lines[1]}; keep one "
        "(YAML would silently keep only the last)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("written", ["5e-4", "5E-4", "5.0e-4", "0.5e-3", "+5e-4"])
def test_numbers_in_scientific_notation_mean_what_dvc_exp_run_sets(tmp_path, monkeypatch, written):
    from dvc.utils.hydra import apply_overrides

    monkeypatch.chdir(tmp_path)
    text = (ROOT / "params.yaml").read_text()
    lr = re.search(r"^  learning_rate: (.*)$", text, re.M)
    (tmp_path / "params.yaml").write_text(text[: lr.start(1)] + written + text[lr.end(1) :])
    by_hand = load_params()["train"]["learning_rate"]
    (tmp_path / "params.yaml").write_text(text)
    apply_overrides("params.yaml", [f"train.learning_rate={written}"])  # what `dvc exp run -S` does
    assert by_hand == load_params()["train"]["learning_rate"] == 5e-4


@pytest.mark.parametrize("written", ["yes", "no", "on", "off", "Y", "017", "0o17", "1_000", "1:30", "~", ".5", "0x1F"])
def test_every_value_is_read_as_dvc_reads_it(written):
    from dvc.utils.serialize import parse_yaml as dvc_parse_yaml

    # YAML 1.1 (PyYAML) and YAML 1.2 (DVC's ruamel.yaml) disagree on each of these.
    text = f"train:\n  batch_norm: {written}\n"
    assert parse_yaml(text) == dvc_parse_yaml(text, "params.yaml")


def test_yes_is_text_so_a_switch_written_yes_is_refused_as_dvc_params_diff_shows_it(tmp_path, monkeypatch, capsys):
    from stages import check

    monkeypatch.chdir(tmp_path)
    text = re.sub(r"(?m)^  batch_norm: false$", "  batch_norm: yes", shipped_text_with(""))
    (tmp_path / "params.yaml").write_text(text)
    assert run_stage(check.main, []) == 2
    err = capsys.readouterr().err
    assert err == "error: params.yaml: train.batch_norm = 'yes' is not allowed; expected true or false\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_an_integer_key_written_as_a_float_still_says_it_wants_an_integer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^  epochs: .*$", "  epochs: 1e2", shipped_text_with("")))
    with pytest.raises(ParamsError, match=re.escape("train.epochs = 100.0 is not allowed; expected an integer")):
        load_params()


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_params_file_that_is_not_utf8_is_one_line(tmp_path, monkeypatch, capsys, encoding):
    from stages import preprocess

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_bytes(shipped_text_with("# café\n").encode(encoding))
    assert run_stage(preprocess.main, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.fullmatch(
        r"error: params\.yaml is not UTF-8 text: byte 0x[0-9a-f]{2} at line \d+ cannot be read; "
        r"save the file as UTF-8\n",
        err,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("stage", ["train", "evaluate", "export"])
def test_a_family_params_yaml_lacks_is_one_line_naming_those_it_has(tmp_path, monkeypatch, capsys, stage):
    import importlib

    main = importlib.import_module(f"stages.{stage}").main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    assert run_stage(main, ["resnet"]) == 2
    shipped = ", ".join(yaml.safe_load((ROOT / "params.yaml").read_text())["families"])
    assert capsys.readouterr().err == f"error: params.yaml: no family 'resnet' under 'families'; it has {shipped}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_onednn_is_one_setting_per_process_so_a_family_block_cannot_set_it():
    assert error({"families": {"mlp": {"onednn": False}}}) == (
        "params.yaml: families.mlp.onednn cannot be set per family, as TensorFlow reads it once per process; "
        "set train.onednn"
    )
