"""The study CLI's logic: configurations, names, overrides, and the statistics behind verdicts."""

import json
import os
import subprocess
import time

import pytest
import yaml

from fmnist.all_params import validate_all
from fmnist.studies import report, spec, statistics
from tests.conftest import ROOT, committed, merged, shipped_raw, write_params

GRID = {
    "seed": "test",
    "description": "a 2x2 grid",
    "family": "mlp",
    "fixed": {"epochs": 3, "dropout": 0.1},
    "grid": {
        "activation": {"relu": {"activation": "relu"}, "tanh": {"activation": "tanh"}},
        "width": {"narrow": {"hidden": [8]}, "wide": {"hidden": [32], "dropout": 0.0}},
    },
    "repeats": 2,
    "claims": [{"text": "relu > tanh", "factor": "activation", "order": ["relu", "tanh"]}],
}


def test_a_grid_crosses_every_level_and_later_factors_win():
    configs = spec.configurations(GRID)
    assert [c.label() for c in configs] == [
        "activation=relu, width=narrow",
        "activation=relu, width=wide",
        "activation=tanh, width=narrow",
        "activation=tanh, width=wide",
    ]
    assert configs[1].settings == {"epochs": 3, "dropout": 0.0, "activation": "relu", "hidden": [32]}
    assert {c.family for c in configs} == {"mlp"}


def test_a_family_factor_picks_the_family():
    configs = spec.configurations({**GRID, "grid": {"family": {"mlp": {}, "cnn": {}}}})
    assert [c.family for c in configs] == ["mlp", "cnn"]


def test_random_search_is_seeded_and_samples_from_the_space():
    space = {"family": "mlp", "random": {"samples": 5, "seed": 1, "space": {
        "learning_rate": {"log_uniform": [0.0001, 0.01]}, "batch_size": [32, 64]}}}  # fmt: skip
    first, again = spec.configurations(space), spec.configurations(space)
    assert first == again
    assert len(first) == 5
    assert all(0.0001 <= c.settings["learning_rate"] <= 0.01 for c in first)
    assert {c.settings["batch_size"] for c in first} <= {32, 64}


def test_overrides_go_into_the_family_block_and_are_valid_params():
    config = spec.configurations(GRID)[1]
    args = spec.overrides(config, spec.Budget(epochs=1, train_limit=500), repeat=1)
    assert args == [
        "++families.mlp.activation=relu",
        "++families.mlp.dropout=0.0",
        "++families.mlp.epochs=1",
        "++families.mlp.hidden=[32]",
        "++families.mlp.seed=1",
        "preprocess.train_limit=500",
    ]
    # What DVC would write: each value parsed back (Hydra reads YAML-like values) validates.
    raw = {"families": {"mlp": {a.split("=")[0].rsplit(".", 1)[1]: yaml.safe_load(a.split("=")[1]) for a in args[:-1]}}}
    assert validate_all(merged(shipped_raw(), raw))["families"]["mlp"]["hidden"] == [32]


def test_experiment_names_are_deterministic_and_change_with_settings_budget_and_repeat():
    a, b = spec.configurations(GRID)[:2]
    name = spec.experiment_name("s", a, spec.Budget(), 0)
    assert name == spec.experiment_name("s", a, spec.Budget(), 0)
    assert name.startswith("s-")
    assert name.endswith("-r0")
    others = {
        spec.experiment_name("s", b, spec.Budget(), 0),
        spec.experiment_name("s", a, spec.Budget(epochs=1), 0),
        spec.experiment_name("s", a, spec.Budget(), 1),
    }
    assert name not in others
    assert len(others) == 3


def test_a_study_with_a_bad_value_is_refused_before_anything_runs(tmp_path):
    bad = {**GRID, "fixed": {"epochs": 0}}
    (tmp_path / "studies.yaml").write_text(yaml.safe_dump({"broken": bad}))
    with pytest.raises(spec.StudyError, match=r"study 'broken'.*families\.mlp\.epochs = 0 is not allowed"):
        spec.load_studies(tmp_path / "studies.yaml")


def test_shipped_studies_load_and_their_claims_name_real_levels():
    studies = spec.load_studies()
    assert set(studies) == {
        "seed000-grid",
        "seed002-progression",
        "seed001-fcn-tuning",
        "seed001-fcn-vs-alexnet",
        "seed004-bn-dropout-ablation",
        "seed004-random-search",
        "headline-seeds",
    }
    assert len(spec.configurations(studies["seed000-grid"])) >= 16
    for s in studies.values():
        for claim in s.get("claims", []):
            levels = set(s["grid"][claim["factor"]])
            named = set(claim.get("order", [])) | {lv for g in claim.get("groups", {}).values() for lv in g}
            named |= {claim["level"]} if "level" in claim else set()
            assert named <= levels, claim


def test_the_headline_study_repeats_every_shipped_family_and_judges_those_a_seed_had():
    # A family no seed had (a LeNet-5 added as docs/extending.md says) is in the grid with no claim:
    # its headline row has its figures and no seed verdict.
    from fmnist.all_params import load_params

    study = spec.load_studies()["headline-seeds"]
    families = list(load_params()["families"])
    assert [c.family for c in spec.configurations(study)] == families
    assert {claim["level"] for claim in study["claims"]} <= set(families)
    assert {claim["level"] for claim in study["claims"]} >= {"mlp", "dnn", "cnn", "alexnet", "airbench"}


def test_a_run_of_the_shipped_settings_overrides_nothing_so_dvc_restores_it_from_its_cache():
    from fmnist.all_params import load_params

    params = load_params()
    shipped = spec.configurations({**GRID, "fixed": {}, "grid": {"family": {"cnn": {}}}})[0]
    assert spec.overrides(shipped, spec.Budget(), repeat=params["train"]["seed"], params=params) == []
    assert spec.overrides(shipped, spec.Budget(), repeat=1, params=params) == ["++families.cnn.seed=1"]
    changed = spec.configurations({**GRID, "fixed": {"epochs": 2, "filters": params["families"]["cnn"]["filters"]}})
    assert spec.overrides(
        spec.Config(changed[0].labels, "cnn", {"epochs": 2, "filters": params["families"]["cnn"]["filters"]}),
        spec.Budget(),
        repeat=0,
        params=params,
    ) == ["++families.cnn.epochs=2"]


def test_a_claim_that_a_level_beats_a_reported_figure_is_a_one_sample_t_test(tmp_path):
    claim = {"text": "relu beats seed 004's CNN", "factor": "activation", "level": "relu", "beats": "seed 004: CNN"}
    above = statistics.judge(claim, runs({"relu": [0.930, 0.932, 0.929]}))
    assert above["verdict"] == "supported"
    assert above["tests"][0]["test"] == "one-sample t-test"
    assert above["tests"][0]["mean_b"] == 0.92
    # mean 0.93033 against 0.92, sd 0.0015275: t = 0.010333 / (0.0015275 / sqrt 3) = 11.72, df 2, p = 0.0072
    assert above["tests"][0]["p"] == pytest.approx(0.0072, abs=1e-4)
    assert statistics.judge(claim, runs({"relu": [0.9185, 0.9220, 0.9205]}))["verdict"] == "tie"
    assert statistics.judge(claim, runs({"relu": [0.910, 0.912, 0.909]}))["verdict"] == "contradicted"
    assert statistics.judge(claim, runs({"relu": [0.95]}))["verdict"] == "untestable"
    text = report.markdown(
        statistics.summarize("s", {**GRID, "claims": [claim]}, runs({"relu": [0.930, 0.932, 0.929]}), spec.Budget(), 3),
        None,
    )
    assert "| the seed's claim | verdict (one-sample t-test, alpha 0.05) | evidence |" in text
    assert "relu 93.03% vs seed 004: CNN 92.00%" in text

    bad = tmp_path / "studies.yaml"
    bad.write_text(yaml.safe_dump({"s": {**GRID, "claims": [{**claim, "beats": "seed 009: CNN"}]}}))
    with pytest.raises(spec.StudyError, match="no reported figure 'seed 009: CNN'; known: seed 001: AlexNet"):
        spec.load_studies(bad)


def runs(accuracies: dict[str, list[float]]) -> list[spec.Run]:
    configs = {
        c.labels["activation"]: c
        for c in spec.configurations({**GRID, "grid": {"activation": GRID["grid"]["activation"]}})
    }
    return [
        spec.Run(f"r{i}", configs[level], i, accuracy=acc)
        for level, accs in accuracies.items()
        for i, acc in enumerate(accs)
    ]


def test_welch_verdicts_supported_contradicted_tie_and_untestable():
    claim = GRID["claims"][0]
    better = runs({"relu": [0.90, 0.91, 0.905], "tanh": [0.80, 0.81, 0.805]})
    assert statistics.judge(claim, better)["verdict"] == "supported"
    assert (
        statistics.judge(claim, runs({"relu": [0.80, 0.81, 0.805], "tanh": [0.90, 0.91, 0.905]}))["verdict"]
        == "contradicted"
    )
    noisy = statistics.judge(claim, runs({"relu": [0.85, 0.90, 0.80], "tanh": [0.86, 0.81, 0.84]}))
    assert noisy["verdict"] == "tie"
    assert noisy["tests"][0]["p"] > 0.05
    assert statistics.judge(claim, runs({"relu": [0.9], "tanh": [0.8]}))["verdict"] == "untestable"


def test_welch_p_value_matches_a_hand_computed_case():
    # a = (1, 2, 3), b = (4, 5, 6): t = -3 / sqrt(2/3) = -3.674, df = 4, two-sided p = 0.02131
    assert statistics.welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])["p"] == pytest.approx(0.02131, abs=1e-4)


def test_a_random_search_report_shows_what_each_configuration_drew():
    space = {"learning_rate": {"log_uniform": [0.0001, 0.01]}, "epochs": [5, 10]}
    search = {"seed": "t", "description": "d", "family": "mlp", "random": {"samples": 2, "seed": 1, "space": space}}
    configs = spec.configurations(search)
    found = [spec.Run(f"r{i}", c, r, accuracy=0.8 + i / 10 + r / 100) for i, c in enumerate(configs) for r in (0, 1)]
    text = report.markdown(statistics.summarize("s", search, found, spec.Budget(), 2), None)
    assert "| configuration | sampled settings | test accuracy (mean ± std) | n |" in text
    best = configs[1].settings
    assert f"| **config=02** | epochs {best['epochs']}, learning_rate {best['learning_rate']:.3g} | 90.50% ±" in text


def test_a_cut_study_says_so_in_its_header_json_and_chart_and_calls_nothing_best(tmp_path, monkeypatch):
    study = {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}  # as runs() makes them
    found = runs({"relu": [0.30, 0.28], "tanh": [0.12, 0.10]})
    cut = statistics.summarize("s", study, found, spec.Budget(epochs=1, train_limit=1000), 2)
    assert cut["best"] is None
    assert cut["budget"]["cut"] is True
    assert {row["settings"]["epochs"] for row in cut["configurations"]} == {1}  # what ran, not the study's 3
    text = report.markdown(cut, None)
    assert text.startswith("# Study s (seed test), CUT to epochs 1, train_limit 1000\n")
    assert "**A cut run: epochs 1, train_limit 1000, not the settings the description names.**" in text
    assert "| **" not in text  # no configuration in bold
    whole = statistics.summarize("s", study, found, spec.Budget(), 2)
    assert (whole["best"], whole["budget"]["cut"]) == ("activation=relu", False)
    assert {row["settings"]["epochs"] for row in whole["configurations"]} == {3}
    assert "CUT" not in report.markdown(whole, None)

    monkeypatch.chdir(tmp_path)
    # Every planned run found (under the planned names: a run missing would be named in the report).
    monkeypatch.setattr(report, "collect", lambda planned: [spec.Run(p.name, f.config, f.repeat, f.accuracy)
                                                            for p, f in zip(planned, found, strict=True)])  # fmt: skip
    saved = {}
    monkeypatch.setattr(
        report.plotting, "save_figure", lambda figure, path: saved.update(title=figure.axes[0].get_title())
    )
    report.report("s", study, spec.Budget(epochs=1, train_limit=1000), 2)
    assert saved["title"].startswith("CUT: s (epochs 1, train_limit 1000")
    assert (tmp_path / "metrics/studies/s.epochs1.limit1000.md").read_text() == text


def test_runs_missing_from_a_report_are_named_with_the_task_of_the_array_job_that_runs_them():
    from fmnist.studies.__main__ import missing_runs

    summary = {"planned": 8, "missing": [[1, "s-a-r1"], [5, "s-c-r1"], [6, "s-d-r0"]]}
    assert missing_runs("s", summary, 4, spec.Budget(epochs=1)) == (
        "s: 3 of 8 runs missing (s-a-r1, s-c-r1, s-d-r0); they are tasks 2,3 of 4: resubmit alone with "
        "sbatch --array=2,3 .dvc/tmp/studies/s.epochs1.sbatch, then report again"
    )
    assert missing_runs("s", summary, None, spec.Budget()) == (
        "s: 3 of 8 runs missing (s-a-r1, s-c-r1, s-d-r0); run them: python -m fmnist.studies run s "
        "(the same budget flags)"
    )
    assert missing_runs("s", {"configurations": []}, 4, spec.Budget()) is None


def test_a_which_matters_more_claim_weighs_both_factors():
    grid = {**GRID, "grid": {"activation": GRID["grid"]["activation"], "width": GRID["grid"]["width"]}}
    claim = {"text": "width matters more", "factor": "width", "versus": "activation",
             "groups": {"wide": ["wide"], "narrow": ["narrow"]}}  # fmt: skip

    def judged(acc: dict[tuple[str, str], list[float]]) -> dict:
        configs = {(c.labels["activation"], c.labels["width"]): c for c in spec.configurations(grid)}
        found = [spec.Run(f"r{i}", configs[k], i, accuracy=a) for k, accs in acc.items() for i, a in enumerate(accs)]
        return statistics.judge(claim, found)

    noise = [0.0, 0.004, -0.004]
    # Width does nothing, activation moves accuracy by 10 points: contradicted, not merely "not shown".
    flat_width = {(act, w): [base + n for n in noise] for act, base in (("relu", 0.9), ("tanh", 0.8))
                  for w in ("wide", "narrow")}  # fmt: skip
    assert judged(flat_width)["verdict"] == "contradicted"
    # Width moves it by 10 points, activation by 1: supported.
    wide_wins = {(act, w): [0.8 + (0.1 if w == "wide" else 0) + (0.01 if act == "relu" else 0) + n for n in noise]
                 for act in ("relu", "tanh") for w in ("wide", "narrow")}  # fmt: skip
    assert judged(wide_wins)["verdict"] == "supported"
    # Neither factor shows anything: not shown.
    assert (
        judged({(a, w): [0.85 + n for n in noise] for a in ("relu", "tanh") for w in ("wide", "narrow")})["verdict"]
        == "tie"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "seed002-progression", "--epochs", "0"],
            "error: --epochs 0 is not allowed; expected an integer >= 1 and <= 1000\n",
        ),
        (["run", "seed002-progression", "--epochs", "-3"], "--epochs -3 is not allowed"),
        (["run", "seed002-progression", "--jobs", "x"], "--jobs x is not allowed; expected an integer >= 1"),
        (["run", "seed002-progression", "--repeats", "0"], "--repeats 0 is not allowed"),
        (["report", "seed002-progression", "--train-limit", "5"], "--train-limit 5 is not allowed"),
        (["run", "seed002-progression", "--epochs", "2.5"], "--epochs 2.5 is not allowed"),
        (["run", "seed002-progression", "--shard", "3/2"], "--shard 3/2 is not allowed; expected I/N with 1 <= I <= N"),
        (["run", "seed002-progression", "--shard", "0/2"], "--shard 0/2 is not allowed"),
        (["run", "seed002-progression", "--shard", "half"], "--shard half is not allowed"),
        (["run", "seed002-progression", "--epochs", "[1"], "--epochs [1 is not allowed; expected an integer"),
        (["report", "seed002-progression", "--repeats", "{a: 1"], "--repeats {a: 1 is not allowed"),
    ],
)
def test_every_study_flag_is_checked_up_front_in_one_line(tmp_path, monkeypatch, capsys, args, message):
    from fmnist.studies.__main__ import main
    from fmnist.utils.errors import run_stage

    monkeypatch.chdir(tmp_path)  # no project here: a flag must fail before anything is read or queued
    assert run_stage(main, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_a_cut_budget_reports_under_its_own_name_never_over_the_studys_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = {"metrics/studies/test.md": "the report of record\n", "metrics/studies/test.json": "{}\n"}
    for path, text in record.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    study = {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}
    cut = spec.Budget(epochs=2, train_limit=5000)
    asked = []
    finished = runs({"relu": [0.90, 0.91], "tanh": [0.80, 0.81]})

    def collect(planned):
        asked.extend(planned)
        return finished

    monkeypatch.setattr(report, "collect", collect)
    report.report("test", study, cut, repeats=2)
    own = {run.name for run in spec.planned_runs("test", study, spec.Budget(), 2)}
    assert asked
    assert own.isdisjoint(run.name for run in asked)  # the cut budget's runs, not the study's own
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "metrics/studies/test.epochs2.limit5000.json",
        "metrics/studies/test.epochs2.limit5000.md",
        "metrics/studies/test.json",
        "metrics/studies/test.md",
        "plots/studies/test.epochs2.limit5000.png",
    ]
    assert all((tmp_path / path).read_text() == text for path, text in record.items())
    assert "Budget: epochs 2, train_limit 5000;" in (tmp_path / "metrics/studies/test.epochs2.limit5000.md").read_text()


def test_the_estimate_counts_training_images_at_the_benchmarks_rate_plus_a_cost_per_run(tmp_path, monkeypatch):
    from fmnist.studies import runner

    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/benchmark.json").write_text('{"throughput": {"mlp": {"ours_images_per_second": 1000.0}}}')
    params = validate_all(shipped_raw())
    runs = spec.planned_runs("s", GRID, spec.Budget(epochs=2, train_limit=5000), repeats=2)
    expected = len(runs) * 5000 * 2 / 1000.0 + runner.SECONDS_PER_RUN * len(runs) / 2
    assert runner.estimate_seconds(runs, spec.Budget(epochs=2, train_limit=5000), 2, params) == pytest.approx(expected)
    mlp = spec.planned_runs("s", {**GRID, "fixed": {}, "grid": {}}, spec.Budget(), repeats=1)  # the family's epochs
    expected = len(mlp) * 54000 * params["families"]["mlp"]["epochs"] / 1000.0 + runner.SECONDS_PER_RUN * len(mlp)
    assert runner.estimate_seconds(mlp, spec.Budget(), 1, params) == pytest.approx(expected)
    cnn = spec.planned_runs("s", {**GRID, "family": "cnn", "grid": {}}, spec.Budget(), repeats=1)
    assert runner.estimate_seconds(cnn, spec.Budget(), 1, params) is None  # no rate for the cnn here


def test_readme_shows_the_committed_headline_study():
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- headline-seeds:start -->\n", "<!-- headline-seeds:end -->"
    shown = readme[readme.index(start) + len(start) : readme.index(end)]
    report_md = committed("metrics/studies/headline-seeds.md")
    assert shown == report_md[report_md.index("| configuration |") :], "regenerate it: python -m fmnist.docs"


def test_a_resumed_study_adds_its_wall_time_at_the_same_commit_and_starts_again_at_another():
    from fmnist.studies.runner import wall_record

    earlier = {"baseline": "abc1234", "runs": 15, "wall_seconds": 1200.0}
    same = wall_record(earlier, {"baseline": "abc1234", "runs": 15}, 300.04)
    assert same == {"baseline": "abc1234", "runs": 15, "wall_seconds": 1500.0}
    moved = wall_record(earlier, {"baseline": "def5678", "runs": 15}, 300.04)
    assert moved == {"baseline": "def5678", "runs": 15, "wall_seconds": 300.0}
    assert wall_record({}, {"baseline": "abc1234"}, 12.0)["wall_seconds"] == 12.0


def test_a_study_run_without_dvc_on_path_says_to_activate_the_venv(tmp_path, monkeypatch, capsys):
    import shutil

    from fmnist.studies.__main__ import main
    from fmnist.utils.errors import run_stage

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))  # git, but no dvc
    shutil.copy(ROOT / "params.yaml", tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    assert run_stage(main, ["run", "headline-seeds"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error: no 'dvc' command on PATH; activate the project's venv (source .venv/bin/activate)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "params.yaml"]  # nothing queued or written


# `dvc exp show --all-commits --json` of DVC 3.67.1, made in a scratch repository: a baseline with
# accuracy 0.1, then two queued experiments run by `dvc exp run --run-all`: "good" (0.5) and
# "bad", whose command exited 3.
EXP_SHOW = ROOT / "tests/data/dvc_exp_show.json"


def shown_experiments() -> dict:
    from fmnist.studies import runner

    return runner.parse_experiments(json.loads(EXP_SHOW.read_text()))


def test_experiments_are_read_from_dvcs_own_json_with_their_state():
    found = shown_experiments()
    assert sorted(found) == ["bad", "good"]  # the workspace and the baseline are not experiments
    assert (found["good"]["state"], found["bad"]["state"]) == ("success", "failed")
    metrics = found["good"]["data"]["metrics"]["metrics/evaluate/mlp/metrics.json"]["data"]
    assert metrics == {"mlp": 0.5}


def test_a_failed_run_is_not_collected_though_dvc_shows_it_with_the_baselines_metrics(monkeypatch):
    from fmnist.studies import runner

    found = shown_experiments()
    assert found["bad"]["data"]["metrics"]["metrics/evaluate/mlp/metrics.json"]["data"]["mlp"] == 0.1
    planned = spec.planned_runs("test", {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}, spec.Budget(), 1)
    monkeypatch.setattr(runner, "experiments", lambda: {planned[0].name: found["good"], planned[1].name: found["bad"]})
    collected = runner.collect(planned)
    assert [(r.name, r.accuracy) for r in collected] == [(planned[0].name, 0.5)]


def test_a_run_made_before_the_metric_was_one_column_a_family_is_still_collected(monkeypatch):
    from fmnist.studies import runner

    planned = spec.planned_runs("test", {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}, spec.Budget(), 1)
    earlier = {"metrics": {"metrics/evaluate/mlp/metrics.json": {"data": {"test": {"accuracy": 0.7}}}}}
    monkeypatch.setattr(runner, "experiments", lambda: {planned[0].name: {"state": "success", "data": earlier}})
    assert [(r.name, r.accuracy) for r in runner.collect(planned)] == [(planned[0].name, 0.7)]


def test_two_shards_run_every_run_once_between_them_push_their_own_and_record_no_wall_time(tmp_path, monkeypatch):
    from fmnist.studies import runner

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    planned = spec.planned_runs("test", GRID, spec.Budget(), 2)
    found = shown_experiments()
    real_popen = subprocess.Popen
    monkeypatch.setattr(runner.subprocess, "Popen", lambda args, **kw: real_popen(["true"], **kw))  # the queue
    monkeypatch.setattr(runner, "check_push", lambda remote: None)  # its own test: no remote here
    queued, pushed = {}, {}
    for shard in (1, 2):
        states = iter([{}, {r.name: found["good"] for r in planned}])  # before the queue, then after it
        monkeypatch.setattr(runner, "experiments", lambda states=states: next(states))
        calls = []
        monkeypatch.setattr(runner, "dvc", lambda *args, calls=calls: calls.append(args) or "")
        runner.run("test", GRID, spec.Budget(), repeats=2, jobs=1, shard=(shard, 2), push="origin")
        queued[shard] = [args[4] for args in calls if args[:3] == ("exp", "run", "--queue")]
        pushed[shard] = calls[-1]
    assert sorted(queued[1] + queued[2]) == sorted(r.name for r in planned)  # each run once
    assert len(queued[1]) == len(queued[2]) == len(planned) // 2
    assert pushed == {shard: ("exp", "push", "origin", *sorted(queued[shard])) for shard in (1, 2)}
    assert not (tmp_path / spec.REPORTS).exists()


def test_a_study_whose_runs_failed_says_how_many_and_where_the_log_is_and_records_no_wall_time(
    tmp_path, monkeypatch, capsys
):
    from fmnist.studies import runner

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    study = {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}
    planned = spec.planned_runs("test", study, spec.Budget(), 1)
    found = shown_experiments()
    states = iter([{}, {planned[0].name: found["good"], planned[1].name: found["bad"]}])
    monkeypatch.setattr(runner, "experiments", lambda: next(states))
    queued = []
    monkeypatch.setattr(runner, "dvc", lambda *args: queued.append(args) or "")
    real_popen = subprocess.Popen
    monkeypatch.setattr(runner.subprocess, "Popen", lambda args, **kw: real_popen(["true"], **kw))  # the queue
    with pytest.raises(spec.StudyError) as err:
        runner.run("test", study, spec.Budget(), repeats=1, jobs=2)
    bad = planned[1].name
    assert str(err.value) == f"1 of 2 runs failed, e.g. {bad}; see 'dvc queue logs {bad}', then run again"
    assert [args[:4] for args in queued] == [("exp", "run", "--queue", "--name")] * 2
    assert not (tmp_path / spec.REPORTS).exists()


def test_the_queue_reports_runs_as_they_finish_with_the_time_to_go_at_the_measured_pace(tmp_path, monkeypatch, capsys):
    from fmnist.studies import runner

    assert runner.progress("s", 2, 10, 600) == "s: 2 of 10 runs done in 10 min; about 40 min to go at that pace"
    assert runner.progress("s", 0, 10, 60).startswith("s: 0 of 10 runs done after 1 min")

    # The queue: each run's ref appears as DVC writes it when the run succeeds, 2 s apart.
    refs = "; ".join(f"sleep 2; git update-ref refs/exps/ab/cdef01/{{{i}.name}} HEAD" for i in range(2))
    study = queue_test(tmp_path, monkeypatch, f"{refs}; sleep 2")
    runner.run("test", study, spec.Budget(), repeats=1, jobs=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("test: looking for its runs among the experiments here")  # before dvc exp show
    assert "test: 1 of 2 runs done in 0 min; about 0 min to go at that pace" in lines
    assert "test: 2 of 2 runs done in 0 min; about 0 min to go at that pace" in lines


def queue_test(tmp_path, monkeypatch, script: str) -> dict:
    """A two-run study whose DVC queue is ``script`` (sh; ``{0.name}``: the first run's name), in a
    git repository at ``tmp_path``."""
    from fmnist.studies import runner

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "0"])
    study = {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}
    planned = spec.planned_runs("test", study, spec.Budget(), 1)
    found = shown_experiments()
    states = iter([{}, {r.name: found["good"] for r in planned}])
    monkeypatch.setattr(runner, "experiments", lambda: next(states))
    monkeypatch.setattr(runner, "dvc", lambda *args: "")
    monkeypatch.setattr(runner, "PROGRESS_SECONDS", 1)
    real_popen = subprocess.Popen

    def popen(args, **kw):  # subprocess.run calls it too, for git
        return real_popen(["sh", "-c", script.format(*planned)] if args[:3] == ["dvc", "exp", "run"] else args, **kw)

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    return study


def test_only_reruns_one_finished_run_of_a_study_and_refuses_a_name_it_lacks_in_one_line(tmp_path, monkeypatch):
    from fmnist.studies import runner

    study = queue_test(tmp_path, monkeypatch, "true")
    planned = spec.planned_runs("test", study, spec.Budget(), 1)
    found = shown_experiments()
    monkeypatch.setattr(runner, "experiments", lambda: {r.name: found["good"] for r in planned})  # both finished
    called = []
    monkeypatch.setattr(runner, "dvc", lambda *args: called.append(args) or "")
    runner.run("test", study, spec.Budget(), repeats=1, jobs=1, only=planned[1].name)
    assert called[0] == ("exp", "remove", planned[1].name)
    assert [args[4] for args in called[1:]] == [planned[1].name]  # queued: that run alone
    assert not (tmp_path / spec.REPORTS).exists()  # one run's time is not the study's

    with pytest.raises(spec.StudyError) as err:
        runner.run("test", study, spec.Budget(), repeats=1, jobs=1, only=planned[1].name[:-1] + "7")
    assert str(err.value) == (
        f"--only {planned[1].name[:-1]}7: test has no run of that name at this budget; did you mean "
        f"{planned[1].name}? its runs are named {planned[0].name} and so on (dvc exp list --name-only)"
    )


def test_a_queue_where_no_run_finishes_for_the_stall_time_is_stopped_with_one_line(tmp_path, monkeypatch):
    from fmnist.studies import runner

    study = queue_test(tmp_path, monkeypatch, "echo $$ > queue.pid; exec sleep 600")
    monkeypatch.setattr(runner, "stall_seconds", lambda *args: 4.0)
    start = time.monotonic()
    with pytest.raises(spec.StudyError) as err:
        runner.run("test", study, spec.Budget(), repeats=1, jobs=1)
    assert time.monotonic() - start < 60  # not the queue's 600 s
    assert err.value.exit_code == 1
    assert str(err.value) == (
        "test: no run finished in 0 min, so DVC's queue was stopped as stuck (treeverse/dvc#8165); "
        "see .dvc/tmp/studies/test.log and 'dvc queue status', then run again (finished runs are kept)"
    )
    pid = int((tmp_path / "queue.pid").read_text())
    with pytest.raises(ProcessLookupError):  # the hung queue is gone, not left running
        os.kill(pid, 0)


def test_a_queue_that_does_not_return_once_every_run_finished_is_stopped_and_the_study_goes_on(
    tmp_path, monkeypatch, capsys
):
    from fmnist.studies import runner

    refs = "; ".join(f"git update-ref refs/exps/ab/cdef01/{{{i}.name}} HEAD" for i in range(2))
    study = queue_test(tmp_path, monkeypatch, f"{refs}; exec sleep 600")
    start = time.monotonic()
    runner.run("test", study, spec.Budget(), repeats=1, jobs=1)
    assert time.monotonic() - start < 60
    out = capsys.readouterr().out
    assert "test: every run finished but DVC's queue did not return (treeverse/dvc#8165); stopped it" in out
    assert (tmp_path / spec.REPORTS / "test.run.json").exists()  # the study went on to record it


def test_the_stall_time_is_three_times_the_longest_run_on_the_shared_machine_and_never_under_ten_minutes():
    from fmnist.studies import runner

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    study = {**GRID, "grid": {"activation": GRID["grid"]["activation"]}}
    planned = spec.planned_runs("test", study, spec.Budget(), 1)
    alone = runner.estimate_seconds(planned[:1], spec.Budget(), 1, params)
    assert runner.stall_seconds(planned, spec.Budget(), 2, params) == max(600.0, 3 * 2 * alone)
    assert runner.stall_seconds(planned, spec.Budget(epochs=1, train_limit=100), 1, params) == 600.0


def test_a_push_that_could_not_take_the_runs_is_refused_in_one_line_before_any_run(tmp_path, monkeypatch):
    import shutil

    from fmnist.studies import runner

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    if not shutil.which("dvc"):  # the venv's, where pytest runs without it activated
        monkeypatch.setenv("PATH", f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["dvc", "init", "-q"], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "shared.git")], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(tmp_path / "shared.git")], check=True)
    queued = []
    monkeypatch.setattr(runner, "dvc", lambda *args: queued.append(args) or "")
    with pytest.raises(spec.StudyError) as err:
        runner.run("test", GRID, spec.Budget(), repeats=1, jobs=1, push="no-such-remote")
    assert str(err.value).startswith("--push no-such-remote: git cannot reach it as a remote (")
    assert str(err.value).endswith("name one of this repository's remotes (origin)")
    with pytest.raises(spec.StudyError) as err:
        runner.run("test", GRID, spec.Budget(), repeats=1, jobs=1, push="origin")
    assert str(err.value) == (
        "--push origin: DVC has no default remote for the runs' outputs; add one: dvc remote add -d NAME URL"
    )
    assert queued == []  # refused before the first run was queued, or even looked for
    subprocess.run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "store")], check=True)
    runner.check_push("origin")  # both remotes there: accepted
