"""The real pipeline, run by DVC in a temporary git repository on synthetic data."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmnist.config.schema import TRAIN
from fmnist.reproduction.verdict import BIT_IDENTICAL, WITHIN_NOISE
from fmnist.studies.runner import parse_experiments
from tests import slurm_cluster
from tests.conftest import ROOT, TINY, committed, sha256s, synthetic_files, write_gz_dir

pytestmark = pytest.mark.e2e

# What the pipeline needs from the committed project; dvc.yaml declares the benchmark's and the
# studies' reports as metrics and plots.
PROJECT_FILES = [
    *["stages", "fmnist", "dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"],
    *["metrics/benchmark.json", "metrics/studies", "plots/studies"],
]


def sh(repo: Path, *args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    """Run a command in ``repo``; ``quiet``: discard its output instead of capturing it."""
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
        DVC_NO_ANALYTICS="1",
    )
    pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {"capture_output": True}
    result = subprocess.run(args, cwd=repo, env=env, text=True, **pipes)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


# The output of the first `dvc repro` of each module's project, which the repo fixture runs.
FIRST_REPRO: dict[Path, subprocess.CompletedProcess] = {}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project whose download sources point at synthetic files, built and committed.

    Every test starts from this state and leaves it so (``restore``), so each passes run alone.
    """
    repo = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, repo / name)
    files = synthetic_files()
    mirror = write_gz_dir(tmp_path_factory.mktemp("mirror"), files)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"].update(sources=[str(mirror)], sha256=sha256s(files))
    params["train"].update(epochs=1, batch_size=32)
    params["families"] = TINY
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    # The learning-curve template, and the chart page's (make builds it; its npm packages stay out).
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots", ignore=shutil.ignore_patterns("node_modules"))
    if (ROOT / ".dvc/plots/offline.html").is_file():  # as make does, when it has built the page
        sh(repo, "dvc", "config", "--local", "plots.html_template", "plots/offline.html")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "init")
    FIRST_REPRO[repo] = sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "repro")
    return repo


@pytest.fixture(autouse=True)
def back_to_the_built_commit(request):
    """After every test of the shared repository, passed or failed: its branch at the built commit,
    the workspace as committed. A test that commits, adds a remote or dies half-way through an
    experiment cannot leak into the next."""
    yield
    if "repo" not in request.fixturenames:
        return
    repo = request.getfixturevalue("repo")
    sh(repo, "git", "checkout", "-q", "-f", "main")  # a killed dvc exp run leaves HEAD detached
    built = sh(repo, "git", "rev-list", "-n", "1", "--grep=^repro$", "main").stdout.strip()
    sh(repo, "git", "reset", "-q", "--hard", built)
    sh(repo, "dvc", "checkout", "--force", quiet=True)


def ran_trainings(result: subprocess.CompletedProcess) -> set[str]:
    return {family for family in TINY if f"Running stage 'train@{family}'" in result.stdout}


def test_repro_then_nothing_reruns(repo):
    first = FIRST_REPRO[repo]
    assert "Running stage 'download'" in first.stdout
    assert "Running stage 'preprocess'" in first.stdout
    assert ran_trainings(first) == set(TINY)
    assert all(f"Running stage 'evaluate@{family}'" in first.stdout for family in TINY)
    assert "Running stage 'compare'" in first.stdout
    assert (repo / "data/processed/train.npz").exists()
    lock = (repo / "dvc.lock").read_text()

    again = sh(repo, "dvc", "repro")
    assert "Running stage" not in again.stdout
    assert (repo / "dvc.lock").read_text() == lock
    assert "up to date" in sh(repo, "dvc", "status").stdout
    # Every output is deterministic, so rerunning leaves git and DVC with nothing to record.
    assert sh(repo, "git", "status", "--porcelain").stdout == ""
    diff = sh(repo, "dvc", "metrics", "diff")
    assert diff.stdout.strip() == ""
    assert diff.stderr.strip() == ""


def test_train_key_reruns_every_family_and_family_key_only_its_own(repo):
    def test_losses() -> dict[str, float]:
        scores = {f: json.loads((repo / f"metrics/evaluate/{f}/scores.json").read_text()) for f in TINY}
        return {family: s["test"]["loss"] for family, s in scores.items()}

    before = test_losses()
    shared = sh(repo, "dvc", "exp", "run", "-S", "train.activation=tanh")
    assert ran_trainings(shared) == set(TINY)
    assert "Running stage 'preprocess'" not in shared.stdout
    # The workspace now holds the experiment: every family's test loss differs from HEAD's (its
    # accuracy may not: a tiny net can score the same on the synthetic test images either way).
    after = test_losses()
    assert all(after[family] != before[family] for family in TINY), (before, after)

    # Hydra's "++" sets a key whether or not the block holds it yet; plain -S refuses a new key.
    own = sh(repo, "dvc", "exp", "run", "-S", "++families.mlp.epochs=2")
    assert ran_trainings(own) == {"mlp"}
    shown = sh(repo, "dvc", "exp", "show", "--csv").stdout
    assert "families.mlp.epochs" in shown
    assert "tanh" in shown
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout")


def test_plain_exp_show_in_a_120_column_terminal_shows_each_familys_accuracy_the_best_and_the_changed_param(repo):
    sh(repo, "dvc", "exp", "run", "-n", "tanh", "-S", "train.activation=tanh")  # the run cache has it
    tanh = parse_experiments(json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout))["tanh"]["data"]["metrics"]
    accuracy = {family: tanh[f"metrics/evaluate/{family}/metrics.json"]["data"][family] for family in TINY}
    best = tanh["metrics/compare/metrics.json"]["data"]["best"]
    # In a terminal DVC pages the table through `less -S`, which shows each line's first 120
    # characters in a 120-column window; piped, DVC prints the same table.
    screen = [line[:120] for line in sh(repo, "dvc", "exp", "show").stdout.splitlines()]
    header = next(line for line in screen if "Experiment" in line).split()
    assert header[: 2 + len(TINY) + 2] == ["Experiment", "Created", *TINY, "best", "train.activation"]
    row = next(line for line in screen if "[tanh]" in line).split()
    cells = row[row.index("[tanh]") + 3 :]  # after the name and the time it was created (10:22 PM)
    assert [float(cell) for cell in cells[: len(TINY)]] == pytest.approx(list(accuracy.values()), abs=5e-5)
    assert cells[len(TINY) : len(TINY) + 2] == [best, "tanh"]
    sh(repo, "dvc", "exp", "remove", "tanh")


def test_metrics_show_lists_each_family_and_the_best(repo):
    result = sh(repo, "dvc", "metrics", "show", "--json")
    assert "failed to load" not in result.stderr
    metrics = json.loads(result.stdout)[""]["data"]
    assert list(metrics) == [
        *(f"metrics/evaluate/{family}/metrics.json" for family in TINY),
        "metrics/compare/metrics.json",
    ]
    for family in TINY:
        assert 0 <= metrics[f"metrics/evaluate/{family}/metrics.json"]["data"][family] <= 1
    assert metrics["metrics/compare/metrics.json"]["data"]["best"] in TINY


def test_a_clone_whose_cache_never_held_the_records_models_shows_every_familys_accuracy_at_head(repo, tmp_path):
    # As on a machine of another CPU kind: the record's models were never in its cache.
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    shown = sh(clone, "dvc", "metrics", "show", "--json")
    assert "failed to load" not in shown.stderr
    metrics = json.loads(shown.stdout)[""]["data"]
    for family in TINY:
        committed_accuracy = json.loads(committed(f"metrics/evaluate/{family}/metrics.json", repo))[family]
        assert metrics[f"metrics/evaluate/{family}/metrics.json"]["data"] == {family: committed_accuracy}
    exps = json.loads(sh(clone, "dvc", "exp", "show", "--json").stdout)
    head = next(rev for rev in exps if rev["rev"] != "workspace")["data"]["metrics"]
    assert {family: head[f"metrics/evaluate/{family}/metrics.json"]["data"][family] for family in TINY} == {
        family: metrics[f"metrics/evaluate/{family}/metrics.json"]["data"][family] for family in TINY
    }


def test_plots_show_renders_curves_confusion_matrices_and_the_study_charts(repo, tmp_path):
    result = sh(repo, "dvc", "plots", "show", "-o", str(tmp_path / "html"))
    assert "failed" not in result.stderr.lower()
    html = (tmp_path / "html/index.html").read_text()
    assert "Accuracy per epoch" in html
    assert "Loss per epoch" in html
    assert html.count("test confusion matrix, normalised per true class") == len(TINY)  # once a family
    assert "Learning rate per epoch" in html
    images = {p.name for p in (tmp_path / "html/static").iterdir()}
    assert "workspace_plots_compare_accuracy.png" in images
    assert {f"workspace_plots_evaluate_{family}_mistakes.png" for family in TINY} <= images
    assert not {f"workspace_plots_evaluate_{family}_confusion.png" for family in TINY} & images  # a chart above
    studies = {p.stem for p in (ROOT / "plots/studies").glob("*.png")}
    assert len(studies) >= 6
    assert {f"workspace_plots_studies_{study}.png" for study in studies} <= images


# Put before the page's charts: each is drawn as SVG, where a data mark is an element of its own.
SVG_CHARTS = """
<script>
const embed = window.vegaEmbed;
window.vegaEmbed = (el, spec, opts) => embed(el, spec, {...opts, renderer: "svg"});
</script>
"""
# Appended to a copy of the page: once the charts have drawn, it writes what each chart's div holds.
# Vega gives data marks the role "mark" (axes, legends and titles have roles of their own), one
# element per drawn item: a chart of axes alone has none.
CHART_CHECK = """
<script>
setTimeout(() => {
  // A chart's div: its script until vega-embed runs, the class vega-embed once it has.
  const charts = [...document.querySelectorAll("body > div[id]")]
    .filter(div => div.classList.contains("vega-embed") || div.querySelector("script"));
  const found = charts.map(div => {
    const items = [...div.querySelectorAll("svg.marks .role-mark > *")]
      .filter(item => item.tagName !== "path" || (item.getAttribute("d") || "").length > 0);
    // Its title (with the facet's header, the revision), the dash patterns of its lines, its legends.
    const title = [...div.querySelectorAll(".role-title-text")].map(t => t.textContent).join(" ");
    const dashes = [...div.querySelectorAll(".mark-line path")].map(p => p.getAttribute("stroke-dasharray"));
    const legend = [...div.querySelectorAll(".role-legend-label")].map(t => t.textContent);
    return {id: div.id, data_marks: items.length, title, dashes: [...new Set(dashes)], legend};
  });
  const images = [...document.querySelectorAll("img")].map(img => img.getAttribute("src"));
  const out = document.createElement("pre");
  out.id = "chart-check";
  out.textContent = JSON.stringify({
    scripts: typeof vegaEmbed, charts: found, images, height: document.documentElement.scrollHeight,
  });
  document.body.appendChild(out);
}, 5000);
</script>
"""
CHROMIUM = [
    *["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
    *["--disable-background-networking", "--disable-component-update", "--virtual-time-budget=20000"],
]
ARTIFACTS = ROOT / "tests/artifacts"  # kept after the run: the page as the browser drew it


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium: make test installs it")
@pytest.mark.skipif(not (ROOT / ".dvc/plots/offline.html").is_file(), reason="the chart page: make builds it")
def test_the_chart_page_renders_every_chart_in_a_browser_with_no_network(repo, tmp_path):
    assert sh(repo, "dvc", "config", "plots.html_template").stdout.strip() == "plots/offline.html"
    sh(repo, "dvc", "plots", "show", "-o", str(tmp_path / "page"))
    html = (tmp_path / "page/index.html").read_text()
    assert "<script src=" not in html  # nothing to fetch: the scripts are in the page
    assert "cdn.jsdelivr.net" not in html
    # dvc.yaml's top-level plots are the whole page, in words: stages declare none of their own.
    plots = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    titles = [next(iter(plot)) for plot in plots if isinstance(plot, dict)]
    declared = html.count("vegaEmbed('#")
    assert declared == len(titles) == 3 + len(TINY)  # 3 curves, a confusion matrix a family
    checked = tmp_path / "page/checked.html"
    # The page's own body: vega-embed's code holds both strings too, earlier.
    head, body = html.rsplit("<body>", 1)
    body, end = body.rsplit("</body>", 1)
    checked.write_text(head + "<body>" + SVG_CHARTS + body + CHART_CHECK + "</body>" + end)
    profile = tmp_path / "profile"
    # unshare -n: a network namespace of its own, with no interface but a loopback that is down.
    isolated = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if isolated.returncode:
        pytest.skip(f"unshare -n is not permitted here ({isolated.stderr.strip()}): no way to take the network away")
    offline = ["unshare", "-n", *CHROMIUM, f"--user-data-dir={profile}"]
    dom = subprocess.run([*offline, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=300)
    check = re.search(r'<pre id="chart-check">(.*?)</pre>', dom.stdout, re.S)
    assert check, f"the page never reported its charts; chromium said: {dom.stderr[-2000:]}"
    found = json.loads(check.group(1))
    assert found["scripts"] == "function"
    assert len(found["charts"]) == declared
    blank = [c["id"] for c in found["charts"] if not c["data_marks"]]
    assert not blank, f"charts declared but drawing no data: {blank}"
    # Each chart once, in dvc.yaml's order, titled by its words there; each picture once.
    assert [c["title"].removeprefix("rev ").removeprefix("workspace ") for c in found["charts"]] == titles
    assert len(set(found["images"])) == len(found["images"])
    for curves in found["charts"][:2]:  # loss and accuracy: train and validation told apart
        assert {"train", "validation"} <= set(curves["legend"]), curves["title"]
        assert len(curves["dashes"]) == 2, curves["title"]
    # One screen of charts, then the pictures: the page was 25,300 px tall when every dvclive file
    # and each confusion matrix three times had a chart of its own.
    assert found["height"] < 15_000
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "chart-page.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [*offline, "--window-size=1280,2400", f"--screenshot={shot}", (tmp_path / "page/index.html").as_uri()],
        capture_output=True,
        timeout=300,
    )
    assert shot.stat().st_size > 50_000  # a page of drawn charts, not a blank one


def outputs_of(repo: Path) -> dict[str, str]:
    """Every output DVC tracks, file by file, and its md5, as ``dvc status`` would compare them."""
    files = [p for d in ("data", "models", "metrics", "plots") for p in (repo / d).rglob("*") if p.is_file()]
    return {str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("train.batch_size=0", "train.batch_size = 0 is not allowed; expected an integer >= 1 and <= 8192"),
        ("preprocess.val_fraction=2", "preprocess.val_fraction = 2 is not allowed; expected a number > 0 and < 1"),
    ],
    ids=["train", "preprocess"],
)
def test_a_refused_experiment_leaves_every_output_in_place_and_git_checkout_undoes_it(repo, change, refusal):
    lock, before = (repo / "dvc.lock").read_text(), outputs_of(repo)
    result = sh(repo, "dvc", "exp", "run", "-S", change, check=False)
    assert result.returncode != 0
    assert error_lines(result) == [f"error: params.yaml: {refusal}"]
    assert "Running stage 'check'" in result.stdout
    assert "Running stage 'train" not in result.stdout
    assert "Running stage 'preprocess'" not in result.stdout
    assert (repo / "dvc.lock").read_text() == lock
    assert outputs_of(repo) == before
    # dvc status: nothing but the params change, in every stage that reads the key.
    status = json.loads(sh(repo, "dvc", "status", "--json").stdout)
    assert status
    for stage, changes in status.items():
        assert [list(c) for c in changes] == [["changed deps"]], (stage, changes)
        assert list(changes[0]["changed deps"]) == ["params.yaml"], (stage, changes)
    # The fault table's one command: params.yaml back, and nothing else to do.
    sh(repo, "git", "checkout", "params.yaml")
    assert "up to date" in sh(repo, "dvc", "status").stdout
    assert outputs_of(repo) == before


def restore(repo: Path) -> None:
    """Back to the committed state: git for code, params and small outputs, DVC for the rest."""
    sh(repo, "git", "checkout", "HEAD", "--", ".")  # HEAD: what DVC staged goes back too
    sh(repo, "dvc", "checkout", "--force")
    assert "up to date" in sh(repo, "dvc", "status").stdout


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]


def test_misspelled_keys_through_exp_run_touch_nothing(repo):
    lock = (repo / "dvc.lock").read_text()
    # A plain -S cannot add a key: DVC itself refuses the typo.
    plain = sh(repo, "dvc", "exp", "run", "-S", "train.activaton=tanh", check=False)
    assert plain.returncode != 0
    assert "train.activaton" in plain.stderr
    # '++' adds it; our validation names it and the key meant.
    forced = sh(repo, "dvc", "exp", "run", "-S", "++train.activaton=tanh", check=False)
    assert forced.returncode != 0
    assert error_lines(forced) == [
        "error: params.yaml: unknown key 'train.activaton' (did you mean 'train.activation'?); allowed here: "
        + ", ".join(TRAIN)
    ]
    assert (repo / "dvc.lock").read_text() == lock
    restore(repo)


def test_a_raw_file_edited_after_download_is_noticed_and_verified_again(repo):
    lock = (repo / "dvc.lock").read_text()
    raw = repo / "data/raw/train-labels-idx1-ubyte.gz"
    good = raw.read_bytes()
    raw.unlink()  # DVC links outputs from its cache: replace the file, never write through it
    raw.write_bytes(gzip.compress(b"tampered"))
    assert "data/raw" in sh(repo, "dvc", "status").stdout

    # DVC puts back the copy download verified (from its run cache) and reruns nothing downstream;
    # preprocess would refuse the edited file (tests/test_preprocess.py).
    again = sh(repo, "dvc", "repro")
    assert "Stage 'download' is cached - skipping run, checking out outputs" in again.stdout
    assert "Running stage" not in again.stdout
    assert raw.read_bytes() == good
    assert (repo / "dvc.lock").read_text() == lock


def test_a_second_repro_while_one_runs_is_refused_and_ctrl_c_leaves_a_clean_workspace(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["families"]["cnn"]["epochs"] = 1000  # long enough to be interrupted
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    first = subprocess.Popen(
        ["dvc", "repro", "train@cnn"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Like a terminal's foreground job, whatever started pytest: SIGINT not ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in first.stdout:  # the first holds DVC's lock while it trains
        if line.startswith("Epoch 2/"):
            break
    second = sh(repo, "dvc", "repro", check=False)
    assert second.returncode != 0
    # DVC 3 locks the paths a running stage reads and writes; the second run stops at the first.
    assert "is busy, it is being blocked by" in second.stderr

    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
    first.communicate(timeout=120)
    assert first.returncode != 0
    assert not (repo / "models/cnn.keras").exists()
    assert not list(repo.glob("metrics/train/.cnn.*.tmp"))
    restore(repo)


def stray_temporaries(repo: Path) -> list[str]:
    return [str(p.relative_to(repo)) for p in repo.rglob("*.tmp") if not {".git", ".dvc"} & set(p.parts)]


def test_an_experiment_stopped_by_sigterm_leaves_no_debris_and_the_next_one_runs(repo):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # mlp and dnn finish inside the experiment (dvclive then stages its files in git), cnn is cut. A
    # seed no other test uses: nothing comes from the run cache, whichever tests ran before.
    args = ["dvc", "exp", "run", "-S", "train.seed=20231", "-S", "++families.cnn.epochs=1000"]
    run = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    in_cnn = False
    for line in run.stdout:
        in_cnn = in_cnn or "Running stage 'train@cnn'" in line
        if in_cnn and line.startswith("Epoch 3/"):
            break
    os.killpg(run.pid, signal.SIGTERM)  # as `timeout` and CI runners send it: to the whole group
    run.communicate(timeout=120)
    assert run.returncode != 0
    # DVC dies of the signal at once; the stage, which got it too, ends its batch and cleans up
    # after (within about 2 s for the real cnn). Leftovers would outlast this bounded wait.
    deadline = time.monotonic() + 30
    while stray_temporaries(repo) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stray_temporaries(repo) == []
    assert ".tmp" not in sh(repo, "git", "status", "--porcelain").stdout  # nothing staged that is gone
    # A stray that only SIGKILL could leave is invisible to git and to compare's dependencies.
    status = sh(repo, "dvc", "status").stdout
    (repo / "metrics/train/.cnn.killed.tmp").mkdir()
    (repo / "metrics/train/.cnn.killed.tmp/metrics.json").write_text("{}")
    assert ".tmp" not in sh(repo, "git", "status", "--porcelain").stdout
    assert sh(repo, "dvc", "status").stdout == status
    shutil.rmtree(repo / "metrics/train/.cnn.killed.tmp")

    # The next experiment runs where the interrupted one stopped (finished stages come from the run cache).
    again = sh(repo, "dvc", "exp", "run", "-S", "families.cnn.epochs=1")
    assert ran_trainings(again) == {"cnn", "alexnet", "airbench"}  # those after the cut, in dvc.yaml's order
    # DVC runs an experiment on a detached HEAD and, killed, never re-attaches it: a commit made now
    # would belong to no branch. The recovery in docs/faults.md: back on the branch, back to its commit.
    assert sh(repo, "git", "symbolic-ref", "-q", "HEAD", check=False).returncode != 0
    sh(repo, "git", "switch", "-q", "main")
    restore(repo)
    assert sh(repo, "git", "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
    assert sh(repo, "git", "status", "--porcelain").stdout == ""


def test_a_conv_familys_deleted_outputs_come_back_from_the_cache_unless_the_lock_names_other_bytes(repo):
    def delete_cnn_outputs() -> None:
        (repo / "models/cnn.keras").unlink()
        shutil.rmtree(repo / "metrics/train/cnn")

    delete_cnn_outputs()
    restored = sh(repo, "dvc", "repro", "-s", "train@cnn")
    assert "Stage 'train@cnn' is cached - skipping run, checking out outputs" in restored.stdout
    assert "Running stage" not in restored.stdout
    assert "up to date" in sh(repo, "dvc", "status").stdout

    # The limit (docs/faults.md): when dvc.lock names outputs the cache lacks, as a lock committed
    # from another CPU kind does for a conv net, DVC 3 trusts the lock and never asks its run cache.
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    model = next(o for o in lock["stages"]["train@cnn"]["outs"] if o["path"] == "models/cnn.keras")
    model["md5"] = "0" * 32
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    delete_cnn_outputs()
    assert "Running stage 'train@cnn'" in sh(repo, "dvc", "repro", "-s", "train@cnn").stdout
    restore(repo)


def test_a_model_is_fetched_from_the_registry_with_dvc_artifacts_get(repo, tmp_path):
    remote, clone, out = tmp_path / "remote", tmp_path / "clone", tmp_path / "fetched"
    # The project's outputs go to a local remote; a clone that names it is what users would share.
    sh(repo, "dvc", "remote", "add", "--local", "store", str(remote))
    sh(repo, "dvc", "push", "-r", "store")
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "remote", "add", "-d", "store", str(remote))
    sh(clone, "git", "commit", "-qam", "share the store")
    # A registry version is an annotated git tag NAME@vX.Y.Z, as `gto register` writes it.
    sh(clone, "git", "tag", "-a", "cnn@v1.0.0", "-m", "Registering artifact cnn version v1.0.0")
    out.mkdir()
    shown = sh(out, "dvc", "artifacts", "get", str(clone), "cnn", "-o", "cnn.keras")
    assert "Downloaded" in shown.stdout
    assert (out / "cnn.keras").read_bytes() == (repo / "models/cnn.keras").read_bytes()
    (repo / ".dvc/config.local").unlink()


# A client with TensorFlow only: no code of this project, raw uint8 images in.
SERVE = """
import sys, numpy as np, tensorflow as tf
served = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
with np.load("data/processed/test.npz") as npz:
    images = npz["images"][:100]
np.save(sys.argv[2], served(images=tf.constant(images))["probabilities"].numpy())
"""


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_the_exported_savedmodel_serves_raw_images_with_the_keras_models_probabilities(repo, tmp_path, family):
    from fmnist.data.idx import CLASS_NAMES
    from fmnist.data.splits import load_split
    from fmnist.models.saving import load_model

    served = tmp_path / "served.npy"
    sh(repo, sys.executable, "-c", SERVE, f"models/serving/{family}/1", str(served))
    x, _ = load_split(repo / "data/processed", "test")
    expected = load_model(repo / f"models/{family}.keras").predict(x[:100], verbose=0)
    assert np.abs(np.load(served) - expected).max() < 1e-5
    assert json.loads((repo / f"models/serving/{family}/class_names.json").read_text()) == list(CLASS_NAMES)


def predict(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(repo, sys.executable, "-m", "fmnist.predict", *args, check=check)


def test_predict_classifies_a_test_image_as_evaluate_did_even_negated_upscaled_and_in_colour(repo, tmp_path):
    from PIL import Image

    # A model sure of its answers (one epoch leaves the tiny ones guessing): the mlp, trained longer.
    sh(repo, "dvc", "exp", "run", "-S", "++families.mlp.epochs=40")
    with np.load(repo / "data/processed/test.npz") as npz:
        images = npz["images"]
    with (repo / "metrics/evaluate/mlp/predictions.csv").open() as f:
        evaluated = [line.split(",")[1].strip() for line in f.readlines()[1:]]
    for i in range(5):
        Image.fromarray(images[i]).save(tmp_path / f"test{i}.png")
        photo = Image.fromarray(255 - images[i]).resize((84, 84), Image.Resampling.BICUBIC).convert("RGB")
        photo.save(tmp_path / f"photo{i}.jpg", quality=95)

    shown = json.loads(predict(repo, str(tmp_path), "--family", "mlp", "--json").stdout)
    assert shown["family"] == "mlp"
    top = {Path(p["file"]).stem: p["top"] for p in shown["predictions"]}
    for i in range(5):
        assert top[f"test{i}"][0]["class"] == evaluated[i]
        assert top[f"photo{i}"][0]["class"] == evaluated[i]
        assert len(top[f"test{i}"]) == 3
        assert sum(t["probability"] for t in top[f"test{i}"]) <= 1 + 1e-6

    # Plain output: the family that answers, then one line per file; the best family of the
    # comparison by default.
    best = json.loads((repo / "metrics/compare/metrics.json").read_text())["best"]
    plain = predict(repo, str(tmp_path / "test0.png")).stdout.splitlines()
    assert len(plain) == 2
    assert plain[0] == f"{best} (the best family of metrics/compare/metrics.json):"
    assert plain[1].startswith(f"{tmp_path / 'test0.png'}: ")
    assert json.loads(predict(repo, str(tmp_path / "test0.png"), "--json").stdout)["family"] == best
    restore(repo)


def test_predict_started_with_onednn_off_as_on_a_cpu_without_avx512_answers_as_evaluate_ran(
    repo, tmp_path, monkeypatch
):
    from PIL import Image

    with np.load(repo / "data/processed/test.npz") as npz:
        Image.fromarray(npz["images"][0]).save(tmp_path / "test0.png")
    as_evaluated = predict(repo, str(tmp_path / "test0.png"), "--family", "mlp", "--json").stdout
    # TensorFlow's default where the CPU lacks AVX-512; params.yaml's train.onednn says true.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert predict(repo, str(tmp_path / "test0.png"), "--family", "mlp", "--json").stdout == as_evaluated


def test_predict_finds_no_object_in_a_blank_picture_and_names_an_animations_frame(repo, tmp_path):
    from PIL import Image

    blank = {
        "white.png": Image.new("L", (28, 28), 255),
        "black.jpg": Image.new("RGB", (300, 200), (0, 0, 0)),
        "dot.png": Image.new("L", (1, 1), 128),
        "cmyk.jpg": Image.new("CMYK", (64, 64), (0, 0, 0, 0)),
        "wall.jpg": Image.new("RGB", (4000, 3000), (231, 228, 220)),
    }
    for name, image in blank.items():
        image.save(tmp_path / name)
    garment = np.zeros((28, 28), np.uint8)
    garment[4:24, 8:20] = 200
    frames = [Image.fromarray(garment), Image.new("L", (28, 28)), Image.new("L", (28, 28), 90)]
    frames[0].save(tmp_path / "spin.gif", save_all=True, append_images=frames[1:])

    shown = json.loads(predict(repo, str(tmp_path), "--family", "mlp", "--json").stdout)["predictions"]
    by_name = {Path(p["file"]).name: p for p in shown}
    for name in blank:
        assert by_name[name]["object_found"] is False, name
        assert by_name[name]["top"] == [], name
    spin = by_name["spin.gif"]
    assert (spin["object_found"], spin["frame"], spin["frames"], len(spin["top"])) == (True, 1, 3, 3)

    header, *lines = predict(repo, str(tmp_path), "--family", "mlp").stdout.splitlines()
    assert header == "mlp (named by --family):"
    plain = dict(line.split(": ", 1) for line in lines)
    assert plain[str(tmp_path / "white.png")] == "no object found (nothing in it stands out from the background)"
    classes, *note = plain[f"{tmp_path / 'spin.gif'} (frame 1 of 3)"].split(" (low confidence, below ")
    assert classes.count("%") == 3  # the top three, whatever the tiny model's confidence (a note may follow)
    assert note in ([], ["45%: it may be no garment the model knows)"])
    # Only blank pictures: no model is needed to say so.
    (repo / "models/mlp.keras").rename(tmp_path / "kept.keras")
    try:
        alone = predict(repo, str(tmp_path / "white.png"), "--family", "mlp").stdout
    finally:
        (tmp_path / "kept.keras").rename(repo / "models/mlp.keras")
    assert alone == (
        f"mlp (named by --family):\n{tmp_path / 'white.png'}: no object found (nothing in it stands out from the "
        "background)\n"
    )


def test_predict_refuses_bad_input_in_one_line(repo, tmp_path):
    (tmp_path / "notes.png").write_text("a text file renamed\n")
    (tmp_path / "empty").mkdir()
    cases = {
        (str(tmp_path / "notes.png"),): f"error: {tmp_path / 'notes.png'} is not an image Pillow can read",
        (str(tmp_path / "empty"),): f"error: {tmp_path / 'empty'} is an empty folder",
        ("x.png", "--family", "resnet"): "error: params.yaml: no family 'resnet' under 'families'",
    }
    for args, message in cases.items():
        result = predict(repo, *args, check=False)
        assert result.returncode != 0
        assert result.stdout == ""
        assert error_lines(result) == [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines(result)) == 1
        assert error_lines(result)[0].startswith(message), result.stderr

    from PIL import Image

    picture = np.zeros((28, 28), np.uint8)
    picture[4:24, 8:20] = 200  # something to classify: a blank picture would need no model
    Image.fromarray(picture).save(tmp_path / "shirt.png")
    model = repo / "models/cnn.keras"
    kept = model.read_bytes()
    model.unlink()
    missing = predict(repo, str(tmp_path / "shirt.png"), "--family", "cnn", check=False)
    assert error_lines(missing) == [
        "error: models/cnn.keras is missing; make it with 'dvc repro train@cnn' (or fetch it with 'dvc pull')"
    ]
    model.write_bytes(kept)
    restore(repo)


def test_rerunning_everything_gives_bit_identical_models_and_metrics(repo):
    def outputs() -> dict[str, bytes]:
        files = [*repo.glob("models/*.keras"), *repo.glob("metrics/**/*.json"), *repo.glob("metrics/**/*.csv")]
        files += [*repo.glob("metrics/train/*/plots/**/*.tsv"), *repo.glob("plots/**/*.png")]
        files += [*repo.glob("metrics/**/*.md"), *(f for f in repo.glob("models/serving/**/*") if f.is_file())]
        return {str(f.relative_to(repo)): f.read_bytes() for f in files}  # no wall-clock figure anywhere

    before = outputs()
    assert len(before) > 40
    forced = sh(repo, "dvc", "repro", "--force")
    assert ran_trainings(forced) == set(TINY)
    after = outputs()
    assert sorted(after) == sorted(before)
    assert [name for name in before if after[name] != before[name]] == []
    restore(repo)


def test_on_a_cpu_without_avx512_the_verdict_names_the_instruction_set_and_judges_every_family(repo, monkeypatch):
    """As on a laptop without AVX-512: the pipeline rerun with oneDNN capped to AVX2 (docs/reproducibility.md)."""
    recorded = json.loads((repo / "metrics/compare/platform.json").read_text())
    isa = recorded["mlp"]["onednn_isa"]
    if "AVX-512" not in isa:
        pytest.skip(f"oneDNN runs {isa} on this CPU: capping it to AVX2 changes nothing")
    comparison = (repo / "metrics/compare/comparison.md").read_text()
    # On the record's platform, the record's own outputs: every family bit-identical, exit 0.
    same = sh(repo, "python", "-m", "fmnist.reproduction", "--json")
    assert {v["family"]: v["verdict"] for v in json.loads(same.stdout)["families"]} == dict.fromkeys(
        TINY, BIT_IDENTICAL
    )

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert ran_trainings(sh(repo, "dvc", "repro", "--force")) == set(TINY)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    judged = sh(repo, "python", "-m", "fmnist.reproduction", "--json", check=False)
    verdicts = {v["family"]: v for v in json.loads(judged.stdout)["families"]}
    assert sorted(verdicts) == sorted(TINY)
    # Expected, family by family: other bytes (oneDNN's AVX2 kernels add in another order than its
    # AVX-512 ones, in the dense layers and the convolutions alike, so no model keeps the record's
    # bytes), and within noise (the synthetic test set is easy: each tiny model scores as the record's
    # did, or close). Measured on AMD EPYC Zen 4, capped to AVX2: every family 0.00% off the record.
    for family, v in verdicts.items():
        assert (v["verdict"], v["same_bytes"]) == (WITHIN_NOISE, False), family
        assert v["platform_differences"]["onednn_isa"] == [isa, "Intel AVX2"], family
        assert abs(v["difference"]) <= v["tolerance"], family
    assert judged.returncode == 0
    table = sh(repo, "python", "-m", "fmnist.reproduction", check=False).stdout
    assert f"platform: onednn_isa: {isa} (record) -> Intel AVX2 (here)\n" in table

    # As the README says: git shows the new results as changes (each family's platform, at least),
    # while the tests still see the committed record, not the rerun in the working tree.
    status = sh(repo, "git", "status", "--porcelain").stdout.splitlines()
    assert {" M dvc.lock", " M metrics/compare/platform.json"} <= set(status)
    assert committed("metrics/compare/comparison.md", repo) == comparison
    platform_now = (repo / "metrics/compare/platform.json").read_text()
    assert json.loads(platform_now) != recorded  # the rerun wrote its own platform...
    assert json.loads(committed("metrics/compare/platform.json", repo)) == recorded  # ...and the tests read git's
    # `dvc metrics diff`: the record (HEAD, from git) beside this run, every family.
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--all", "--json").stdout)
    for family in TINY:
        change = diff[f"metrics/evaluate/{family}/metrics.json"][family]
        assert change["old"] == json.loads(committed(f"metrics/evaluate/{family}/metrics.json", repo))[family]
        assert change["new"] == verdicts[family]["accuracy"]

    # An experiment, then the README's way back to the committed params, all on this "CPU": this
    # machine's own results come back from the run cache; nothing retrains and no model is lost.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    own = {family: (repo / f"models/{family}.keras").read_bytes() for family in TINY}
    assert ran_trainings(sh(repo, "dvc", "exp", "run", "-S", "++families.mlp.epochs=2")) == {"mlp"}
    sh(repo, "git", "checkout", "HEAD", "--", "params.yaml")
    back = sh(repo, "dvc", "repro")
    assert ran_trainings(back) == set()
    assert "Stage 'train@mlp' is cached - skipping run, checking out outputs" in back.stdout
    assert {family: (repo / f"models/{family}.keras").read_bytes() for family in TINY} == own
    assert "up to date" in sh(repo, "dvc", "status").stdout
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")

    # Kept aside as a named experiment (docs/reproducibility.md), this machine's results come back
    # after the record's were checked out.
    sh(repo, "dvc", "exp", "save", "-n", "mine")
    restore(repo)
    sh(repo, "dvc", "exp", "apply", "mine")
    assert {family: (repo / f"models/{family}.keras").read_bytes() for family in TINY} == own
    sh(repo, "dvc", "exp", "remove", "mine")
    restore(repo)


TINY_GRID = {
    "tiny-grid": {
        "seed": "test",
        "description": "2x2 on synthetic data",
        "family": "mlp",
        "fixed": {"epochs": 1},
        "grid": {
            "activation": {"relu": {"activation": "relu"}, "tanh": {"activation": "tanh"}},
            "layers": {"1x8": {"hidden": [8]}, "1x16": {"hidden": [16]}},
        },
        "repeats": 1,
        "claims": [{"text": "relu > tanh", "factor": "activation", "order": ["relu", "tanh"]}],
    }
}


def study_cli(tmp_path: Path) -> list[str]:
    studies = tmp_path / "studies.yaml"
    studies.write_text(yaml.safe_dump(TINY_GRID))
    return [sys.executable, "-m", "fmnist.studies", "--studies", str(studies)]


def test_a_study_runs_through_the_dvc_queue_resumes_and_reports(repo, tmp_path):
    cli = study_cli(tmp_path)
    first = sh(repo, *cli, "run", "tiny-grid", "--jobs", "2")
    assert "tiny-grid: 4 runs (4 configurations x 1), 0 done or queued" in first.stdout
    names = set(sh(repo, "dvc", "exp", "list", "--name-only").stdout.split())
    assert len({n for n in names if n.startswith("tiny-grid-")}) == 4

    assert "tiny-grid: 4 runs to go, about " in first.stdout  # the estimate comes before the runs
    record = (repo / "metrics/studies/tiny-grid.run.json").read_bytes()

    again = sh(repo, *cli, "run", "tiny-grid", "--jobs", "2")
    assert "4 done or queued" in again.stdout
    assert (repo / "metrics/studies/tiny-grid.run.json").read_bytes() == record  # nothing ran, nothing rewritten

    report = json.loads((repo / "metrics/studies/tiny-grid.json").read_text())
    assert [row["n"] for row in report["configurations"]] == [1, 1, 1, 1]
    means = [row["mean"] for row in report["configurations"]]
    assert means == sorted(means, reverse=True)
    assert report["best"] == report["configurations"][0]["config"]
    # One run per configuration, but the claim pools over the other factor: two runs per side.
    assert [report["claims"][0]["tests"][0][k] for k in ("n_a", "n_b")] == [2, 2]
    assert report["claims"][0]["verdict"] in {"supported", "contradicted", "tie"}
    assert report["run"]["jobs"] == 2
    assert (repo / "plots/studies/tiny-grid.png").stat().st_size > 0
    assert "| configuration | test accuracy (mean ± std) | n |" in (repo / "metrics/studies/tiny-grid.md").read_text()
    restore(repo)


def test_the_notebook_runs_top_to_bottom_and_leaves_the_workspace_as_it_was(repo, monkeypatch):
    import nbclient
    import nbformat

    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):  # dvc exp save commits, in the kernel
        monkeypatch.setenv(key, "test")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "test@example.com")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    before = sh(repo, "git", "status", "--porcelain").stdout, (repo / "models/mlp.keras").read_bytes()
    notebook = nbformat.read(ROOT / "docs/tour.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells)  # committed clean: outputs are a run's
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(repo)}}
    ).execute()

    # A cell's printed text can come in several stream messages ("best family:", " ", "mlp", "\n").
    text = "\n".join(
        "".join(
            output.get("text") or output.get("data", {}).get("text/plain", "") for output in cell.get("outputs", [])
        )
        for cell in notebook.cells
    )
    assert "best family: " in text
    assert "'tour-mlp-dropout'" in text  # the last cell's list of experiments
    assert "'tour-snapshot'" in text
    answer = "".join(
        o.get("text", "")
        for o in next(c for c in notebook.cells if c.cell_type == "code" and "fmnist.predict" in c.source)["outputs"]
    )
    assert '"object_found": true' in answer
    assert answer.count('"class"') == 3
    assert sum(1 for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})) == 2
    # The experiment ran in a temporary copy: the workspace, its params and its models are as they were.
    assert (sh(repo, "git", "status", "--porcelain").stdout, (repo / "models/mlp.keras").read_bytes()) == before
    sh(repo, "dvc", "exp", "remove", "tour-mlp-dropout", "tour-snapshot")


def tiny_grid_alone(repo: Path, cli: list[str]) -> dict:
    """The tiny grid's report as one machine makes it (its runs may be there already)."""
    sh(repo, *cli, "run", "tiny-grid", "--jobs", "2")
    return json.loads((repo / "metrics/studies/tiny-grid.json").read_text())


def shared_remotes(repo: Path, tmp_path: Path) -> Path:
    """A bare git remote holding the built project and a DVC remote holding its outputs, as machines
    that share a study have; the git remote's path (the DVC remote is in the committed config)."""
    origin = tmp_path / "origin.git"
    sh(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    sh(repo, "git", "remote", "add", "shared", str(origin))
    try:
        sh(repo, "dvc", "remote", "add", "--default", "store", str(tmp_path / "remote"))
        sh(repo, "git", "commit", "-qam", "a remote")
        sh(repo, "git", "push", "-q", "shared", "main")
        sh(repo, "dvc", "push")
    finally:
        sh(repo, "git", "remote", "remove", "shared")
    return origin


def test_a_study_run_as_two_shards_from_two_clones_reports_what_one_machine_reports(repo, tmp_path):
    cli = study_cli(tmp_path)
    alone = tiny_grid_alone(repo, cli)
    origin = shared_remotes(repo, tmp_path)  # each machine gets the data from the DVC remote
    machines = [tmp_path / "machine1", tmp_path / "machine2"]
    for i, machine in enumerate(machines, 1):
        sh(tmp_path, "git", "clone", "-q", str(origin), str(machine))
        sh(machine, "dvc", "pull")
        ran = sh(machine, *cli, "run", "tiny-grid", "--shard", f"{i}/2", "--push", "origin")
        assert f"tiny-grid: 2 runs (shard {i}/2 of 4 configurations x 1), 0 done or queued" in ran.stdout
        assert not (machine / "metrics/studies/tiny-grid.json").exists()  # a shard does not report
    reported = sh(machines[0], *cli, "report", "tiny-grid", "--pull", "origin")
    assert "tiny-grid: pulled 4 of 4 runs from origin" in reported.stdout
    shared = json.loads((machines[0] / "metrics/studies/tiny-grid.json").read_text())
    # The same runs, trained on the same kind of CPU: the same report, but for the wall time.
    assert {k: v for k, v in shared.items() if k != "run"} == {k: v for k, v in alone.items() if k != "run"}
    restore(repo)


@pytest.fixture
def cluster(tmp_path):
    """A one-node Slurm cluster of Debian's packages, stopped after the test; the environment that
    reaches it, with the jobs' scratch space (``TMPDIR``) a directory of the test's."""
    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(reason)
    with slurm_cluster.one_node_cluster(tmp_path / "slurm") as env:
        (tmp_path / "scratch").mkdir()
        yield {**env, "TMPDIR": str(tmp_path / "scratch")}
    assert not any((tmp_path / "scratch").iterdir())  # every task removed its clone


def submitted(result: subprocess.CompletedProcess) -> list[str]:
    """The array job's and the report job's ids, from what ``studies slurm`` printed."""
    return re.search(r"array job (\d+) .* report job (\d+)", result.stdout).groups()


def test_a_study_as_a_slurm_array_job_reports_what_one_machine_reports(repo, tmp_path, cluster, monkeypatch):
    cli = study_cli(tmp_path)
    alone = tiny_grid_alone(repo, cli)
    origin = shared_remotes(repo, tmp_path)
    login = tmp_path / "login"  # where the user submits from: a clone, on the cluster's shared file system
    sh(tmp_path, "git", "clone", "-q", str(origin), str(login))
    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    result = sh(login, *cli, "slurm", "tiny-grid", "--tasks", "2", "--push", "origin")
    array, reporter = submitted(result)
    slurm_cluster.wait_for_jobs(cluster, [array, reporter], 600)
    logs = {p.name: p.read_text() for p in (login / ".dvc/tmp/studies").glob("*.out")}
    assert set(logs) == {f"tiny-grid-{array}_1.out", f"tiny-grid-{array}_2.out", f"tiny-grid-report-{reporter}.out"}
    for i in (1, 2):
        started = f"tiny-grid: 2 runs (shard {i}/2 of 4 configurations x 1), 0 done or queued"
        assert started in logs[f"tiny-grid-{array}_{i}.out"]
    assert "tiny-grid: pulled 4 of 4 runs from origin" in logs[f"tiny-grid-report-{reporter}.out"]
    shared = json.loads((login / "metrics/studies/tiny-grid.json").read_text())
    # The same runs, trained on the same kind of CPU: the same report, but for the wall time.
    assert {k: v for k, v in shared.items() if k != "run"} == {k: v for k, v in alone.items() if k != "run"}
    print(f"array job and report: {time.monotonic() - start:.0f} s")
    restore(repo)


def test_a_failed_slurm_task_is_named_by_the_report_and_resubmitted_alone_completes_the_study(
    repo, tmp_path, cluster, monkeypatch
):
    cli = study_cli(tmp_path)
    alone = tiny_grid_alone(repo, cli)
    origin = shared_remotes(repo, tmp_path)
    login = tmp_path / "login"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(login))
    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    array, reporter = submitted(sh(login, *cli, "slurm", "tiny-grid", "--tasks", "2", "--push", "origin"))
    sh(login, "scancel", f"{array}_2")  # task 2 dies, as on a node that fails
    slurm_cluster.wait_for_jobs(cluster, [array, reporter], 600)
    reported = (login / f".dvc/tmp/studies/tiny-grid-report-{reporter}.out").read_text()
    assert "tiny-grid: pulled 2 of 4 runs from origin" in reported
    assert "**Incomplete: 2 of 4 runs missing** (see n)." in reported  # the report it printed
    missing = [line for line in reported.splitlines() if line.startswith("tiny-grid: 2 of 4 runs missing")]
    assert len(missing) == 1
    assert missing[0].startswith("tiny-grid: 2 of 4 runs missing (tiny-grid-")
    assert missing[0].endswith(
        "they are task 2 of 2: resubmit alone with sbatch --array=2 .dvc/tmp/studies/tiny-grid.sbatch, "
        "then report again"
    )
    partial = json.loads((login / "metrics/studies/tiny-grid.json").read_text())
    assert [index for index, _ in partial["missing"]] == [1, 3]  # the plan's 2nd and 4th: shard 2/2's
    assert "**Incomplete: 2 of 4 runs missing**" in (login / "metrics/studies/tiny-grid.md").read_text()

    # Both tasks resubmitted: task 1's runs are on the remote already and do not run again.
    again = sh(login, "sbatch", "--parsable", "--array=1-2", ".dvc/tmp/studies/tiny-grid.sbatch").stdout.strip()
    slurm_cluster.wait_for_jobs(cluster, [again], 600)
    first = (login / f".dvc/tmp/studies/tiny-grid-{again}_1.out").read_text()
    assert "0 done or queued" not in first
    assert "tiny-grid: 2 runs (shard 1/2 of 4 configurations x 1), 2 done or queued (2 of them on origin" in first
    assert "pushing" not in first
    second = (login / f".dvc/tmp/studies/tiny-grid-{again}_2.out").read_text()
    assert "tiny-grid: pushing 2 runs to origin" in second
    complete = sh(login, *cli, "report", "tiny-grid", "--pull", "origin", "--shards", "2")
    assert "runs missing" not in complete.stderr
    shared = json.loads((login / "metrics/studies/tiny-grid.json").read_text())
    assert {k: v for k, v in shared.items() if k != "run"} == {k: v for k, v in alone.items() if k != "run"}
    restore(repo)


def test_a_hydra_sweep_queues_every_combination_runs_them_and_shows_them(repo):
    before = set(sh(repo, "dvc", "exp", "list", "--name-only").stdout.split())
    # As docs/studies.md shows: DVC's own grid syntax, no code of ours.
    sh(
        repo,
        "dvc",
        "exp",
        "run",
        "--queue",
        "-S",
        "++families.mlp.dropout=0.1,0.3",
        "-S",
        "++families.mlp.epochs=range(1,3)",
    )
    assert sh(repo, "dvc", "queue", "status").stdout.count("Queued") == 4
    sh(repo, "dvc", "queue", "start", "-j", "2")
    deadline = time.monotonic() + 600
    while any(state in sh(repo, "dvc", "queue", "status").stdout for state in ("Queued", "Running")):
        assert time.monotonic() < deadline, sh(repo, "dvc", "queue", "status").stdout
        time.sleep(2)
    found = parse_experiments(json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout))
    swept = {name: exp for name, exp in found.items() if name not in before}
    assert {exp["state"] for exp in swept.values()} == {"success"}
    mlp = [exp["data"]["params"]["params.yaml"]["data"]["families"]["mlp"] for exp in swept.values()]
    assert sorted((m["dropout"], m["epochs"]) for m in mlp) == [(0.1, 1), (0.1, 2), (0.3, 1), (0.3, 2)]
    shown = sh(repo, "dvc", "exp", "show", "--only-changed").stdout
    assert all(name in shown for name in swept)
    sh(repo, "dvc", "exp", "remove", *swept)


def test_queued_experiments_get_their_own_correct_results(repo, tmp_path):
    """Two experiments run at once by two queue workers: distinct metrics, each what a plain run gives."""
    names = {"q-8": "[8]", "q-12": "[12]"}
    for name, hidden in names.items():
        sh(repo, "dvc", "exp", "run", "--queue", "--name", name, "-S", f"families.mlp.hidden={hidden}", "evaluate@mlp")
    # As the study runner does: DVC runs the queue and waits; its workers would hold a pipe open.
    sh(repo, "dvc", "exp", "run", "--run-all", "--jobs", "2", quiet=True)
    deadline = time.monotonic() + 120  # a run's record can lag the end of the queue by a moment
    while True:
        found = parse_experiments(json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout))
        states = {name: found.get(name, {}).get("state") for name in names}
        if states == dict.fromkeys(names, "success") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert states == dict.fromkeys(names, "success")
    losses = {
        name: found[name]["data"]["metrics"]["metrics/evaluate/mlp/metrics.json"]["data"]["mlp"] for name in names
    }
    assert losses["q-8"] != losses["q-12"]

    sh(repo, "dvc", "exp", "apply", "q-12")
    queued = {p: (repo / p).read_bytes() for p in ("models/mlp.keras", "metrics/evaluate/mlp/metrics.json")}
    sh(repo, "dvc", "repro", "--force", "--single-item", "train@mlp", "evaluate@mlp")  # the same params, here
    assert {p: (repo / p).read_bytes() for p in queued} == queued
    restore(repo)


def test_a_local_remote_carries_data_models_and_run_cache_to_a_fresh_clone(repo, tmp_path):
    # As docs/scale-out.md says: a default remote, committed (a clone reads it from .dvc/config).
    sh(tmp_path, "git", "init", "-q", "--bare", "-b", "main", "origin.git")
    sh(repo, "git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    try:
        shared_through_a_remote(repo, tmp_path)
    finally:
        sh(repo, "git", "remote", "remove", "origin")


def shared_through_a_remote(repo: Path, tmp_path: Path) -> None:
    sh(repo, "dvc", "remote", "add", "--default", "store", str(tmp_path / "remote"))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "a remote")
    sh(repo, "git", "push", "-q", "origin", "main")
    # An experiment, then back to the commit before anything is pushed: its models are in the
    # local cache and its run records in the run cache, nowhere in the workspace.
    tried = sh(repo, "dvc", "exp", "run", "--name", "wide", "-S", "families.mlp.hidden=[12,4]")
    assert ran_trainings(tried) == {"mlp"}
    tried_model = (repo / "models/mlp.keras").read_bytes()
    restore(repo)
    sh(repo, "dvc", "push", "--run-cache")

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(tmp_path / "origin.git"), str(clone))
    pulled = sh(clone, "dvc", "pull")  # the default remote came with the clone
    assert "failed" not in pulled.stdout + pulled.stderr
    assert (clone / "models/mlp.keras").read_bytes() == (repo / "models/mlp.keras").read_bytes()
    again = sh(clone, "dvc", "repro")
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date." in again.stdout

    # `dvc push --run-cache` sent the experiment's run records, not its outputs: the same settings
    # in the clone are trained again.
    retried = sh(clone, "dvc", "exp", "run", "--pull", "-S", "families.mlp.hidden=[12,4]")
    assert ran_trainings(retried) == {"mlp"}
    sh(clone, "git", "checkout", "HEAD", "--", ".")
    sh(clone, "dvc", "checkout", "--force")

    # `dvc exp push` sends the experiment itself: its git ref to the git remote, its outputs to the
    # DVC remote. Pulled in a second clone, it is applied with no training, to the same bytes.
    sh(repo, "dvc", "exp", "push", "origin", "wide")
    second = tmp_path / "second"
    sh(tmp_path, "git", "clone", "-q", str(tmp_path / "origin.git"), str(second))
    # A teacher collects every student's experiments at once: all of them, of every commit.
    sh(second, "dvc", "exp", "pull", "--all-commits", "origin")
    assert "wide" in sh(second, "dvc", "exp", "list", "--name-only").stdout.split()
    collected = parse_experiments(json.loads(sh(second, "dvc", "exp", "show", "-A", "--json").stdout))
    assert collected["wide"]["data"]["params"]["params.yaml"]["data"]["families"]["mlp"]["hidden"] == [12, 4]
    sh(second, "dvc", "exp", "apply", "wide")
    assert (second / "models/mlp.keras").read_bytes() == tried_model
    status = sh(second, "dvc", "status")
    assert "up to date" in status.stdout, status.stdout


TINY_FAMILY = '''"""softmax: one dense layer on the pixels, the smallest family there is."""

from fmnist.config.schema import Param

HELP = "Softmax regression on the pixels."
KEYS = {"scale": Param("Factor on every pixel before the dense layer.", kind=float, gt=0)}


def build(cfg):
    from fmnist.models.blocks import classifier, image_input, layers

    inputs = image_input()
    x = layers.Flatten()(inputs)
    x = layers.Rescaling(cfg["scale"])(x)
    return inputs, classifier(x, cfg["initializer"])
'''


def test_a_new_family_is_one_module_and_one_params_block(repo):
    (repo / "fmnist/models/families/softmax.py").write_text(TINY_FAMILY)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["families"]["softmax"] = {"scale": 0.5, "epochs": 1}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = sh(repo, "git", "status", "--porcelain").stdout.splitlines()
    assert sorted(changed) == [" M params.yaml", "?? fmnist/models/families/softmax.py"]  # nothing else

    result = sh(repo, "dvc", "repro")
    assert ran_trainings(result) == set()  # the other families are up to date
    assert "Running stage 'train@softmax'" in result.stdout
    assert "Running stage 'evaluate@softmax'" in result.stdout
    assert "Running stage 'compare'" in result.stdout
    compared = json.loads((repo / "metrics/compare/comparison.json").read_text())
    assert [row["family"] for row in compared["families"]] == [*TINY, "softmax"]
    summary = json.loads((repo / "metrics/train/softmax/summary.json").read_text())
    assert summary["params"] == 28 * 28 * 10 + 10
    params["families"]["softmax"]["scale"] = 0  # its own key is checked like any other
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bad = sh(repo, "dvc", "repro", check=False)
    assert error_lines(bad) == ["error: params.yaml: families.softmax.scale = 0 is not allowed; expected a number > 0"]

    (repo / "fmnist/models/families/softmax.py").unlink()
    for out in ("metrics/train/softmax", "metrics/evaluate/softmax", "plots/evaluate/softmax"):
        shutil.rmtree(repo / out, ignore_errors=True)
    (repo / "models/softmax.keras").unlink(missing_ok=True)
    restore(repo)


LENET = '''"""lenet: LeNet-5 (LeCun et al., 1998) for 28x28 inputs; no seed has it."""

from fmnist.config.schema import Param

HELP = "LeCun's LeNet-5: two conv-pool stages and two dense layers."
KEYS = {"filters": Param("Filters of each 5x5 conv stage.", kind=list, item=int, min_items=1, ge=1)}


def build(cfg):
    from fmnist.models.blocks import Hidden, classifier, conv, dense, image_input, layers

    hidden = Hidden(cfg["activation"], cfg["batch_norm"], cfg["initializer"], l1=cfg["l1"], l2=cfg["l2"])
    inputs = image_input()
    x = inputs
    for filters in cfg["filters"]:
        x = conv(x, filters, hidden, kernel=5)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = dense(x, 120, hidden)
    x = dense(x, 84, hidden)
    return inputs, classifier(x, cfg["initializer"])
'''


@pytest.mark.slow  # the unit tier, in a clone: minutes
def test_a_family_added_as_this_page_says_keeps_the_unit_tier_green(tmp_path):
    # docs/extending.md's steps, taken as a newcomer would in a clone of the committed project.
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(ROOT), str(clone))
    (clone / "fmnist/models/families/lenet.py").write_text(LENET)
    params = clone / "params.yaml"
    params.write_text(
        params.read_text().replace("\nevaluate:\n", "  lenet:\n    filters: [6, 16]\n    epochs: 10\n\nevaluate:\n", 1)
    )
    dvc_yaml = clone / "dvc.yaml"  # its charts: python -m fmnist.docs, below
    text = dvc_yaml.read_text()
    text += "  lenet:\n    path: models/lenet.keras\n    type: model\n    desc: Fashion-MNIST classifier, LeNet-5\n"
    dvc_yaml.write_text(text + "    labels: [fashion-mnist, keras, lenet]\n")
    studies = clone / "fmnist/studies/studies.yaml"
    grid = "      airbench: {}\n  repeats: 3\n"
    assert grid in studies.read_text()
    studies.write_text(studies.read_text().replace(grid, "      airbench: {}\n      lenet: {}\n  repeats: 3\n"))
    sh(clone, sys.executable, "-m", "fmnist.docs")

    changed = sorted(line[3:] for line in sh(clone, "git", "status", "--porcelain").stdout.splitlines())
    assert changed == [
        "README.md",  # the quick profile's command: lenet sets its own epochs
        "docs/parameters.md",
        "docs/performance.md",
        "dvc.yaml",
        "fmnist/models/families/lenet.py",
        "fmnist/studies/studies.yaml",
        "params.yaml",
    ]
    unit = sh(
        clone, sys.executable, "-m", "pytest", "-q", "-m", "not e2e and not slow", "-p", "no:cacheprovider", check=False
    )
    assert unit.returncode == 0, unit.stdout[-3000:]
